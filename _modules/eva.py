"""
Flash OpenWRT onto an AVM Fritz!Box through its EVA bootloader's FTP server.

During the first seconds after power-on, AVM's bootloader (EVA, formerly ADAM2)
answers FTP at the box's address (192.168.178.1 by default) with the login
adam2/adam2.  OpenWRT's instructions for the Fritz!Box 3370 (lab notebook,
"OpenWRT on AVM Fritz!Box 3370") are::

    quote USER adam2
    quote PASS adam2
    quote SETENV linux_fs_start 0
    binary
    quote MEDIA FLSH
    put <...-eva-kernel.bin> mtd1
    put <...-eva-filesystem.bin> mtd0
    quote REBOOT

This module does the same, but safely: it checks the images on disk first
(model and flash chip in the file names, kernel/filesystem not swapped, sizes),
waits for the short FTP window with retries, checks that the server is EVA
(``SYST`` -> ``215 AVM EVA ...``), reads the box's environment (``GETENV
ProductID``, ``HWRevision``, ``bootloaderVersion``, ``HardwareFeatures`` with the
NAND's JEDEC id, partition sizes where the box reports them) and refuses a box
of another model or revision, or one whose NAND is not the one the images are
built for, before anything is uploaded; then sends kernel then filesystem and
reports progress.

EVA answers ``GETENV name`` with the value on a line of its own, without a reply
code, then ``200 GETENV command successful``; Python's ftplib cannot read that
(``error_proto``), so ``_reply`` reads the control connection line by line.  The
sources of the dialogue are listed in tests/support/EVA-PROVENANCE.md.
"""

import ftplib
import hashlib
import ipaddress
import logging
import math
import os
import re
import stat
import time

from salt.exceptions import CommandExecutionError, SaltInvocationError

log = logging.getLogger(__name__)

__virtualname__ = "eva"

DEFAULT_ADDRESS = "192.168.178.1"
DEFAULT_USER = "adam2"
DEFAULT_PASSWORD = "adam2"  # noqa: S105  (AVM's documented bootloader login)
# The NAND chips the 3370 shipped with; OpenWRT builds one image set for each.
FLASH_CHIPS = ("micron", "hynix", "toshiba", "samsung", "macronix", "spansion")
# Model in EVA's ProductID -> the tag OpenWRT puts in its image file names.
MODEL_TAGS = {"Fritz_Box_3370": "fritz3370"}
# EVA's variable names (see tests/support/EVA-PROVENANCE.md): the bootloader's
# version is bootloaderVersion; HardwareFeatures carries the NAND's JEDEC id.
ENV_NAMES = (
    "ProductID", "HWRevision", "HWSubRevision", "bootloaderVersion", "HardwareFeatures",
    "flashsize", "mtd0", "mtd1",
)  # fmt: skip
# JEDEC manufacturer ids of NAND chips -> the names OpenWRT puts in image file names.
NAND_VENDORS = {
    0x2C: "micron", 0xAD: "hynix", 0x98: "toshiba", 0xEC: "samsung", 0xC2: "macronix",
    0x01: "spansion",
}  # fmt: skip
# Models for which OpenWRT builds one image set per NAND chip.
PER_NAND_MODELS = {"Fritz_Box_3370"}
MAX_UNNUMBERED = 64
CHUNK = 64 * 1024

# What each image must start with.  OpenWRT builds the 3370's eva-kernel.bin with
# `lzma2eva` (target/linux/lantiq/image: KERNEL := ... | lzma | eva-image), whose
# header starts with the EVA record magic 0xfeed1281, little-endian; a U-Boot
# uImage (magic 0x27051956) is accepted too.  eva-filesystem.bin is `append-ubi`:
# a UBI image ("UBI#" erase-counter header); a bare squashfs ("hsqs") is accepted.
MAGIC = {
    "kernel": {b"\x81\x12\xed\xfe": "EVA (lzma2eva)", b"\x27\x05\x19\x56": "uImage"},
    "filesystem": {b"UBI#": "UBI", b"hsqs": "squashfs"},
}
# Sizes that make sense for the 3370's partitions (mtd1: 4 MiB kernel; mtd0: the
# rest of its 512 MiB NAND); the box's own mtd sizes are checked again at flash time.
SIZE_LIMITS = {"kernel": (512, 4 * 1024 * 1024), "filesystem": (4096, 512 * 1024 * 1024)}
# (low, high) for the numeric arguments: a NaN or an endless window never gets in.
NUMBER_LIMITS = {
    "window": (1, 3600),
    "retry_interval": (0.05, 60),
    "timeout": (1, 600),
    "transfer_timeout": (10, 3600),
}


