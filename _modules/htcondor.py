"""
Helpers of the htcondor formula that a state cannot express: the apt signing
key of HTCondor's repository, fetched once and stored in the form apt expects
from the keyring's name (``*.asc`` ASCII-armored, ``*.gpg`` binary), whichever
form the source has.  The key is fetched only when the keyring is missing (or
does not hash as ``key_sha256``), never in test mode, so a no-op highstate does
not touch the network.
"""

import base64
import hashlib
import os
import re
import shutil
import subprocess
import tempfile

from salt.exceptions import CommandExecutionError, SaltInvocationError

__virtualname__ = "htcondor"

ARMOR_BEGIN = "-----BEGIN PGP PUBLIC KEY BLOCK-----"
ARMOR_END = "-----END PGP PUBLIC KEY BLOCK-----"
MAX_KEY_BYTES = 1024 * 1024


def __virtual__():
    return __virtualname__


KEY_SOURCE = re.compile(
    r"https?://[A-Za-z0-9.:@\[\]_-]+(/[A-Za-z0-9_.~%+=,:@/-]*)?"
    r"|salt://[A-Za-z0-9_.+/-]+"
    r"|/[A-Za-z0-9_.+/-]+"
)


def validate(params):
    """
    The checks the schema cannot say in one line (``validator: htcondor.validate``):
    ``repo:key_url`` is an http(s):// URL, a salt:// URL or an absolute path,
    without '..', quotes, spaces or shell characters; ``repo:keyring`` names
    its form (``.asc`` armored, ``.gpg`` binary).  Reads nothing from the system.

    CLI Example:

    .. code-block:: bash

        salt-call htcondor.validate "$(salt-call --out=json labsalt.mapdata htcondor)"
    """
    repo = (params or {}).get("repo") or {}
    source = repo.get("key_url")
    if source is not None:
        shown = repr(source) if len(repr(source)) <= 60 else repr(source)[:50] + "...'"
        parts = re.split(r"/+", source.split("://", 1)[-1])
        if not KEY_SOURCE.fullmatch(source) or ".." in parts or "." in parts:
            raise SaltInvocationError(
                f"htcondor:repo:key_url: {shown} is not an http(s):// URL, a salt:// URL or "
                "an absolute path (letters, digits, _ . / + - only; no '..')"
            )
    keyring = repo.get("keyring")
    if keyring is not None and not re.fullmatch(r"/[A-Za-z0-9_.+/-]+\.(asc|gpg)", keyring):
        raise SaltInvocationError(
            f"htcondor:repo:keyring: {keyring!r} must end in .asc (armored) or .gpg (binary), "
            "the form apt reads it in"
        )
    return True


def _crc24(data):
    crc = 0xB704CE
    for byte in data:
        crc ^= byte << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1864CFB
    return crc & 0xFFFFFF


def dearmor(text):
    """The binary OpenPGP packets of an ASCII-armored public key block."""
    if isinstance(text, bytes):
        text = text.decode("ascii", "replace")
    match = re.search(re.escape(ARMOR_BEGIN) + r"\r?\n(.*?)" + re.escape(ARMOR_END), text, re.S)
    if not match:
        raise CommandExecutionError("not an ASCII-armored OpenPGP public key block")
    body = match.group(1).replace("\r", "")
    # headers (Version: ...) end at the first empty line
    if "\n\n" in body:
        head, body = body.split("\n\n", 1)
        if not all(":" in line for line in head.splitlines()):
            body = head + "\n\n" + body
    lines = [line.strip() for line in body.splitlines() if line.strip()]
    checksum = None
    if lines and lines[-1].startswith("=") and len(lines[-1]) == 5:
        checksum = lines.pop()[1:]
    try:
        data = base64.b64decode("".join(lines), validate=True)
    except ValueError as exc:
        raise CommandExecutionError(f"the armored key is not valid base64: {exc}") from exc
    if checksum is not None:
        expected = int.from_bytes(base64.b64decode(checksum), "big")
        if _crc24(data) != expected:
            raise CommandExecutionError("the armored key's CRC24 checksum does not match")
    return data


