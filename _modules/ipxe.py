"""
Network installer for Windows: the iPXE menu and the files wimboot injects.

The ``ipxe`` formula serves Windows installer trees over TFTP and SMB.  This
module turns the formula's parameters (``labsalt.mapdata ipxe``) into the text
of the files it writes, after checking that every file the menu will ask for
exists in the served tree:

- ``menu.ipxe``: one item per installer; each loads ``wimboot`` and the
  installer's ``boot/bcd``, ``boot/boot.sdi``, ``sources/boot.wim`` and the boot
  fonts that exist, plus two injected files;
- ``winpeshl.ini``: tells Windows PE to run ``install.cmd`` instead of its shell;
- ``install.cmd`` (one per installer): initialises the network, mounts the
  read-only SMB share with the credentials from pillar and starts ``setup.exe``
  from it, so the installer finds its packages without Shift-F10.

wimboot puts every extra initrd file (all but BCD, ``*.sdi`` and ``*.wim``)
into ``X:\\Windows\\System32`` of the booted image (https://ipxe.org/wimboot).
"""

import os
import re
import shlex
import shutil
import struct
import tempfile

from salt.exceptions import CommandExecutionError, SaltInvocationError

__virtualname__ = "ipxe"

# Files an installer entry must have (relative to its directory, matched
# case-insensitively because extracted media differ: boot/bcd or Boot/BCD), with
# the name wimboot is given for each.
REQUIRED_FILES = (
    ("BCD", "boot/bcd"),
    ("boot.sdi", "boot/boot.sdi"),
    ("boot.wim", "sources/boot.wim"),
)
WIM_MAGIC = b"MSWIM\0\0\0"
# Menu labels the generated menu uses itself.
RESERVED_IDS = {"start", "failed", "shell", "exit", "not_x64"}
RESERVED_KEYS = {"s", "x"}
INJECTED_DIR = "ipxe"  # below the TFTP root: winpeshl.ini and <id>/install.cmd
# Characters that cmd.exe would interpret even inside double quotes.
CMD_UNSAFE = re.compile(r'["%\r\n]')
# What iPXE's script parser acts on inside a line of text: line breaks end the
# command, ${...} expands a setting, || and && chain commands, \ and quotes are
# its escapes.  Menu text must hold none of them (the schema refuses them; the
# writer replaces any that slip through).
IPXE_UNSAFE = re.compile(r"[\x00-\x1f\x7f$&|\\\"'`]")
# Samba [global] option names: words of letters and digits.
SAMBA_OPTION = re.compile(r"[a-z][a-z0-9 ]*[a-z0-9]")
# The marked block this formula keeps in files it shares with the site
# (smb.conf's include line, tftpd-hpa's settings).
BLOCK_BEGIN = "# BEGIN labsalt ipxe"
BLOCK_END = "# END labsalt ipxe"
STATE_DIR = "/var/lib/labsalt/ipxe"


def __virtual__():
    return __virtualname__


# --------------------------------------------------------------------------- samba user


def _md4(data):
    """MD4 (RFC 1320): Samba's NT password hash; OpenSSL 3 no longer offers it."""
    mask = 0xFFFFFFFF

    def rotl(value, shift):
        return ((value << shift) | (value >> (32 - shift))) & mask

    rounds = (
        (lambda x, y, z: (x & y) | (~x & z), 0, list(range(16)), (3, 7, 11, 19)),
        (
            lambda x, y, z: (x & y) | (x & z) | (y & z),
            0x5A827999,
            [(i % 4) * 4 + i // 4 for i in range(16)],
            (3, 5, 9, 13),
        ),
        (
            lambda x, y, z: x ^ y ^ z,
            0x6ED9EBA1,
            [0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15],
            (3, 9, 11, 15),
        ),
    )
    message = data + b"\x80" + b"\0" * ((55 - len(data)) % 64) + struct.pack("<Q", len(data) * 8)
    state = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476]
    for offset in range(0, len(message), 64):
        words = struct.unpack("<16I", message[offset : offset + 64])
        a, b, c, d = state
        for func, const, order, shifts in rounds:
            for i, k in enumerate(order):
                a = rotl((a + func(b, c, d) + words[k] + const) & mask, shifts[i % 4])
                a, b, c, d = d, a, b, c
        state = [(x + y) & mask for x, y in zip(state, (a, b, c, d), strict=True)]
    return struct.pack("<4I", *state)