def __virtual__():
    return __virtualname__


# --------------------------------------------------------------------------- images


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _number(name, value):
    """A finite number within NUMBER_LIMITS[name], or one clear error."""
    low, high = NUMBER_LIMITS[name]
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SaltInvocationError(f"eva: {name} {value!r} is not a number") from None
    if not math.isfinite(number) or not low <= number <= high:
        raise SaltInvocationError(f"eva: {name} {value!r} is not a number from {low} to {high}")
    return number


def _endpoint(address, port):
    try:
        ipaddress.ip_address(str(address))
    except ValueError:
        raise SaltInvocationError(f"eva: address {address!r} is not an IP address") from None
    if isinstance(port, bool) or str(port) != str(port).strip() or not str(port).isdigit():
        raise SaltInvocationError(f"eva: port {port!r} is not a port number")
    if not 0 < int(port) < 65536:
        raise SaltInvocationError(f"eva: port {port!r} is not a port number")
    return str(address), int(port)


def check_image_file(role, path):
    """
    Read-only checks of one image before anything else: a regular file (not a
    device, FIFO or directory), a size that fits the partition, and the magic of
    its format (kernel: EVA or uImage; filesystem: UBI or squashfs).  Returns its
    size; raises SaltInvocationError with one line.

    CLI Example:

    .. code-block:: bash

        salt-call eva.check_image_file kernel /srv/openwrt/...-eva-kernel.bin
    """
    if role not in MAGIC:
        raise SaltInvocationError(f"image role {role!r} is not kernel or filesystem")
    if not path or not isinstance(path, str) or not os.path.isabs(path):
        raise SaltInvocationError(f"{role} image {path!r} is not an absolute path")
    real = os.path.realpath(path)
    if real.startswith(("/proc/", "/sys/", "/dev/")):
        raise SaltInvocationError(f"{role} image {path} is not a regular file ({real})")
    try:
        info = os.stat(real)
    except OSError as exc:
        raise SaltInvocationError(
            f"{role} image {path} does not exist or cannot be read ({exc.strerror})"
        ) from None
    if not stat.S_ISREG(info.st_mode):
        raise SaltInvocationError(f"{role} image {path} is not a regular file")
    if info.st_size == 0:
        raise SaltInvocationError(f"{role} image {path} is empty")
    try:
        with open(real, "rb") as handle:
            head = handle.read(4)
    except OSError as exc:
        raise SaltInvocationError(f"{role} image {path} cannot be read ({exc.strerror})") from None
    if head not in MAGIC[role]:
        other = "filesystem" if role == "kernel" else "kernel"
        if head in MAGIC[other]:
            raise SaltInvocationError(
                f"{role} image {path} looks like the {other} image ({MAGIC[other][head]} "
                "magic): kernel and filesystem swapped?"
            )
        kinds = " or ".join(MAGIC[role].values())
        raise SaltInvocationError(
            f"{role} image {path} has no {kinds} magic (starts with {head.hex()})"
        )
    low, high = SIZE_LIMITS[role]
    if not low <= info.st_size <= high:
        raise SaltInvocationError(
            f"{role} image {path} has {info.st_size} bytes; a {role} image has {low} to {high}"
        )
    return info.st_size


