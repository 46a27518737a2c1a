"""
eva.flash and eva.flashed against a stand-in for AVM's EVA FTP server
(tests/support/eva_ftpd.py, pyftpdlib) running inside a network namespace.

The box's address is a parameter: these tests only ever use the namespace's
address, never 192.168.178.1.
"""

import json
import os
import sys
import time

import pytest
import yaml
from salt.exceptions import CommandExecutionError, SaltInvocationError

from tests.conftest import REPO
from tests.support import netns
from tests.support.states import assert_no_changes, assert_ok, changed

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")

PREFIX = "openwrt-lantiq-xrx200-avm_fritz3370-rev2"
# What OpenWRT's images start with: eva-kernel.bin is lzma2eva output (EVA record
# magic 0xfeed1281, little-endian), eva-filesystem.bin a UBI image.
HEAD = {"kernel": b"\x81\x12\xed\xfe", "filesystem": b"UBI#"}
ENV_3370 = {
    "ProductID": "Fritz_Box_3370",
    "HWRevision": "175",
    "HWSubRevision": "5",
    "urlader-version": "2475",
}


@pytest.fixture(scope="module")
def ns():
    with netns.namespace("eva") as space:
        yield space


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("openwrt")
    made = {}
    for chip in ("micron", "hynix"):
        for role, size in (("kernel", 96 * 1024), ("filesystem", 320 * 1024)):
            path = root / f"{PREFIX}-{chip}-squashfs-eva-{role}.bin"
            path.write_bytes(HEAD[role] + os.urandom(size - 4))
            made[chip, role] = str(path)
    return made


@pytest.fixture
def eva(ns, tmp_path):
    """Start a fake EVA in the namespace: eva(env=..., delay=..., abort_after=...)."""
    started = []

    def start(env=None, delay=0.0, abort_after=None, abort_on="mtd0", wait=True):
        store, log = tmp_path / "flash", tmp_path / "eva.log"
        store.mkdir(exist_ok=True)
        cmd = [sys.executable, "-m", "tests.support.eva_ftpd", "--addr", ns.addr]
        cmd += ["--store", store, "--log", log, "--delay", delay, "--abort-on", abort_on]
        for name, value in (ENV_3370 if env is None else env).items():
            cmd += ["--env", f"{name}={value}"]
        if abort_after is not None:
            cmd += ["--abort-after", abort_after]
        started.append(ns.popen([str(c) for c in cmd], cwd=REPO))
        server = {"store": store, "log": log, "addr": ns.addr}
        deadline = time.monotonic() + 10
        while wait and not (log.exists() and "listening" in log.read_text()):
            assert time.monotonic() < deadline, "fake EVA did not start"
            time.sleep(0.05)
        return server

    yield start
    for proc in started:
        proc.terminate()
        proc.wait(timeout=5)


def _log(server):
    if not server["log"].exists():
        return []
    return [json.loads(line) for line in server["log"].read_text().splitlines()]


def _commands(server):
    return [item["cmd"] for item in _log(server) if "cmd" in item]


def _flash(modules, server, images, chip="micron", **kwargs):
    args = {"address": server["addr"], "window": 10, "retry_interval": 0.1, "flash_chip": chip}
    args.update(kwargs)
    return modules.eva.flash(images[chip, "kernel"], images[chip, "filesystem"], **args)


def test_flash_sends_evas_sequence(modules, eva, images):
    server = eva()
    result = _flash(modules, server, images, hwrevisions=[175])
    seq = [c for c in _commands(server) if c.split()[0] not in ("PASV", "EPSV")]
    assert seq == [
        "USER adam2",
        "PASS adam2",
        "GETENV ProductID",
        "GETENV HWRevision",
        "GETENV HWSubRevision",
        "GETENV urlader-version",
        "GETENV mtd0",
        "GETENV mtd1",
        "SETENV linux_fs_start 0",
        "TYPE I",
        "MEDIA FLSH",
        "TYPE I",  # ftplib repeats it before each upload
        "STOR mtd1",
        "TYPE I",
        "STOR mtd0",
        "REBOOT",
    ]
    for role, partition in (("kernel", "mtd1"), ("filesystem", "mtd0")):
        with open(images["micron", role], "rb") as handle:
            assert (server["store"] / partition).read_bytes() == handle.read()
    assert result["rebooted"] is True
    assert result["environment"]["ProductID"] == "Fritz_Box_3370"
    assert [u["partition"] for u in result["uploads"]] == ["mtd1", "mtd0"]
    assert result["uploads"][1]["bytes"] == 320 * 1024
    (reboot,) = [item for item in _log(server) if item.get("rebooted")]
    assert reboot["environment"]["linux_fs_start"] == "0"