def nt_hash(password):
    """
    Samba's NT hash of ``password`` (MD4 of its UTF-16LE encoding), upper-case hex.

    CLI Example:

    .. code-block:: bash

        salt-call ipxe.nt_hash 'secret'
    """
    return _md4(password.encode("utf-16-le")).hex().upper()


def samba_user_hash(name, conf="/etc/samba/smb.conf"):
    """
    NT hash of a Samba user as stored in the passdb, or None when there is no
    such Samba user.

    CLI Example:

    .. code-block:: bash

        salt-call ipxe.samba_user_hash installer
    """
    if not shutil.which("pdbedit") or not os.path.exists(conf):
        # Samba not installed yet (test mode on a bare host): no such user.
        return None
    proc = __salt__["cmd.run_all"](
        ["pdbedit", "-s", conf, "-L", "-w", "-u", name],
        python_shell=False,
        output_loglevel="quiet",
        ignore_retcode=True,
    )
    if proc["retcode"] != 0:
        return None
    fields = proc["stdout"].strip().splitlines()[-1].split(":")
    return fields[3].upper() if len(fields) > 3 else None


def samba_set_password(name, password, conf="/etc/samba/smb.conf"):
    """
    Add Samba user ``name`` (the Unix user must exist) or set its password; the
    password goes to smbpasswd on stdin, never on a command line or in a log.

    CLI Example:

    .. code-block:: bash

        salt-call ipxe.samba_set_password installer 'secret'
    """
    proc = __salt__["cmd.run_all"](
        ["smbpasswd", "-c", conf, "-s", "-a", name],
        stdin=f"{password}\n{password}\n",
        python_shell=False,
        output_loglevel="quiet",
        ignore_retcode=True,
    )
    if proc["retcode"] != 0:
        raise CommandExecutionError(
            f"smbpasswd could not set the Samba password of {name}: {proc['stderr'].strip()}"
        )
    return True


# --------------------------------------------------------------------------- checks


def _find(directory, relpath):
    """Actual relative path of ``relpath`` under ``directory``, matching each part
    case-insensitively; None when it does not exist."""
    current, parts = directory, []
    for wanted in relpath.split("/"):
        try:
            names = os.listdir(current)
        except (FileNotFoundError, NotADirectoryError):
            return None
        match = next((n for n in sorted(names) if n.lower() == wanted.lower()), None)
        if match is None:
            return None
        current = os.path.join(current, match)
        parts.append(match)
    return "/".join(parts) if os.path.isfile(current) else None


def iso_listing(iso):
    """
    Files in an installer ISO (UDF or ISO 9660), as read by 7z, keyed by their
    lower-case path: ``{lower path: path}``.

    CLI Example:

    .. code-block:: bash

        salt-call ipxe.iso_listing /srv/isos/Win10_22H2_German_x64.iso
    """
    proc = __salt__["cmd.run_all"](
        ["7z", "l", "-slt", "-ba", iso], python_shell=False, output_loglevel="quiet"
    )
    if proc["retcode"] != 0:
        raise SaltInvocationError(f"7z cannot read {iso}: {proc['stderr'].strip()}")
    files, path = {}, None
    for line in proc["stdout"].splitlines():
        if line.startswith("Path = "):
            path = line[len("Path = ") :].replace("\\", "/")
        elif line == "Folder = -" and path:
            files[path.lower()] = path
    return files


def installer_files(params, installer):
    """
    List ``[name, path relative to the TFTP root]`` of the files wimboot gets for
    one installer, in load order; raise SaltInvocationError naming the installer
    and the first missing or invalid file.

    CLI Example:

    .. code-block:: bash

        salt-call ipxe.installer_files "$(labsalt mapdata ipxe)" '{id: win10de, ...}'
    """
    root = params["tftp"]["root"]
    rel_dir = f"{params['installers_dir']}/{installer['directory']}".strip("/")
    directory = os.path.join(root, rel_dir)
    where = f"ipxe:installers:{installer['id']}"
    iso = installer.get("iso")
    if os.path.isdir(directory):
        source, find = directory, lambda rel: _find(directory, rel)
    elif iso:
        # Not extracted yet (config.iso does it): check the ISO's own listing.
        if not os.path.isfile(iso):
            raise SaltInvocationError(f"{where}: iso {iso} does not exist")
        if not shutil.which("7z"):
            # p7zip-full comes with the same run (test mode on a bare host): the
            # ISO is checked when the menu is generated, after it is installed.
            return None
        listing = iso_listing(iso)
        source, find = iso, lambda rel: listing.get(rel.lower())
    else:
        raise SaltInvocationError(f"{where}: directory {directory} does not exist")
    files = []
    for name, relpath in REQUIRED_FILES:
        found = find(relpath)
        if found is None:
            raise SaltInvocationError(f"{where}: {source}/{relpath} is missing")
        files.append([name, f"{rel_dir}/{found}"])
    wim = os.path.join(root, files[-1][1])
    if source == directory:
        with open(wim, "rb") as handle:
            if handle.read(len(WIM_MAGIC)) != WIM_MAGIC:
                raise SaltInvocationError(f"{where}: {wim} is not a WIM image (no MSWIM header)")
    for font in params["fonts"]:
        found = find(f"boot/fonts/{font}")
        if found is not None:
            files.append([font, f"{rel_dir}/{found}"])
    return files