def validate(mapdata):
    """
    Checks of fritzbox_openwrt's merged parameters beyond the schema
    (``validator:`` in its schema.yaml), before anything else and read-only:
    each image file (regular file, size, magic), its file name's model and
    flash chip, kernel and filesystem not swapped.  Raises SaltInvocationError
    naming the key: ``fritzbox_openwrt:kernel: ...``.

    CLI Example:

    .. code-block:: bash

        salt-call eva.validate '{kernel: /srv/openwrt/k.bin, filesystem: /srv/openwrt/f.bin}'
    """
    for role in ("kernel", "filesystem"):
        try:
            check_image_file(role, mapdata.get(role))
            _check_name(
                role,
                mapdata.get(role),
                mapdata.get("model", "Fritz_Box_3370"),
                mapdata.get("flash_chip") or None,
            )
        except SaltInvocationError as exc:
            raise SaltInvocationError(f"fritzbox_openwrt:{role}: {exc}") from None
    if os.path.realpath(mapdata["kernel"]) == os.path.realpath(mapdata["filesystem"]):
        raise SaltInvocationError("fritzbox_openwrt:filesystem: is the same file as the kernel")
    return True


def _check_name(role, path, model, flash_chip):
    """The file name's model and flash chip (OpenWRT names them) match the box."""
    other = "filesystem" if role == "kernel" else "kernel"
    name = os.path.basename(path).lower()
    if f"-{other}" in name and f"-{role}" not in name:
        raise SaltInvocationError(
            f"{role} image {path} looks like the {other} image: kernel and filesystem swapped?"
        )
    tag = MODEL_TAGS.get(model)
    if tag and re.search(r"fritz\d{4}", name) and tag not in name:
        raise SaltInvocationError(
            f"{role} image {path} is built for another model (expected '{tag}' for {model})"
        )
    named_chips = [chip for chip in FLASH_CHIPS if chip in name]
    if flash_chip and named_chips and flash_chip not in named_chips:
        raise SaltInvocationError(
            f"{role} image {path} is built for {'/'.join(named_chips)} flash, but this box "
            f"has {flash_chip}: flashing it would leave the box unbootable"
        )


def check_images(kernel, filesystem, model="Fritz_Box_3370", flash_chip=None):
    """
    Check the two image files before anything else: they exist and are not empty,
    the kernel is not the filesystem image (or the other way round), and the file
    names name this model and flash chip (OpenWRT's names do, e.g.
    ``...-avm_fritz3370-rev2-micron-squashfs-eva-kernel.bin``).

    CLI Example:

    .. code-block:: bash

        salt-call eva.check_images /srv/openwrt/...-eva-kernel.bin \\
            /srv/openwrt/...-eva-filesystem.bin flash_chip=micron
    """
    if flash_chip is not None and flash_chip not in FLASH_CHIPS:
        raise SaltInvocationError(
            f"flash_chip {flash_chip!r} is not one of {', '.join(FLASH_CHIPS)}"
        )
    images = {}
    for role, path in (("kernel", kernel), ("filesystem", filesystem)):
        size = check_image_file(role, path)
        _check_name(role, path, model, flash_chip)
        images[role] = {"path": path, "size": size, "sha256": _sha256(path)}
    if os.path.realpath(kernel) == os.path.realpath(filesystem):
        raise SaltInvocationError(f"kernel and filesystem are the same file {kernel}")
    return images


# --------------------------------------------------------------------------- FTP


def _connect(  # noqa: PLR0917
    address=DEFAULT_ADDRESS,
    port=21,
    user=DEFAULT_USER,
    password=DEFAULT_PASSWORD,
    window=60,
    retry_interval=0.5,
    timeout=10,
):
    """
    Log in to EVA, retrying for ``window`` seconds: EVA listens only for a few
    seconds after power-on, so start this, then switch the box on.  Returns an
    ``ftplib.FTP`` (for use from Python); raises when the window passed.
    """
    deadline = time.monotonic() + float(window)
    attempts, last = 0, None
    while True:
        attempts += 1
        ftp = ftplib.FTP(timeout=timeout)
        try:
            ftp.connect(address, int(port))
            ftp.login(user, password)
            log.info("eva: logged in to %s:%s after %d attempt(s)", address, port, attempts)
            return ftp
        except ftplib.error_perm as exc:
            ftp.close()
            raise CommandExecutionError(
                f"EVA at {address}:{port} refused the login for user {user!r}: {exc}"
            ) from exc
        except (OSError, EOFError, ftplib.Error) as exc:
            ftp.close()
            last = exc
        if time.monotonic() >= deadline:
            raise CommandExecutionError(
                f"no EVA FTP server answered at {address}:{port} within {window} s "
                f"({attempts} attempts, last: {_describe(last)}); EVA listens only during "
                "the first seconds after power-on: start the flash, then power-cycle the box"
            )
        time.sleep(float(retry_interval))


