"""
State: a Fritz!Box has been flashed with these OpenWRT images through EVA
(see the ``eva`` execution module).

Flashing is a one-off action on a box that then runs OpenWRT, so the state
records what it flashed (image checksums) in the minion's cache; a second apply
with the same images reports no changes and does not wait for the box.  Delete
``<cachedir>/eva/<name>.json`` (or change an image) to flash again.

.. code-block:: yaml

    fritzbox-3370:
      eva.flashed:
        - kernel: /srv/openwrt/...-avm_fritz3370-rev2-micron-squashfs-eva-kernel.bin
        - filesystem: /srv/openwrt/...-avm_fritz3370-rev2-micron-squashfs-eva-filesystem.bin
        - flash_chip: micron
"""

import json
import os

from salt.exceptions import CommandExecutionError, SaltInvocationError

__virtualname__ = "eva"
FLASH_ARGS = (
    "address", "port", "user", "password", "model", "hwrevisions", "flash_chip",
    "window", "retry_interval", "transfer_timeout", "reboot", "timeout",
)  # fmt: skip


def __virtual__():
    if "eva.flash" in __salt__:
        return __virtualname__
    return (False, "eva state: the eva execution module is not available")


def _marker(name):
    return os.path.join(__opts__["cachedir"], "eva", f"{name}.json")


def flashed(name, kernel, filesystem, **kwargs):
    """
    Box ``name`` has been flashed with ``kernel`` (mtd1) and ``filesystem`` (mtd0).
    Other arguments go to ``eva.flash`` (address, port, user, password, model,
    hwrevisions, flash_chip, window, retry_interval, transfer_timeout, reboot).
    """
    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    kwargs = {k: v for k, v in kwargs.items() if k in FLASH_ARGS}
    try:
        return _flashed(ret, name, kernel, filesystem, kwargs)
    except (CommandExecutionError, SaltInvocationError) as exc:
        # A refusal (bad image, other model, no EVA in the window): one line.
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        ret.update(result=False, changes={}, comment="; ".join(lines) or type(exc).__name__)
        return ret


def _flashed(ret, name, kernel, filesystem, kwargs):
    images = __salt__["eva.check_images"](
        kernel, filesystem, kwargs.get("model", "Fritz_Box_3370"), kwargs.get("flash_chip")
    )
    wanted = {role: image["sha256"] for role, image in images.items()}
    marker = _marker(name)
    if os.path.isfile(marker):
        with open(marker, encoding="utf-8") as handle:
            if json.load(handle).get("images") == wanted:
                ret["comment"] = f"{name} was flashed with these images (record: {marker})"
                return ret
    address = kwargs.get("address", "192.168.178.1")
    planned = {"address": address, "mtd1": kernel, "mtd0": filesystem}
    if __opts__["test"]:
        ret.update(result=None, changes={"flash": planned})
        ret["comment"] = (
            f"{name} would be flashed through EVA at {address}: power-cycle the box when "
            "the real run starts"
        )
        return ret
    result = __salt__["eva.flash"](kernel, filesystem, **kwargs)
    os.makedirs(os.path.dirname(marker), exist_ok=True)
    with open(marker, "w", encoding="utf-8") as handle:
        json.dump({"images": result["images"], "environment": result["environment"]}, handle)
    uploads = {u["partition"]: f"{u['bytes']} bytes in {u['seconds']} s" for u in result["uploads"]}
    ret["changes"] = {"flash": planned, "uploads": uploads, "rebooted": result["rebooted"]}
    ret["comment"] = (
        f"{name} ({result['environment'].get('ProductID')} rev "
        f"{result['environment'].get('HWRevision')}, {result['flash_chip']} NAND as reported by "
        f"the {result['flash_chip_source']}) flashed"
    )
    return ret