def _unique(installers, field):
    seen = {}
    for installer in installers:
        value = installer.get(field)
        if value is None:
            continue
        if value.lower() in seen and field == "id":
            raise SaltInvocationError(f"ipxe:installers: id '{value}' appears more than once")
        if value.lower() in seen:
            raise SaltInvocationError(
                f"ipxe:installers: {field} '{value}' is used by both '{seen[value.lower()]}' "
                f"and '{installer['id']}'"
            )
        seen[value.lower()] = installer["id"]


def check(params):
    """
    The checks of the merged parameters that the schema cannot express and that
    need nothing from the host: unique installer ids and menu keys, none reserved
    by the menu itself, a default that is an installer, credentials safe to put in
    a .cmd file, Samba option names.  The schema's ``validator``: raises
    SaltInvocationError with one line naming the key.

    CLI Example:

    .. code-block:: bash

        salt-call ipxe.check "$(labsalt mapdata ipxe)"
    """
    installers = params["installers"]
    _unique(installers, "id")
    _unique(installers, "key")
    for installer in installers:
        if installer["id"] in RESERVED_IDS:
            raise SaltInvocationError(
                f"ipxe:installers:{installer['id']}: the id is reserved by the menu "
                f"({', '.join(sorted(RESERVED_IDS))})"
            )
        if (installer.get("key") or "").lower() in RESERVED_KEYS:
            raise SaltInvocationError(
                f"ipxe:installers:{installer['id']}: key '{installer['key']}' is reserved "
                f"(s: iPXE shell, x: exit)"
            )
        if installer.get("http") and not params["menu"]["http_url"]:
            raise SaltInvocationError(
                f"ipxe:installers:{installer['id']}: http is true but ipxe:menu:http_url is not set"
            )
    default = params["menu"]["default"]
    if default is not None and default not in {i["id"] for i in installers}:
        raise SaltInvocationError(f"ipxe:menu:default: '{default}' is no installer id")
    for field in ("user", "password"):
        if CMD_UNSAFE.search(str(params["share"][field])):
            raise SaltInvocationError(
                f"ipxe:share:{field}: must not contain double quotes, percent signs or "
                "line breaks (they would break install.cmd)"
            )
    if not params["share"]["guest"] and not params["share"]["password"]:
        raise SaltInvocationError("ipxe:share:password: must be set when ipxe:share:guest is false")
    for option in (params.get("samba") or {}).get("global") or {}:
        if not isinstance(option, str) or not SAMBA_OPTION.fullmatch(option):
            raise SaltInvocationError(
                f"ipxe:samba:global: {option!r} is not a Samba option name (lower-case words)"
            )
    options = (params.get("tftp") or {}).get("options")
    if options and "--create" in options.split() or options and "-c" in options.split():
        raise SaltInvocationError(
            "ipxe:tftp:options: --create would let TFTP clients write into the served tree"
        )
    return True


def validate(params):
    """
    :py:func:`check`, then every file the menu refers to present in the served
    tree (or in the installer's ISO).  Returns the files per installer id (None
    for an installer whose ISO cannot be read before 7z is installed); raises
    SaltInvocationError with one sentence otherwise.

    CLI Example:

    .. code-block:: bash

        salt-call ipxe.validate "$(labsalt mapdata ipxe)"
    """
    installers = params["installers"]
    if not installers:
        raise SaltInvocationError("ipxe:installers: the list is empty; name at least one")
    check(params)
    if not params["server"]:
        raise SaltInvocationError(
            "ipxe:server: not set; give the address Windows PE uses to reach the SMB share"
        )
    return {i["id"]: installer_files(params, i) for i in installers}