def _describe(exc):
    if exc is None:
        return "timeout"
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def parse_getenv(name, lines):
    """
    The value in EVA's answer to ``GETENV name``: the lines EVA sent before its
    ``200 GETENV command successful``, one of which is ``name<spaces>value``
    (no reply code).  Returns the value ('' for a name with an empty value) or None.
    """
    if isinstance(lines, str):
        lines = lines.splitlines()
    for line in lines:
        match = re.match(rf"^{re.escape(name)}(?:\s+(.*))?$", line.strip())
        if match:
            return (match.group(1) or "").strip()
    return None


def _reply(ftp):
    """
    One reply from EVA on the control connection, read line by line: lines
    without a reply code (EVA's GETENV value line) are collected until the line
    with the code.  Returns ``(code, text, unnumbered_lines)``; raises EOFError
    when EVA hangs up, ftplib.error_proto when it never sends a code.
    """
    extra = []
    while len(extra) <= MAX_UNNUMBERED:
        line = ftp.getline()
        match = re.match(r"^(\d{3})([ -])(.*)$", line)
        if not match:
            extra.append(line)
            continue
        code, more, text = match.groups()
        while more == "-":  # RFC 959 multi-line reply: up to "<code> "
            line = ftp.getline()
            if line.startswith(f"{code} "):
                more, text = " ", f"{text}\n{line[4:]}"
            else:
                text = f"{text}\n{line}"
        return code, text, extra
    raise ftplib.error_proto(f"more than {MAX_UNNUMBERED} lines without a reply code")


def _getenv(ftp, name):
    """``GETENV name`` on a logged-in connection; None when EVA has no such variable."""
    ftp.putcmd(f"GETENV {name}")
    code, text, lines = _reply(ftp)
    if code.startswith("5"):
        return None  # "501 <name> environment variable not set."
    if code != "200":
        raise CommandExecutionError(f"EVA answered GETENV {name} with {code} {text}")
    return parse_getenv(name, lines)


def _check_eva(ftp, address, port):
    """Refuse a server that is not EVA: EVA answers SYST with ``215 AVM EVA ...``."""
    try:
        reply = ftp.sendcmd("SYST")
    except ftplib.Error as exc:
        reply = str(exc)
    reply = " ".join(reply.split())
    if not reply.startswith("215 AVM EVA"):
        raise CommandExecutionError(
            f"the FTP server at {address}:{port} is not AVM's EVA bootloader (SYST answered "
            f"{reply[:80]!r}, EVA answers '215 AVM EVA Version ...'): refusing to flash "
            "(nothing was uploaded)"
        )
    return reply[4:]


def nand_vendor(hardware_features):
    """
    The NAND vendor in EVA's ``HardwareFeatures`` value (``nand=0x<JEDEC id>,...``;
    the first byte is the manufacturer: 0x2c Micron, 0xad Hynix), or None.
    """
    match = re.search(r"(?:^|,)\s*nand=0x([0-9a-fA-F]{2})", hardware_features or "")
    if not match:
        return None
    code = int(match.group(1), 16)
    return NAND_VENDORS.get(code, f"unknown (0x{code:02x})")


def _partition_size(value):
    """EVA's ``mtdN`` value ``0xSTART,0xEND`` -> size in bytes (None if not that form)."""
    match = re.fullmatch(r"\s*(0x[0-9a-fA-F]+)\s*,\s*(0x[0-9a-fA-F]+)\s*", value or "")
    if not match:
        return None
    return int(match.group(2), 16) - int(match.group(1), 16)