def test_other_model_is_refused_before_any_upload(modules, eva, images):
    server = eva(env={**ENV_3370, "ProductID": "Fritz_Box_7490"})
    with pytest.raises(
        CommandExecutionError, match="ProductID 'Fritz_Box_7490', not 'Fritz_Box_3370'"
    ):
        _flash(modules, server, images)
    commands = _commands(server)
    assert "GETENV ProductID" in commands
    assert not [c for c in commands if c.startswith(("SETENV", "STOR", "MEDIA", "REBOOT"))]
    assert not list(server["store"].iterdir())


def test_other_hardware_revision_is_refused(modules, eva, images):
    server = eva(env={**ENV_3370, "HWRevision": "139"})
    with pytest.raises(CommandExecutionError, match="HWRevision '139', expected one of 175"):
        _flash(modules, server, images, hwrevisions=[175])
    assert not [c for c in _commands(server) if c.startswith(("SETENV", "STOR"))]


def test_image_for_other_flash_chip_is_refused_before_connecting(modules, eva, images):
    server = eva()
    with pytest.raises(SaltInvocationError, match="built for micron flash, but this box has hynix"):
        modules.eva.flash(
            images["micron", "kernel"], images["micron", "filesystem"],
            address=server["addr"], flash_chip="hynix", window=2,
        )  # fmt: skip
    assert _commands(server) == []


def test_swapped_images_are_refused(modules, images):
    with pytest.raises(SaltInvocationError, match="swapped"):
        modules.eva.check_images(images["micron", "filesystem"], images["micron", "kernel"])


def test_image_larger_than_partition_is_refused(modules, eva, images):
    server = eva(env={**ENV_3370, "mtd1": "0x00100000,0x00110000"})  # 64 KiB
    with pytest.raises(CommandExecutionError, match="mtd1 holds 65536"):
        _flash(modules, server, images)
    assert not [c for c in _commands(server) if c.startswith("STOR")]


def test_interrupted_upload_is_reported(modules, eva, images):
    server = eva(abort_after=100 * 1024, abort_on="mtd0")
    with pytest.raises(CommandExecutionError) as info:
        _flash(modules, server, images)
    message = str(info.value)
    assert "to mtd0 was interrupted after" in message and "of 327680 bytes" in message
    assert "power-cycle it and flash again" in message
    commands = _commands(server)
    assert "STOR mtd1" in commands and "STOR mtd0" in commands
    assert "REBOOT" not in commands
    assert any(item.get("abort") == "mtd0" for item in _log(server))


def test_waits_for_the_short_ftp_window(modules, eva, images):
    """EVA is not listening yet when the flash starts: connect is retried until it is."""
    server = eva(delay=1.5, wait=False)
    result = _flash(modules, server, images)
    assert result["rebooted"] is True
    assert _log(server)[0] == {"listening": True}


def test_window_passes_without_eva(modules, ns, images):
    with pytest.raises(CommandExecutionError, match="no EVA FTP server answered .* within 1 s"):
        modules.eva.flash(
            images["micron", "kernel"], images["micron", "filesystem"],
            address=ns.addr, port=2121, window=1, retry_interval=0.2, flash_chip="micron",
        )  # fmt: skip


def test_wrong_password_is_one_clear_error(modules, eva, images):
    server = eva()
    with pytest.raises(CommandExecutionError, match="refused the login for user 'adam2'"):
        _flash(modules, server, images, password="not-adam2")
    assert "PASS ****" in _commands(server)


def test_environment_reads_without_changing(modules, eva):
    server = eva()
    env = modules.eva.environment(address=server["addr"], window=5)
    assert env["ProductID"] == "Fritz_Box_3370" and env["urlader-version"] == "2475"
    assert env["mtd0"] is None
    assert not [c for c in _commands(server) if c.startswith(("SETENV", "STOR", "REBOOT"))]


def test_flashed_state_flashes_once(modules, eva, images, tmp_path):
    server = eva()
    pillar = {
        "fritzbox_openwrt": {
            "box": f"lt-fritz-{os.getpid()}",
            "address": server["addr"],
            "password": "adam2",
            "flash_chip": "micron",
            "kernel": images["micron", "kernel"],
            "filesystem": images["micron", "filesystem"],
            "window": 10,
            "retry_interval": 0.1,
        }
    }
    predicted = assert_ok(modules.state.sls("fritzbox_openwrt", pillar=pillar, test=True).raw)
    assert changed(predicted) and _commands(server) == []
    ret = assert_ok(modules.state.sls("fritzbox_openwrt", pillar=pillar).raw)
    (state,) = ret.values()
    assert state["changes"]["rebooted"] is True and "mtd0" in state["changes"]["uploads"]
    assert "Fritz_Box_3370 rev 175" in state["comment"]
    assert_no_changes(modules.state.sls("fritzbox_openwrt", pillar=pillar).raw)
    assert _commands(server).count("STOR mtd0") == 1
    assert_ok(modules.state.sls("fritzbox_openwrt.clean", pillar=pillar).raw)