# --------------------------------------------------------------------------- rendering


def _crlf(lines):
    return "\r\n".join(lines) + "\r\n"


def winpeshl_ini():
    """
    Text of winpeshl.ini: Windows PE runs the listed programs instead of its
    default shell, in order; cmd.exe runs install.cmd (winpeshl starts only
    executables).  CRLF line ends, as Windows expects.

    CLI Example:

    .. code-block:: bash

        salt-call ipxe.winpeshl_ini
    """
    return _crlf(
        [
            "[LaunchApps]",
            r"%SYSTEMROOT%\System32\cmd.exe, /c %SYSTEMROOT%\System32\install.cmd",
        ]
    )


def install_cmd(params, installer):
    """
    Text of install.cmd for one installer: start networking, mount the share
    (retrying while DHCP settles), run setup.exe from it.  Contains the share
    password; callers must not show it.

    CLI Example:

    .. code-block:: bash

        salt-call ipxe.install_cmd "$(labsalt mapdata ipxe)" '{id: win10de, directory: w10}'
    """
    share = params["share"]
    unc = "\\\\{}\\{}\\{}".format(
        params["server"], share["name"], installer["directory"].strip("/").replace("/", "\\")
    )
    drive = share["drive"]
    return _crlf(
        [
            "@echo off",
            "rem Generated by labsalt (formula ipxe): mount the installer share, start setup.",
            "wpeinit",
            "set tries=0",
            ":mount",
            f'net use {drive}: "{unc}" "{share["password"]}" /user:"{share["user"]}" '
            "/persistent:no >nul && goto setup",
            "set /a tries+=1",
            f"if %tries% geq {share['retries']} goto failed",
            "ping -n 3 127.0.0.1 >nul",
            "goto mount",
            ":setup",
            f"{drive}:\\setup.exe",
            "exit /b",
            ":failed",
            f"echo Could not mount {unc}; the command prompt stays open.",
            "cmd /k",
        ]
    )


def ipxe_text(text):
    """
    ``text`` made safe as the free text at the end of an iPXE command (a menu
    title, an item label, an echo): every character iPXE's script parser would
    act on (line breaks, ``$``, ``&``, ``|``, backslash, quotes) becomes ``_``,
    so the text stays one argument list of one command.

    CLI Example:

    .. code-block:: bash

        salt-call ipxe.ipxe_text 'Windows 10 (de)'
    """
    return IPXE_UNSAFE.sub("_", str(text))


def _label(installer):
    details = ", ".join(x for x in (installer.get("arch"), installer.get("language")) if x)
    label = f"{installer['title']} ({details})" if details else installer["title"]
    label = f"[{installer['key']}] {label}" if installer.get("key") else label
    return ipxe_text(label)


def menu(params, files=None):
    """
    Text of the iPXE menu script.  Paths are relative, so iPXE fetches them from
    the server and protocol it loaded the menu from; entries with ``http: true``
    use ``ipxe:menu:http_url`` instead.  Validates the parameters first.

    CLI Example:

    .. code-block:: bash

        salt-call ipxe.menu "$(labsalt mapdata ipxe)"
    """
    files = files if files is not None else validate(params)
    conf = params["menu"]
    http = (conf["http_url"] or "").rstrip("/")
    choose = "choose"
    if conf["timeout"]:
        choose += f" --timeout {conf['timeout'] * 1000}"
    if conf["default"]:
        choose += f" --default {conf['default']}"
    lines = [
        "#!ipxe",
        "# Generated by labsalt (formula ipxe) from pillar ipxe:installers; do not edit.",
        ":start",
        f"menu {ipxe_text(conf['title'])}",
        "item --gap -- Windows installers",
    ]
    for installer in params["installers"]:
        key = f"--key {installer['key']} " if installer.get("key") else ""
        lines.append(f"item {key}{installer['id']} {_label(installer)}")
    lines += [
        "item --gap --",
        "item --key s shell [s] iPXE shell",
        "item --key x exit [x] Exit and boot the next device",
        f"{choose} target || goto exit",
        "goto ${target}",
    ]
    wimboot_args = f" {params['wimboot']['args']}" if params["wimboot"]["args"] else ""
    for installer in params["installers"]:
        base = f"{http}/" if installer.get("http") else ""
        lines += ["", f":{installer['id']}", f"echo Booting {ipxe_text(installer['title'])} ..."]
        if installer.get("arch") == "x64":
            lines.append("cpuid --ext 29 || goto not_x64")
        lines.append(f"kernel {base}{params['wimboot']['file']}{wimboot_args}")
        injected = [
            ["winpeshl.ini", f"{INJECTED_DIR}/winpeshl.ini"],
            ["install.cmd", f"{INJECTED_DIR}/{installer['id']}/install.cmd"],
        ]
        for name, path in files[installer["id"]] + injected:
            # --name: the file name wimboot sees under UEFI; the argument: under BIOS.
            lines.append(f"initrd -n {name} {base}{path} {name}")
        lines.append("boot || goto failed")
    lines += [
        "",
        ":not_x64",
        "echo This installer needs a 64-bit CPU.",
        ":failed",
        "echo Boot failed; press a key to return to the menu.",
        "prompt",
        "goto start",
        "",
        ":shell",
        "shell",
        "goto start",
        "",
        ":exit",
        "exit",
    ]
    return "\n".join(lines) + "\n"