def environment(  # noqa: PLR0917
    address=DEFAULT_ADDRESS,
    port=21,
    user=DEFAULT_USER,
    password=DEFAULT_PASSWORD,
    window=60,
    retry_interval=0.5,
    names=ENV_NAMES,
):
    """
    Read the box's bootloader environment (model, hardware revision, bootloader
    version, partitions) during the EVA window; changes nothing.

    CLI Example:

    .. code-block:: bash

        salt-call eva.environment window=120
    """
    # checked here too, before any connection: a NaN window would never pass
    _endpoint(address, port)
    _number("window", window)
    _number("retry_interval", retry_interval)
    ftp = _connect(address, port, user, password, window, retry_interval)
    try:
        _check_eva(ftp, address, port)
        return {name: _getenv(ftp, name) for name in names}
    except (OSError, EOFError, ftplib.Error) as exc:
        raise CommandExecutionError(
            f"EVA at {address}:{port} broke off the dialogue: {type(exc).__name__}: {exc}"
        ) from exc
    finally:
        _quit(ftp)


def _quit(ftp):
    try:
        ftp.quit()
    except (OSError, EOFError, ftplib.Error):
        ftp.close()


def _named_chips(path):
    name = os.path.basename(path).lower()
    return [chip for chip in FLASH_CHIPS if chip in name]


def _check_box(env, images, model="Fritz_Box_3370", hwrevisions=None, flash_chip=None):
    """
    Refuse a box of another model/revision, images larger than its partitions,
    and images built for another NAND than the one the box itself reports
    (``HardwareFeatures nand=0x..``); pillar's ``flash_chip`` is only a
    cross-check of that.  Returns ``(flash_chip, source)``.
    """
    product = env.get("ProductID")
    if product != model:
        raise CommandExecutionError(
            f"the box reports ProductID {product!r}, not {model!r}: refusing to flash images "
            "built for another model (nothing was uploaded)"
        )
    if hwrevisions and str(env.get("HWRevision")) not in [str(r) for r in hwrevisions]:
        raise CommandExecutionError(
            f"the box reports HWRevision {env.get('HWRevision')!r}, expected one of "
            f"{', '.join(map(str, hwrevisions))}: refusing to flash (nothing was uploaded)"
        )
    for role, partition in (("kernel", "mtd1"), ("filesystem", "mtd0")):
        size = _partition_size(env.get(partition))
        if size is not None and images[role]["size"] > size:
            raise CommandExecutionError(
                f"{role} image {images[role]['path']} has {images[role]['size']} bytes but "
                f"{partition} holds {size}: refusing to flash (nothing was uploaded)"
            )
    reported = nand_vendor(env.get("HardwareFeatures"))
    if reported is None:
        if not flash_chip:
            raise CommandExecutionError(
                "the box reports no NAND chip (no 'nand=0x..' in HardwareFeatures) and no "
                "flash_chip was given: refusing to flash (nothing was uploaded)"
            )
        log.warning("eva: the box reports no NAND chip; trusting flash_chip=%s", flash_chip)
        return flash_chip, "pillar"
    seen = f"HardwareFeatures {env.get('HardwareFeatures')!r}"
    for role in ("kernel", "filesystem"):
        path = images[role]["path"]
        named = _named_chips(path)
        if named and reported not in named:
            raise CommandExecutionError(
                f"{role} image {path} is built for {'/'.join(named)} NAND, but the box reports "
                f"{reported} ({seen}): refusing to flash (nothing was uploaded)"
            )
        if not named and model in PER_NAND_MODELS:
            raise CommandExecutionError(
                f"{role} image {path} names no NAND chip; OpenWRT builds {model} images per "
                f"NAND and the box reports {reported}: refusing to flash (nothing was uploaded)"
            )
    if flash_chip and flash_chip != reported:
        raise CommandExecutionError(
            f"flash_chip is {flash_chip!r}, but the box reports {reported} ({seen}): "
            "refusing to flash (nothing was uploaded)"
        )
    return reported, "box"


def _command(ftp, line, expect="2"):
    reply = ftp.sendcmd(line)
    if not reply.startswith(expect):
        raise CommandExecutionError(f"EVA answered {line!r} with {reply!r}")
    return reply