def armor(data):
    """ASCII-armor binary OpenPGP packets as a public key block."""
    body = base64.b64encode(data).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    crc = base64.b64encode(_crc24(data).to_bytes(3, "big")).decode()
    return "\n".join([ARMOR_BEGIN, "", *lines, f"={crc}", ARMOR_END, ""]).encode()


def _is_public_key_packet(data):
    """First packet of the data is an OpenPGP public key (tag 6), old or new format."""
    if not data:
        return False
    first = data[0]
    if not first & 0x80:
        return False
    tag = first & 0x3F if first & 0x40 else (first >> 2) & 0x0F
    return tag == 6


def keyring_bytes(data, keyring):
    """``data`` (armored or binary key) in the form apt reads from ``keyring``'s name."""
    text = data[:4096].decode("ascii", "replace")
    binary = dearmor(data) if ARMOR_BEGIN in text else data
    if not _is_public_key_packet(binary):
        raise CommandExecutionError("the key file is not an OpenPGP public key (armored or binary)")
    return armor(binary) if keyring.endswith(".asc") else binary


def _sha256(data):
    return hashlib.sha256(data).hexdigest()


def keyring_status(keyring, key_sha256=None):
    """
    Whether ``keyring`` is in place: ``present`` (and the form apt expects from
    its name), and when ``key_sha256`` is given whether the stored key matches
    it.  Reads only the local file.

    CLI Example:

    .. code-block:: bash

        salt-call htcondor.keyring_status /usr/share/keyrings/labsalt-htcondor-archive-keyring.asc
    """
    if not os.path.isfile(keyring):
        return {"present": False, "current": False}
    with open(keyring, "rb") as handle:
        data = handle.read(MAX_KEY_BYTES + 1)
    try:
        binary = dearmor(data) if keyring.endswith(".asc") else data
        well_formed = _is_public_key_packet(binary)
    except CommandExecutionError:
        well_formed = False
    current = well_formed
    if key_sha256 and current:
        # key_sha256 is the source file's hash: compare in both forms
        current = key_sha256.lower() in {_sha256(data), _sha256(binary), _sha256(armor(binary))}
    return {"present": True, "current": current}