def plan(params):
    """
    Validate the parameters and return every generated file as
    ``{path relative to the TFTP root: text}``: the menu, winpeshl.ini and one
    install.cmd per installer.  Raises SaltInvocationError when an installer's
    ISO cannot be read yet (7z not installed).

    CLI Example:

    .. code-block:: bash

        salt-call ipxe.plan "$(labsalt mapdata ipxe)"
    """
    files = validate(params)
    waiting = [name for name, found in files.items() if found is None]
    if waiting:
        raise SaltInvocationError(
            f"ipxe:installers:{waiting[0]}: its iso cannot be read before p7zip-full is installed"
        )
    generated = {
        params["menu"]["file"]: menu(params, files),
        f"{INJECTED_DIR}/winpeshl.ini": winpeshl_ini(),
    }
    for installer in params["installers"]:
        generated[f"{INJECTED_DIR}/{installer['id']}/install.cmd"] = install_cmd(params, installer)
    return generated


# --------------------------------------------------------------------------- shared files


# The first section header of smb.conf that is not [global].
SHARE_SECTION = re.compile(r"^[ \t]*\[(?!global\])", re.M | re.I)


def block_set(text, body, smb_global=False):
    """
    ``text`` with this formula's marked block holding ``body`` (replaced where it
    is, appended at the end otherwise, or with ``smb_global`` at the end of
    smb.conf's [global] section, before the first share); everything outside
    the block is kept as it was, byte for byte, so :py:func:`block_remove` gives
    the original back.

    CLI Example:

    .. code-block:: bash

        salt-call ipxe.block_set "$(cat /etc/default/tftpd-hpa)" "TFTP_DIRECTORY='/srv/tftp'"
    """
    body = body.rstrip("\n")
    block = f"{BLOCK_BEGIN} (edit the ipxe pillar, not this block)\n{body}\n{BLOCK_END}\n"
    start, end = _block_span(text)
    if start is not None:
        return text[:start] + block + text[end:]
    share = SHARE_SECTION.search(text) if smb_global else None
    if share:
        # In smb.conf the block goes at the end of [global]: Samba reads only
        # global parameters when it starts, and an include line inside a share
        # section would not be read then.
        return text[: share.start()] + block + text[share.start() :]
    if text and not text.endswith("\n"):
        text += "\n"
    return text + block


def _block_span(text):
    start = text.find(BLOCK_BEGIN)
    if start < 0 or (start > 0 and text[start - 1] != "\n"):
        return None, None
    end = text.find(BLOCK_END + "\n", start)
    if end < 0:
        raise CommandExecutionError(f"'{BLOCK_BEGIN}' without '{BLOCK_END}': fix the file by hand")
    return start, end + len(BLOCK_END) + 1


def block_remove(text):
    """
    ``text`` without this formula's marked block.

    CLI Example:

    .. code-block:: bash

        salt-call ipxe.block_remove "$(cat /etc/samba/smb.conf)"
    """
    start, end = _block_span(text)
    return text if start is None else text[:start] + text[end:]


def samba_value(value):
    """
    A pillar value as the right-hand side of an smb.conf line: booleans as
    yes/no; a line break or control character (which would start a new line of
    smb.conf) is refused.

    CLI Example:

    .. code-block:: bash

        salt-call ipxe.samba_value true
    """
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = "" if value is None else str(value)
    if re.search(r"[\x00-\x1f\x7f]", text):
        raise SaltInvocationError(f"{text!r} holds a line break or control character")
    return text