def _upload(ftp, image, partition, progress):
    sent = 0

    def count(block):
        nonlocal sent
        sent += len(block)
        if sent == image["size"] or sent // (1 << 20) != (sent - len(block)) // (1 << 20):
            log.info("eva: %s -> %s: %d/%d bytes", image["path"], partition, sent, image["size"])

    started = time.monotonic()
    try:
        with open(image["path"], "rb") as handle:
            reply = ftp.storbinary(f"STOR {partition}", handle, CHUNK, count)
    except (OSError, EOFError, ftplib.Error) as exc:
        raise CommandExecutionError(
            f"upload of {image['path']} to {partition} was interrupted after {sent} of "
            f"{image['size']} bytes ({type(exc).__name__}: {exc}). {partition} is now "
            "incomplete: do not let the box boot it; power-cycle it and flash again "
            "during the EVA window"
        ) from exc
    progress.append(
        {
            "partition": partition,
            "image": image["path"],
            "bytes": sent,
            "seconds": round(time.monotonic() - started, 2),
            "reply": reply,
        }
    )
    if sent != image["size"]:
        raise CommandExecutionError(
            f"upload of {image['path']} to {partition} sent {sent} of {image['size']} bytes"
        )


def flash(  # noqa: PLR0917
    kernel,
    filesystem,
    address=DEFAULT_ADDRESS,
    port=21,
    user=DEFAULT_USER,
    password=DEFAULT_PASSWORD,
    model="Fritz_Box_3370",
    hwrevisions=None,
    flash_chip=None,
    window=60,
    retry_interval=0.5,
    transfer_timeout=300,
    reboot=True,
    timeout=10,
):
    """
    Flash OpenWRT's EVA kernel and filesystem images: images checked, EVA's window
    awaited, the box's model/revision/partitions checked (refused before any
    upload), ``SETENV linux_fs_start 0``, binary mode, ``MEDIA FLSH``, kernel to
    mtd1, filesystem to mtd0, ``REBOOT``.  Returns the box's environment and the
    progress of each upload.  ``transfer_timeout`` covers EVA's pause while it
    erases the partition before it answers; ``timeout`` covers every other reply.
    The server must answer SYST with ``215 AVM EVA`` and its environment's NAND
    (``HardwareFeatures nand=0x..``) must be the one the images are built for.

    CLI Example:

    .. code-block:: bash

        salt-call eva.flash /srv/openwrt/...-fritz3370-rev2-micron-squashfs-eva-kernel.bin \\
            /srv/openwrt/...-fritz3370-rev2-micron-squashfs-eva-filesystem.bin \\
            flash_chip=micron hwrevisions='[175]' window=120
    """
    _endpoint(address, port)
    _number("window", window)
    _number("retry_interval", retry_interval)
    transfer_timeout = _number("transfer_timeout", transfer_timeout)
    timeout = _number("timeout", timeout)
    images = check_images(kernel, filesystem, model, flash_chip)
    ftp = _connect(address, port, user, password, window, retry_interval, timeout)
    progress = []
    try:
        system = _check_eva(ftp, address, port)
        env = {name: _getenv(ftp, name) for name in ENV_NAMES}
        chip, chip_source = _check_box(env, images, model, hwrevisions, flash_chip)
        log.info(
            "eva: %s rev %s (%s NAND, EVA %s) at %s: flashing",
            model, env.get("HWRevision"), chip, env.get("bootloaderVersion"), address,
        )  # fmt: skip
        _command(ftp, "SETENV linux_fs_start 0")
        _command(ftp, "TYPE I")
        _command(ftp, "MEDIA FLSH")
        ftp.sock.settimeout(transfer_timeout)
        _upload(ftp, images["kernel"], "mtd1", progress)
        _upload(ftp, images["filesystem"], "mtd0", progress)
        rebooted = False
        if reboot:
            try:
                reply = ftp.sendcmd("REBOOT")
            except EOFError:
                reply = "connection closed"
            rebooted = reply.startswith("221") or reply == "connection closed"
            if not rebooted:
                raise CommandExecutionError(f"EVA answered REBOOT with {reply!r}")
    except (OSError, EOFError, ftplib.Error) as exc:
        raise CommandExecutionError(
            f"EVA at {address}:{port} failed after {len(progress)} of 2 uploads: "
            f"{type(exc).__name__}: {' '.join(str(exc).split())}"
        ) from exc
    finally:
        ftp.close()
    return {
        "address": address,
        "system": system,
        "flash_chip": chip,
        "flash_chip_source": chip_source,
        "environment": env,
        "uploads": progress,
        "images": {role: image["sha256"] for role, image in images.items()},
        "rebooted": rebooted,
    }
