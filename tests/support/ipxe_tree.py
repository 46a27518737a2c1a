"""
Test fixtures for the ipxe formula: installer trees, a wimboot stand-in served
over HTTP on loopback, and the pillar that points the formula into a temp root.

The installer trees hold the files a Windows DVD has, with a real (tiny) WIM
image made by wimtools' wimcapture; the other files are small stand-ins with
the right names.  "wimboot" is a stand-in that, like the real wimboot, runs
under both firmwares (see ``wimboot_stub``): the VM halts when an entry boots,
after iPXE has loaded every initrd, which is all a test without Windows media
needs.
"""

import contextlib
import functools
import hashlib
import http.server
import struct
import subprocess
import threading
from pathlib import Path

WIM_MAGIC = b"MSWIM\0\0\0"
HALT = b"\xfa\xf4\xeb\xfd"  # cli; hlt; jmp back to hlt (the same in 16- and 64-bit mode)


def wimboot_stub():
    """
    A 1 KiB file that halts the CPU under BIOS and under UEFI: a PE32+ EFI
    application (x86-64, one .text section holding HALT at its entry point) whose
    DOS header starts "MZ" (dec bp; pop dx in real mode) followed by HALT, so
    that BIOS iPXE, which runs an unrecognised image as PXE code at 0:7C00, halts
    too.  UEFI iPXE loads it with the firmware's LoadImage, which needs a valid
    PE image; relocations are not needed (the code is position independent).
    """
    pe_offset, text_rva, file_align = 0x40, 0x1000, 0x200
    dos = (b"MZ" + HALT).ljust(0x3C, b"\0") + struct.pack("<I", pe_offset)
    coff = struct.pack("<HHIIIHH", 0x8664, 1, 0, 0, 0, 0xF0, 0x0022)
    optional = struct.pack(
        "<HBBIIIIIQIIHHHHHHIIIIHHQQQQII",
        0x20B,  # PE32+
        0,
        0,
        file_align,  # SizeOfCode
        0,
        0,
        text_rva,  # AddressOfEntryPoint
        text_rva,  # BaseOfCode
        0,  # ImageBase
        0x1000,  # SectionAlignment
        file_align,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        2 * 0x1000,  # SizeOfImage: headers + .text
        file_align,  # SizeOfHeaders
        0,
        10,  # Subsystem: EFI application
        0,
        0x10000,
        0x1000,
        0x10000,
        0x1000,
        0,
        16,  # NumberOfRvaAndSizes (all empty)
    ) + bytes(16 * 8)
    section = struct.pack(
        "<8sIIIIIIHHI",
        b".text",
        len(HALT),
        text_rva,
        file_align,
        file_align,
        0,
        0,
        0,
        0,
        0x60000020,  # code, execute, read
    )
    headers = dos + b"PE\0\0" + coff + optional + section
    return headers.ljust(file_align, b"\0") + HALT.ljust(file_align, b"\0")


WIMBOOT_STUB = wimboot_stub()
# Inside the test namespace only: the tap link between QEMU and the servers
# (RFC 2544 test range, like tests/support/netns.py, above its allocations).
TAP_SERVER = "198.19.254.1"
TAP_SUBNET = "198.19.254.0"
FONTS = ["segmono_boot.ttf", "segoe_slboot.ttf", "segoen_slboot.ttf", "wgl4_boot.ttf"]

INSTALLERS = [
    {
        "id": "win10de",
        "key": "w",
        "title": "Windows 10 22H2",
        "directory": "Win10_22H2_German_x64",
        "arch": "x64",
        "language": "de-DE",
    },
    {
        "id": "win11en",
        "key": "e",
        "title": "Windows 11 24H2",
        "directory": "Win11_24H2_English_x64",
        "arch": "x64",
        "language": "en-US",
    },
]


def make_wim(path, workdir):
    """A real WIM image (one small directory captured by wimcapture)."""
    src = Path(workdir) / "wim-src" / "Windows" / "System32"
    src.mkdir(parents=True, exist_ok=True)
    (src / "readme.txt").write_text("labsalt test image\n")
    subprocess.run(
        ["wimcapture", str(src.parent.parent), str(path), "Microsoft Windows Setup"],
        check=True,
        capture_output=True,
    )