def shell_assignments(values):
    """
    ``KEY='value'`` lines for a file a shell sources (/etc/default/tftpd-hpa),
    each value quoted so that no character of it is shell syntax.

    CLI Example:

    .. code-block:: bash

        salt-call ipxe.shell_assignments '{TFTP_DIRECTORY: /srv/tftp}'
    """
    lines = []
    for key, value in values.items():
        if not re.fullmatch(r"[A-Z_][A-Z0-9_]*", key):
            raise SaltInvocationError(f"{key!r} is not a shell variable name")
        lines.append(f"{key}={shlex.quote(str(value))}")
    return "\n".join(lines) + "\n"


def write_checked(path, text, check=None, mode=0o644):
    """
    Replace ``path`` with ``text`` atomically; with ``check`` (an argument list),
    first run it with a temporary copy of the new text appended and refuse the
    change when it fails.  Owner and mode of an existing file are kept.

    CLI Example:

    .. code-block:: bash

        salt-call ipxe.write_checked /etc/default/tftpd-hpa "$TEXT" '["/bin/sh", "-n"]'
    """
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".labsalt-ipxe-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        if check:
            proc = __salt__["cmd.run_all"](
                [*check, tmp], python_shell=False, output_loglevel="quiet", ignore_retcode=True
            )
            if proc["retcode"] != 0:
                raise CommandExecutionError(
                    f"{' '.join(check)} refused the new {path}: "
                    + (proc["stderr"] or proc["stdout"]).strip()[-2000:]
                )
        if os.path.exists(path):
            info = os.stat(path)
            os.chown(tmp, info.st_uid, info.st_gid)
            os.chmod(tmp, info.st_mode & 0o7777)
        else:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return True


# --------------------------------------------------------------------------- what labsalt added


def _record_path(kind, state_dir):
    return os.path.join(state_dir, kind)


def recorded(kind, state_dir=STATE_DIR):
    """
    The names this formula recorded under ``kind`` (``created-users``; its
    packages are recorded by ``labsalt_packages``): what it added to the host
    itself, so that clean removes those and nothing that was there before.

    CLI Example:

    .. code-block:: bash

        salt-call ipxe.recorded created-users
    """
    try:
        with open(_record_path(kind, state_dir), encoding="utf-8") as handle:
            return [line.strip() for line in handle if line.strip()]
    except FileNotFoundError:
        return []


def record(kind, names, state_dir=STATE_DIR):
    """
    Set the record ``kind`` to ``names``; an empty list removes the file (and
    the state directory and /var/lib/labsalt when they become empty).

    CLI Example:

    .. code-block:: bash

        salt-call ipxe.record created-users '[wininst]'
    """
    path = _record_path(kind, state_dir)
    names = sorted(set(names))
    if not names:
        if os.path.exists(path):
            os.unlink(path)
        for directory in (state_dir, os.path.dirname(state_dir)):
            try:
                os.rmdir(directory)
            except OSError:
                break
        return names
    os.makedirs(state_dir, exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write("".join(f"{name}\n" for name in names))
    os.replace(tmp, path)
    return names


def extract_iso(iso, directory):
    """
    Extract installer ISO ``iso`` into ``directory`` through ``<directory>.partial``,
    renamed into place only when 7z succeeded; no shell is involved.

    CLI Example:

    .. code-block:: bash

        salt-call ipxe.extract_iso /srv/isos/w10.iso /srv/tftp/installers/w10
    """
    partial = f"{directory}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    proc = __salt__["cmd.run_all"](
        ["7z", "x", "-y", "-bd", f"-o{partial}", "--", iso],
        python_shell=False,
        output_loglevel="quiet",
        ignore_retcode=True,
    )
    if proc["retcode"] != 0:
        shutil.rmtree(partial, ignore_errors=True)
        raise CommandExecutionError(f"7z could not extract {iso}: {proc['stderr'].strip()[-500:]}")
    for top, dirs, files in os.walk(partial):
        for name in dirs:
            os.chmod(os.path.join(top, name), 0o755)
        for name in files:
            path = os.path.join(top, name)
            os.chmod(path, os.stat(path).st_mode & 0o7777 | 0o444)
    os.chmod(partial, 0o755)
    os.rename(partial, directory)
    return True