@pytest.mark.parametrize("formula", ["ppc64_emulation", "vbox_egress"])
def test_example_pillar_passes_the_schema(modules, formula):
    """pillar.example/<formula>.sls (used by the functional fixtures) is valid."""
    data = modules.labsalt.mapdata(formula)
    assert data and "lookup" not in data


def test_example_pillar_without_images_is_one_error_line(modules):
    """The example names images in /srv/openwrt that this machine does not have."""
    data = modules.labsalt.mapdata("fritzbox_openwrt", validate=False)
    schema = yaml.safe_load(
        (REPO / "formulas" / "fritzbox_openwrt" / "parameters" / "schema.yaml").read_text()
    )
    assert modules.labsalt.check_schema(data, schema, "fritzbox_openwrt") == []
    assert not os.path.exists(data["kernel"])
    with pytest.raises(SaltInvocationError) as info:
        modules.labsalt.mapdata("fritzbox_openwrt")
    message = str(info.value)
    assert message.startswith("fritzbox_openwrt:kernel: kernel image /srv/openwrt/")
    assert "does not exist" in message and "\n" not in message


def _pillar(images, **over):
    data = {
        "flash_chip": "micron",
        "kernel": images["micron", "kernel"],
        "filesystem": images["micron", "filesystem"],
    }
    data.update(over)
    return data


@pytest.mark.parametrize(
    ("over", "key", "problem"),
    [
        ({"kernel": "/etc/passwd"}, "kernel", "has no EVA (lzma2eva) or uImage magic"),
        ({"filesystem": "/etc/passwd"}, "filesystem", "has no UBI or squashfs magic"),
        ({"kernel": "/dev/zero"}, "kernel", "is not a regular file"),
        ({"kernel": "/etc"}, "kernel", "is not a regular file"),
        ({"kernel": "/proc/kmsg"}, "kernel", "is not a regular file"),
        ({"kernel": "/nonexistent/k.bin"}, "kernel", "does not exist"),
        ({"tiny": True}, "filesystem", "bytes; a filesystem image has 4096 to"),
        ({"swap": True}, "kernel", "(UBI magic): kernel and filesystem swapped?"),
    ],
)
def test_validator_checks_images_before_anything(modules, images, over, key, problem):
    over = dict(over)
    if over.pop("swap", False):
        over = {"kernel": images["micron", "filesystem"], "filesystem": images["micron", "kernel"]}
    if over.pop("tiny", False):
        tiny = images["micron", "filesystem"].replace("filesystem.bin", "tiny-filesystem.bin")
        with open(tiny, "wb") as handle:
            handle.write(b"UBI#" + bytes(100))
        over = {"filesystem": tiny}
    with pytest.raises(SaltInvocationError) as info:
        modules.eva.validate(_pillar(images, **over))
    assert str(info.value).startswith(f"fritzbox_openwrt:{key}: "), info.value
    assert problem in str(info.value)


def test_validator_accepts_openwrt_images(modules, images):
    assert modules.eva.validate(_pillar(images)) is True


def test_state_refuses_passwd_as_kernel_with_one_line(modules, states, images):
    """kernel: /etc/passwd never gets to 'would be flashed', in test mode or not."""
    pillar = {"fritzbox_openwrt": _pillar(images, kernel="/etc/passwd")}
    ret = modules.state.sls("fritzbox_openwrt", pillar=pillar, test=True).raw
    text = str(ret)
    assert "fritzbox_openwrt:kernel: " in text and "would be flashed" not in text
    ret = states.eva.flashed(
        name="lt-fritz-bad",
        kernel="/etc/passwd",
        filesystem=images["micron", "filesystem"],
        flash_chip="micron",
    )
    assert ret["result"] is False and "\n" not in ret["comment"]
    assert ret["comment"].startswith("kernel image /etc/passwd has no EVA")


@pytest.mark.parametrize("window", ["nan", float("nan"), float("inf"), 0, 1e9, "120; ls"])
def test_environment_refuses_bad_window_at_once(modules, window):
    """eva.environment window=nan used to retry forever (a NaN deadline never passes)."""
    started = time.monotonic()
    with pytest.raises(SaltInvocationError, match="window"):
        modules.eva.environment(address="198.18.0.1", window=window)
    assert time.monotonic() - started < 1


def test_flash_refuses_bad_numbers_and_address(modules, images):
    with pytest.raises(SaltInvocationError, match="retry_interval"):
        modules.eva.flash(
            images["micron", "kernel"], images["micron", "filesystem"],
            address="198.18.0.1", retry_interval=float("nan"), flash_chip="micron",
        )  # fmt: skip
    with pytest.raises(SaltInvocationError, match="address"):
        modules.eva.environment(address="192.168.178.1; touch /tmp/labsalt-pwned", window=1)