def make_installer(directory, workdir, upper=False, fonts=True):
    """Lay out an installer tree as copied from a DVD (Boot/BCD when upper)."""
    boot = directory / ("Boot" if upper else "boot")
    (boot / "fonts").mkdir(parents=True, exist_ok=True)
    (boot / ("BCD" if upper else "bcd")).write_bytes(b"regf bcd stand-in")
    (boot / "boot.sdi").write_bytes(b"sdi stand-in")
    if fonts:
        for font in FONTS:
            (boot / "fonts" / font).write_bytes(b"font stand-in")
    (directory / "sources").mkdir(exist_ok=True)
    make_wim(directory / "sources" / "boot.wim", workdir)
    (directory / "setup.exe").write_bytes(b"MZ setup stand-in")


def make_root(base):
    """A temp root with two installer trees; returns the paths the pillar needs."""
    base = Path(base)
    root = base / "srv" / "tftp"
    installers = root / "installers"
    make_installer(installers / INSTALLERS[0]["directory"], base)
    make_installer(installers / INSTALLERS[1]["directory"], base, upper=True, fonts=False)
    for sub in ("lock", "state", "cache", "private", "run", "ncalrpc"):
        (base / "samba" / sub).mkdir(parents=True, exist_ok=True)
    # The site's files as Debian's packages and a site admin left them; the
    # formula adds its marked blocks and keeps these lines.
    (base / "etc/default").mkdir(parents=True, exist_ok=True)
    (base / "etc/default/tftpd-hpa").write_text(SITE_TFTPD_DEFAULTS)
    (base / "etc/samba").mkdir(parents=True, exist_ok=True)
    (base / "etc/samba/smb.conf").write_text(SITE_SMB_CONF)
    return root


# Debian 12's /etc/default/tftpd-hpa.
SITE_TFTPD_DEFAULTS = """# /etc/default/tftpd-hpa

TFTP_USERNAME="tftp"
TFTP_DIRECTORY="/srv/tftp"
TFTP_ADDRESS=":69"
TFTP_OPTIONS="--secure"
"""

# A standalone server's [global] (no printing) and a share of the site's.
SITE_SMB_CONF = """# The site's Samba configuration.
[global]
   workgroup = LAB
   server role = standalone server
   map to guest = bad user
   disable netbios = yes
   smb ports = 445
   load printers = no
   printing = bsd
   printcap name = /dev/null
   disable spoolss = yes

[public]
   comment = The site's own share
   path = /srv/site-public
   read only = yes
   guest ok = yes
"""


def samba_dirs(base):
    """[global] options that keep a test smbd's state inside the temp root."""
    state = Path(base) / "samba"
    return {
        "lock directory": f"{state}/lock",
        "state directory": f"{state}/state",
        "cache directory": f"{state}/cache",
        "private dir": f"{state}/private",
        "pid directory": f"{state}/run",
        "ncalrpc dir": f"{state}/ncalrpc",
        "log file": f"{state}/log.%m",
        "usershare path": "",
    }


def pillar(base, wimboot_url, wimboot_sha256, **overrides):
    """Pillar for the ipxe formula with every path inside ``base``."""
    base = Path(base)
    data = {
        "server": TAP_SERVER,
        "tftp": {
            "root": str(base / "srv" / "tftp"),
            "defaults_file": str(base / "etc/default/tftpd-hpa"),
        },
        "wimboot": {"url": wimboot_url, "sha256": wimboot_sha256},
        "menu": {"title": "Lab network installers"},
        "installers": [dict(i) for i in INSTALLERS],
        "share": {"user": "guest", "password": "s3cr3t-Pa55"},
        "samba": {"conf": str(base / "etc/samba/smb.conf"), "global": samba_dirs(base)},
        "dhcp": {
            "subnet": TAP_SUBNET,
            "conf": str(base / "etc/labsalt/ipxe-dnsmasq.conf"),
            "unit_dir": str(base / "etc/systemd/system"),
        },
    }
    data.update(overrides)
    return {"ipxe": data}


def sha256(data):
    return hashlib.sha256(data).hexdigest()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def http_server(directory, addr="127.0.0.1"):
    """Serve ``directory`` on ``addr`` (a free port); yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer((addr, 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{addr}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