def install_keyring(keyring, source, key_sha256=None, saltenv="base"):
    """
    Fetch the key from ``source`` (http(s)://, salt:// or an absolute path),
    check ``key_sha256`` when given, and write it atomically to ``keyring`` in
    the form apt expects from the name (mode 0644).  Returns the sha256 written.

    CLI Example:

    .. code-block:: bash

        salt-call htcondor.install_keyring /usr/share/keyrings/x.asc https://example.org/key
    """
    if not isinstance(source, str) or not source:
        raise SaltInvocationError("htcondor:repo:key_url: missing")
    if source.startswith("/"):
        path = source
    else:
        path = __salt__["cp.cache_file"](source, saltenv)
        if not path:
            raise CommandExecutionError(f"cannot fetch the repository key from {source}")
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_KEY_BYTES + 1)
    except OSError as exc:
        raise CommandExecutionError(
            f"cannot read the repository key {source}: {exc.strerror}"
        ) from exc
    if len(data) > MAX_KEY_BYTES:
        raise CommandExecutionError(f"the repository key {source} is larger than 1 MiB")
    if key_sha256 and _sha256(data) != key_sha256.lower():
        raise CommandExecutionError(
            f"the repository key {source} has sha256 {_sha256(data)}, not {key_sha256}"
        )
    content = keyring_bytes(data, keyring)
    directory = os.path.dirname(keyring)
    os.makedirs(directory, mode=0o755, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".labsalt-key-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fchmod(handle.fileno(), 0o644)
            os.fsync(handle.fileno())
        os.replace(tmp, keyring)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return _sha256(content)


def is_active(service):
    """
    Whether systemd's unit ``service`` is active (``systemctl is-active``, an
    argument list).  The formula's reconfig step asks this; Salt's ``service``
    module would do, but finding it makes Salt's loader import every execution
    module first (about a second per highstate).

    CLI Example:

    .. code-block:: bash

        salt-call htcondor.is_active condor
    """
    if not isinstance(service, str) or not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.+:@-]*", service):
        raise SaltInvocationError(f"htcondor:service: {service!r} is not a unit name")
    try:
        done = subprocess.run(
            ["systemctl", "is-active", "--quiet", f"{service}.service"],
            capture_output=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def reconfig():
    """
    Make the running HTCondor reread its configuration (``condor_reconfig``).

    CLI Example:

    .. code-block:: bash

        salt-call htcondor.reconfig
    """
    try:
        done = subprocess.run(
            ["condor_reconfig"], capture_output=True, text=True, timeout=120, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CommandExecutionError(f"condor_reconfig failed: {exc}") from exc
    if done.returncode != 0:
        message = (done.stderr or done.stdout).strip().splitlines()
        raise CommandExecutionError(
            "condor_reconfig failed: " + (message[-1] if message else f"exit {done.returncode}")
        )
    return (done.stdout or "").strip()


# --------------------------------------------------------------------------- verify (issue 18)


def slot_layout(plan):
    """
    What HTCondor's configuration must say for ``plan`` (``topology.slot_plan``):
    ``{name: value}``, None where the name must not be defined (the
    whole-machine slot is not pinned).  The same names slots.conf.jinja writes.
    """
    layout = {"NUM_SLOTS": str(len(plan))}
    for slot in plan:
        n = slot["id"]
        layout[f"NUM_SLOTS_TYPE_{n}"] = "1"
        layout[f"SLOT_TYPE_{n}"] = slot["slot_type"]
        layout[f"SLOT_TYPE_{n}_PARTITIONABLE"] = "True"
        layout[f"SLOT{n}_CPU_AFFINITY"] = slot["affinity"] or None
    return layout


def config_val(name, binary="condor_config_val"):
    """
    The value HTCondor's configuration gives ``name`` (``condor_config_val
    NAME``, an argument list), None when it is not defined.  Read-only.

    CLI Example:

    .. code-block:: bash

        salt-call htcondor.config_val NUM_SLOTS
    """
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", name):
        raise SaltInvocationError(f"htcondor: {name!r} is not a configuration name")
    try:
        done = subprocess.run(
            [binary, name], capture_output=True, text=True, timeout=60, check=False,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CommandExecutionError(f"condor_config_val does not run: {exc}") from exc
    if done.returncode == 0:
        return done.stdout.strip()
    message = (done.stderr or done.stdout).strip()
    if message.startswith("Not defined:"):
        return None
    last = message.splitlines()
    raise CommandExecutionError(
        f"condor_config_val {name} failed: " + (last[-1] if last else f"exit {done.returncode}")
    )


def _same(got, want):
    if got is None or want is None:
        return got is want
    return " ".join(got.split()) == " ".join(want.split())


def verify_slots(plan):
    """
    Where HTCondor is installed (``condor_config_val`` on PATH), read the slot
    layout back from the live configuration: NUM_SLOTS, NUM_SLOTS_TYPE_n,
    SLOT_TYPE_n(_PARTITIONABLE) and SLOTn_CPU_AFFINITY equal to ``plan``.
    Returns a one-line summary; raises CommandExecutionError with one line
    naming the first name that disagrees.  Changes nothing.

    CLI Example:

    .. code-block:: bash

        salt-call htcondor.verify_slots "$(salt-call --out=json topology.slot_plan numa)"
    """
    binary = shutil.which("condor_config_val")
    if not binary:
        return "condor_config_val is not installed here: the slot layout is not read back"
    layout = slot_layout(plan)
    for name, want in layout.items():
        got = config_val(name, binary)
        if not _same(got, want):
            shown = "not defined" if got is None else repr(got)
            planned = "not defined" if want is None else repr(want)
            raise CommandExecutionError(
                f"condor_config_val reads {name} as {shown}, the plan says {planned}"
            )
    return (
        f"condor_config_val reads the planned layout back ({len(plan)} slots, {len(layout)} names)"
    )
