"""
Linux binfmt_misc registrations: read, register, remove.

binfmt_misc lets the kernel hand binaries of a foreign format to an interpreter,
which is how qemu user-mode emulation runs a big-endian ppc64 program on amd64.
With the ``F`` (fix-binary) flag the kernel opens the interpreter when the entry
is registered, so containers and chroots need no copy of qemu inside them.

Registrations are kernel-wide (per user namespace): everything here acts on
``/proc/sys/fs/binfmt_misc``, mounting it first where the host has not.
"""

import json
import logging
import os
import re
import subprocess
import tempfile

from salt.exceptions import CommandExecutionError, SaltInvocationError

log = logging.getLogger(__name__)

__virtualname__ = "binfmt"

ROOT = "/proc/sys/fs/binfmt_misc"
VALID_FLAGS = set("POCF")
NAME = re.compile(r"^[A-Za-z0-9_.+-]{1,64}$")
# ':' separates the register string's fields; blanks, control characters and
# shell characters have no business in an interpreter path either.
INTERPRETER = re.compile(r"^/[A-Za-z0-9_./+@-]{1,254}$")


def __virtual__():
    if not os.path.isfile("/proc/filesystems"):
        return (False, "binfmt: /proc is not mounted")
    with open("/proc/filesystems", encoding="ascii") as handle:
        if "binfmt_misc" not in handle.read():
            return (False, "binfmt: the kernel has no binfmt_misc file system")
    return __virtualname__


# --------------------------------------------------------------------------- parsing


def _hexbytes(text, what):
    """``\\x7f\\x45...`` (binfmt.d / update-binfmts notation) or plain hex -> bytes."""
    text = text.strip()
    try:
        if "\\x" in text:
            return bytes(int(part, 16) for part in text.split("\\x")[1:])
        return bytes.fromhex(text)
    except ValueError as exc:
        raise SaltInvocationError(
            f"{what} {text!r} is not hex bytes (\\x7f\\x45... or 7f45...)"
        ) from exc


def _escaped(data):
    return "".join(f"\\x{byte:02x}" for byte in data)


def spec(name, interpreter, magic, mask="", offset=0, flags="F"):  # noqa: PLR0917
    """
    Normalise a registration: magic/mask as hex strings, flags sorted, checked.

    CLI Example:

    .. code-block:: bash

        salt-call binfmt.spec qemu-ppc64 /usr/bin/qemu-ppc64-static '\\x7f\\x45\\x4c\\x46' flags=F
    """
    if not NAME.match(str(name)):
        raise SaltInvocationError(f"binfmt name {name!r} must be 1-64 letters, digits or ._+-")
    if not INTERPRETER.match(str(interpreter)) or "/../" in f"{interpreter}/":
        raise SaltInvocationError(
            f"binfmt interpreter {interpreter!r} must be an absolute path of letters, digits "
            "and _./+@- (no ':', the register string's separator, no '..')"
        )
    if not 0 <= int(offset) <= 127:
        raise SaltInvocationError(f"binfmt offset {offset!r} is not 0-127")
    magic_bytes = _hexbytes(magic, "binfmt magic")
    mask_bytes = _hexbytes(mask, "binfmt mask") if mask else b""
    if not magic_bytes:
        raise SaltInvocationError("binfmt magic must not be empty")
    if mask_bytes and len(mask_bytes) != len(magic_bytes):
        raise SaltInvocationError(
            f"binfmt mask has {len(mask_bytes)} bytes but magic has {len(magic_bytes)}"
        )
    unknown = set(flags) - VALID_FLAGS
    if unknown:
        raise SaltInvocationError(
            f"binfmt flags {flags!r}: unknown {''.join(sorted(unknown))} (allowed: P, O, C, F)"
        )
    if "C" in flags and "O" not in flags:
        flags += "O"  # the kernel implies O for C
    return {
        "name": str(name),
        "interpreter": str(interpreter),
        "offset": int(offset),
        "magic": magic_bytes.hex(),
        "mask": mask_bytes.hex(),
        "flags": "".join(sorted(set(flags), key="POCF".index)),
    }


def registration_line(entry):
    """The ``:name:M:offset:magic:mask:interpreter:flags`` line for the register file."""
    return ":{name}:M:{offset}:{magic}:{mask}:{interpreter}:{flags}".format(
        name=entry["name"],
        offset=entry["offset"] or "",
        magic=_escaped(bytes.fromhex(entry["magic"])),
        mask=_escaped(bytes.fromhex(entry["mask"])),
        interpreter=entry["interpreter"],
        flags=entry["flags"],
    )


def parse_status(name, text):
    """Parse ``/proc/sys/fs/binfmt_misc/<name>`` (the kernel's view of an entry)."""
    entry = {"name": name, "enabled": False, "offset": 0, "magic": "", "mask": "", "flags": ""}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if line in ("enabled", "disabled"):
            entry["enabled"] = line == "enabled"
        elif key == "interpreter":
            entry["interpreter"] = value
        elif key == "flags:":
            entry["flags"] = "".join(sorted(set(value.strip()), key="POCF".index))
        elif key in ("offset", "magic", "mask"):
            entry[key] = int(value) if key == "offset" else value.replace(" ", "")
        elif key == "extension":
            entry["extension"] = value
    return entry


def same(live, wanted):
    """True when a live entry matches a wanted spec (ignoring 'enabled')."""
    keys = ("interpreter", "offset", "magic", "mask", "flags")
    mask = wanted["mask"] or "ff" * (len(wanted["magic"]) // 2)
    live_mask = live.get("mask") or "ff" * (len(live.get("magic", "")) // 2)
    return all(live.get(k) == wanted[k] for k in keys if k != "mask") and live_mask == mask


# --------------------------------------------------------------------------- live state


def mounted():
    """
    True when binfmt_misc is mounted at /proc/sys/fs/binfmt_misc.

    CLI Example:

    .. code-block:: bash

        salt-call binfmt.mounted
    """
    return os.path.exists(os.path.join(ROOT, "register"))


def mount():
    """
    Mount binfmt_misc at /proc/sys/fs/binfmt_misc unless it is; True when it mounted.

    CLI Example:

    .. code-block:: bash

        salt-call binfmt.mount
    """
    if mounted():
        return False
    proc = subprocess.run(
        ["mount", "-t", "binfmt_misc", "binfmt_misc", ROOT],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0 or not mounted():
        raise CommandExecutionError(
            f"cannot mount binfmt_misc on {ROOT}: {proc.stderr.strip() or 'no register file'} "
            "(a container without CAP_SYS_ADMIN cannot; register on the host instead)"
        )
    return True


def entries():
    """
    All registered entries, by name, as the kernel reports them ({} when not mounted).

    CLI Example:

    .. code-block:: bash

        salt-call binfmt.entries
    """
    if not mounted():
        return {}
    found = {}
    for name in sorted(os.listdir(ROOT)):
        if name in ("register", "status"):
            continue
        try:
            with open(os.path.join(ROOT, name), encoding="utf-8") as handle:
                found[name] = parse_status(name, handle.read())
        except FileNotFoundError:
            continue  # removed meanwhile
    return found


def entry(name):
    """
    One entry as the kernel reports it, or None.

    CLI Example:

    .. code-block:: bash

        salt-call binfmt.entry qemu-ppc64
    """
    return entries().get(name)


def _write(path, text):
    try:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        raise CommandExecutionError(f"writing {text!r} to {path} failed: {exc.strerror}") from exc


def _matches(header, entry):
    magic = bytes.fromhex(entry["magic"])
    mask = bytes.fromhex(entry["mask"]) if entry["mask"] else b"\xff" * len(magic)
    window = header[entry["offset"] : entry["offset"] + len(magic)]
    return len(window) == len(magic) and all(
        (h & m) == (g & m) for h, m, g in zip(window, mask, magic, strict=True)
    )


def _refuse_native(entry):
    """
    An entry that matches this machine's own executables (or its interpreter) would
    send every exec to the interpreter, which is itself such a file: every program
    on the host would fail with ELOOP.  Refuse before touching the kernel.
    """
    for path in ("/bin/sh", "/proc/self/exe", entry["interpreter"]):
        try:
            with open(path, "rb") as handle:
                header = handle.read(256)
        except OSError:
            continue
        if _matches(header, entry):
            raise SaltInvocationError(
                f"binfmt entry {entry['name']}: magic/mask would also match this machine's "
                f"own programs ({os.path.realpath(path)}); refusing to register it"
            )


# --------------------------------------------------------------------------- ownership
#
# binfmt_misc is shared by everything on the host (binfmt-support, systemd-binfmt,
# other tools).  A ``record`` file says that labsalt registered an entry, and what
# was registered under that name before it (None: nothing); only an entry with a
# record is labsalt's to remove, and removing it puts the previous one back.


def owned(record):
    """
    The ownership record at ``record`` (``{"name", "previous"}``), or None when
    labsalt did not register the entry.

    CLI Example:

    .. code-block:: bash

        salt-call binfmt.owned /var/lib/labsalt/ppc64_emulation/binfmt-qemu-ppc64.json
    """
    try:
        with open(record, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise CommandExecutionError(
            f"binfmt ownership record {record} is unreadable: {exc}"
        ) from None
    return data if isinstance(data, dict) and data.get("name") else None


def _write_record(record, data):
    os.makedirs(os.path.dirname(record), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(record), prefix=".binfmt-")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, sort_keys=True)
    os.replace(tmp, record)


def _register_line(fields):
    """Register an entry from stored fields (a previous owner's) exactly as it was."""
    _write(os.path.join(ROOT, "register"), registration_line(fields))
    if fields.get("enabled") is False:
        _write(os.path.join(ROOT, fields["name"]), "0")


def release(name, record):
    """
    Remove the entry ``name`` only when ``record`` says labsalt registered it, and
    register again what was there before; then drop the record.  Returns
    ``{"removed": entry or None, "restored": previous or None}``, or None when the
    entry was not labsalt's (it is left alone).

    CLI Example:

    .. code-block:: bash

        salt-call binfmt.release qemu-ppc64 /var/lib/labsalt/ppc64_emulation/binfmt-qemu-ppc64.json
    """
    data = owned(record)
    if data is None or data["name"] != name:
        return None
    live = entry(name)
    if live:
        unregister(name)
    previous = data.get("previous")
    if previous:
        mount()
        _register_line(previous)
    os.remove(record)
    return {"removed": live, "restored": previous}


def register(name, interpreter, magic, mask="", offset=0, flags="F", record=None):  # noqa: PLR0917
    """
    Register an entry (replacing one of the same name that differs) and return
    the kernel's view of it.  With ``F`` the interpreter must exist now.  With
    ``record`` (a file path), a change is recorded as labsalt's, with the entry it
    replaced, so that ``release`` removes only what labsalt registered.

    CLI Example:

    .. code-block:: bash

        salt-call binfmt.register qemu-ppc64 /usr/libexec/qemu-binfmt/ppc64-binfmt-P \\
            '\\x7f\\x45\\x4c\\x46\\x02\\x02\\x01' flags=POF
    """
    wanted = spec(name, interpreter, magic, mask, offset, flags)
    if not os.access(wanted["interpreter"], os.X_OK):
        raise CommandExecutionError(
            f"binfmt interpreter {wanted['interpreter']} does not exist or is not executable "
            "(is qemu-user-static installed?)"
        )
    _refuse_native(wanted)
    mount()
    live = entry(wanted["name"])
    if live and same(live, wanted) and live["enabled"]:
        return live
    if record and owned(record) is None:
        keep = ("name", "interpreter", "offset", "magic", "mask", "flags", "enabled")
        previous = {k: live[k] for k in keep if k in live} if live else None
        _write_record(record, {"name": wanted["name"], "previous": previous})
    if live:
        unregister(wanted["name"])
    _write(os.path.join(ROOT, "register"), registration_line(wanted))
    log.info("binfmt: registered %s -> %s", wanted["name"], wanted["interpreter"])
    return entry(wanted["name"])


def unregister(name):
    """
    Remove an entry; True when it existed.

    CLI Example:

    .. code-block:: bash

        salt-call binfmt.unregister qemu-ppc64
    """
    path = os.path.join(ROOT, name)
    if not NAME.match(str(name)) or not os.path.exists(path):
        return False
    _write(path, "-1")
    return True
