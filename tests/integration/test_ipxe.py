"""
The ipxe formula's output served by the real daemons, in a network namespace:

- in.tftpd (tftpd-hpa) with the formula's /etc/default/tftpd-hpa options, its
  syslog captured by the test; curl and tftp-hpa fetch files, writes fail;
- the formula's dnsmasq proxy-DHCP config next to a plain dnsmasq playing the
  site's DHCP server;
- QEMU (its iPXE NIC ROM) on a tap link in the namespace: the proxy points it
  at the menu, the screen shows the pillar's entries, a key press boots one and
  the TFTP log shows every file iPXE fetched;
- QEMU with UEFI firmware (Debian's OVMF) PXE-booting through the same proxy:
  the firmware fetches ipxe.efi, iPXE the menu, a key press boots an entry;
- smbd with the formula's smb.conf: smbclient reads as guest, writes fail.

The formula is applied with Salt's loaders into a temp root (the functional
fixtures); nothing touches this machine's /srv/tftp, /etc/samba or dnsmasq.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.functional.conftest import (  # noqa: F401  (fixtures)
    loaders,
    minion_config_overrides,
    minion_id,
    minion_opts,
    pillar_dir,
    reset_loaders_state,
)
from tests.support import ipxe_tree, netns
from tests.support.states import assert_ok

TOOLS = ("in.tftpd", "tftp", "curl", "dnsmasq", "smbd", "smbclient", "qemu-system-x86_64")
pytestmark = pytest.mark.skipif(
    not all(shutil.which(t) for t in TOOLS) or not os.path.exists("/dev/net/tun"),
    reason="needs scripts/apt/ipxe.txt installed and /dev/net/tun",
)
# Inside the test namespace: a bridge holding the servers' address and one tap per VM.
BRIDGE = "ipxebr0"
TAP = "ipxetap0"  # the BIOS VM
UEFI_TAP = "ipxetap1"  # the UEFI VM
UEFI_MAC = "52:54:00:1a:b5:e1"
OVMF = Path("/usr/share/OVMF")  # Debian's ovmf: OVMF_CODE.fd has no Secure Boot
DOCS_SHOT = Path(__file__).resolve().parents[2] / "docs" / "ipxe-menu.png"
DOCS_SHOT_UEFI = DOCS_SHOT.with_name("ipxe-menu-uefi.png")
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def wait_for(check, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture(scope="module")
def base():
    # Not under pytest's 0700 temp dirs: smbd reads the share as "nobody".
    base = Path(tempfile.mkdtemp(prefix="labsalt-ipxe-"))
    base.chmod(0o755)
    ipxe_tree.make_root(base)
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def pillar(base, tmp_path_factory):
    served = tmp_path_factory.mktemp("wimboot-http")
    (served / "wimboot").write_bytes(ipxe_tree.WIMBOOT_STUB)
    with ipxe_tree.http_server(served) as url:
        yield ipxe_tree.pillar(base, f"{url}/wimboot", ipxe_tree.sha256(ipxe_tree.WIMBOOT_STUB))


@pytest.fixture(scope="module")
def applied(loaders, pillar, base):  # noqa: F811
    assert_ok(loaders.modules.state.sls("ipxe.config", pillar=pillar).raw)
    return base


class SyslogCapture:
    """A datagram socket standing in for /dev/log of one daemon."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setblocking(False)
        self.lines = []

    def read(self):
        while True:
            try:
                self.lines.append(self.sock.recv(65536).decode(errors="replace"))
            except BlockingIOError:
                return self.lines

    def requested(self, clients=None):
        """File names of the TFTP read requests logged so far, in order; only
        those from the addresses in ``clients`` when given."""
        names = []
        for line in self.read():
            if "RRQ from " in line and " filename " in line:
                client = line.split("RRQ from ", 1)[1].split()[0]
                if clients is None or client in clients:
                    names.append(line.split(" filename ", 1)[1].strip())
        return names


@pytest.fixture(scope="module")
def net(applied, tmp_path_factory):
    """The namespace with tftpd, smbd and both dnsmasq instances running."""
    work = tmp_path_factory.mktemp("ipxe-net")
    with netns.namespace("ipxe") as ns:
        # The VMs' link: taps on a bridge inside the namespace; 198.19.254.0/24
        # exists only there (the namespace has no other route and does not forward).
        ns.run("ip", "link", "add", BRIDGE, "type", "bridge", "forward_delay", "0")
        ns.run("ip", "addr", "add", f"{ipxe_tree.TAP_SERVER}/24", "dev", BRIDGE)
        ns.run("ip", "link", "set", BRIDGE, "up")
        for tap in (TAP, UEFI_TAP):
            ns.run("ip", "tuntap", "add", "dev", tap, "mode", "tap")
            ns.run("ip", "link", "set", tap, "master", BRIDGE, "up")
        log = SyslogCapture(work / "log.sock")
        # in.tftpd logs only to syslog: give it a private /dev with /dev/log ours.
        tftpd = f"""set -e
mkdir -p {work}/realdev
mount --bind /dev {work}/realdev
mount -t tmpfs tmpfs /dev
for n in null zero urandom random; do touch /dev/$n; mount --bind {work}/realdev/$n /dev/$n; done
ln -s {log.path} /dev/log
. {applied}/etc/default/tftpd-hpa
exec in.tftpd --listen --foreground -v -v --user "$TFTP_USERNAME" --address 0.0.0.0:69 \
    $TFTP_OPTIONS "$TFTP_DIRECTORY"
"""
        ns.popen(["unshare", "--mount", "sh", "-c", tftpd])
        smb = open(work / "smbd.log", "w")  # noqa: SIM115  (closed with the namespace)
        ns.popen(
            [
                "smbd",
                "--foreground",
                "--no-process-group",
                "--debug-stdout",
                f"--configfile={applied}/etc/samba/smb.conf",
            ],
            stdout=smb,
            stderr=subprocess.STDOUT,
        )
        proxy_log = work / "proxy.log"
        ns.popen(
            [
                "dnsmasq",
                "--keep-in-foreground",
                "--log-facility=-",
                f"--pid-file={work}/proxy.pid",
                f"--conf-file={applied}/etc/labsalt/ipxe-dnsmasq.conf",
            ],
            stderr=open(proxy_log, "w"),  # noqa: SIM115
        )
        # The site's DHCP server: addresses only, no boot options.
        ns.popen(
            [
                "dnsmasq",
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--port=0",
                f"--interface={BRIDGE}",
                "--bind-interfaces",
                "--dhcp-range=198.19.254.50,198.19.254.99,1h",
                f"--dhcp-leasefile={work}/site.leases",
                f"--pid-file={work}/site.pid",
            ]
        )

        def listening():
            out = ns.run("ss", "-lnu").stdout + ns.run("ss", "-lnt").stdout
            return ":69 " in out and ":445 " in out and ":4011 " in out

        wait_for(listening, 20, "tftpd, smbd and the proxy DHCP to listen")
        yield ns, log, work, proxy_log


def test_tftp_serves_menu_and_ipxe_binaries(net, applied):
    ns, log, work, _ = net
    root = applied / "srv/tftp"
    for name in ("menu.ipxe", "undionly.kpxe", "ipxe.efi", "wimboot"):
        got = subprocess.run(
            ["curl", "-sS", "--max-time", "10", f"tftp://{ns.addr}/{name}"],
            capture_output=True,
            check=True,
        ).stdout
        assert got == (root / name).read_bytes(), name
    # The tftp-hpa client too, into a file.
    dest = work / "fetched.ipxe"
    subprocess.run(
        ["tftp", ns.addr, "-c", "get", "menu.ipxe", str(dest)], check=True, capture_output=True
    )
    assert dest.read_bytes() == (root / "menu.ipxe").read_bytes()
    assert "menu.ipxe" in log.requested()


def test_tftp_refuses_writes(net, applied):
    ns, log, work, _ = net
    upload = work / "upload.txt"
    upload.write_text("not allowed\n")
    menu = applied / "srv/tftp/menu.ipxe"
    before = menu.read_bytes()
    for target in ("menu.ipxe", "new-file.txt"):
        proc = subprocess.run(
            ["tftp", ns.addr, "-c", "put", str(upload), target],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
        # tftp-hpa reports the server's TFTP error (it exits 0 regardless).
        out = proc.stdout + proc.stderr
        assert "Error code" in out, f"upload of {target}: {out!r}"
    naks = [line for line in log.read() if "sending NAK" in line]
    assert len(naks) == 2 and "Permission denied" in naks[0] and "File not found" in naks[1]
    assert menu.read_bytes() == before
    assert not (applied / "srv/tftp/new-file.txt").exists()


class QMP:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(str(path))
        self.file = self.sock.makefile("rw")
        json.loads(self.file.readline())  # greeting
        self.cmd("qmp_capabilities")

    def cmd(self, name, **args):
        self.file.write(json.dumps({"execute": name, "arguments": args}) + "\n")
        self.file.flush()
        while True:
            reply = json.loads(self.file.readline())
            if "error" in reply:
                raise AssertionError(f"QMP {name}: {reply['error']}")
            if "return" in reply:
                return reply["return"]

    def screen_text(self, dump):
        """The 80x25 VGA text screen (iPXE's BIOS console) as lines."""
        self.cmd("pmemsave", val=0xB8000, size=4000, filename=str(dump))
        cells = Path(dump).read_bytes()
        return [cells[r * 160 : (r + 1) * 160 : 2].decode("cp437").rstrip() for r in range(25)]


@pytest.fixture(scope="module")
def vm(net):
    ns, _, work, _ = net
    qmp_path = work / "qmp.sock"
    ns.popen(
        [
            "qemu-system-x86_64",
            "-machine",
            # TCG: this iPXE build stalls under nested KVM, and TCG boots it in seconds.
            "pc,accel=tcg",
            "-m",
            "256",
            "-display",
            "none",
            "-netdev",
            f"tap,id=n0,ifname={TAP},script=no,downscript=no",
            "-device",
            "e1000,netdev=n0,romfile=/usr/lib/ipxe/qemu/pxe-e1000.rom",
            "-boot",
            "n",
            "-qmp",
            f"unix:{qmp_path},server=on,wait=off",
        ]
    )
    wait_for(qmp_path.exists, 10, "QEMU's QMP socket")
    return QMP(qmp_path)


def test_qemu_boots_the_menu_through_proxy_dhcp(net, vm):
    _, log, work, proxy_log = net
    last = []

    def menu_shown():
        last[:] = vm.screen_text(work / "vga.bin")
        return any("Windows 10" in line for line in last) and last

    try:
        screen = wait_for(menu_shown, 90, "the iPXE menu on the VM's screen")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the screen shows:\n" + "\n".join(last)) from None
    text = "\n".join(screen)
    assert "Lab network installers" in text
    assert "[w] Windows 10 22H2 (x64, de-DE)" in text
    assert "[e] Windows 11 24H2 (x64, en-US)" in text
    assert "[s] iPXE shell" in text and "[x] Exit and boot the next device" in text
    vm.cmd("screendump", filename=str(work / "menu.png"), format="png")
    assert (work / "menu.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("LABSALT_IPXE_SCREENSHOT"):
        DOCS_SHOT.parent.mkdir(exist_ok=True)
        shutil.copy(work / "menu.png", DOCS_SHOT)
    # The formula's proxy DHCP, not the site server, gave iPXE the menu.
    assert "bootfile name: menu.ipxe" in proxy_log.read_text()
    assert log.requested() and log.requested()[-1] == "menu.ipxe"


def test_choosing_an_entry_fetches_wimboot_and_the_installer_files(net, vm):
    _, log, _, _ = net
    seen = len(log.requested())
    vm.cmd("send-key", keys=[{"type": "qcode", "data": "w"}])
    wanted_last = "ipxe/win10de/install.cmd"
    fetched = wait_for(
        lambda: (r := log.requested()[seen:]) and wanted_last in r and r,
        60,
        "iPXE to fetch the files of the win10de entry",
    )
    d = "installers/Win10_22H2_German_x64"
    assert fetched == [
        "wimboot",
        f"{d}/boot/bcd",
        f"{d}/boot/boot.sdi",
        f"{d}/sources/boot.wim",
        f"{d}/boot/fonts/segmono_boot.ttf",
        f"{d}/boot/fonts/segoe_slboot.ttf",
        f"{d}/boot/fonts/segoen_slboot.ttf",
        f"{d}/boot/fonts/wgl4_boot.ttf",
        "ipxe/winpeshl.ini",
        wanted_last,
    ]

    # iPXE ran the wimboot stand-in as PXE code at 0:7C00: "MZ" (dec bp; pop dx),
    # cli at 7C02, halted on the hlt at 7C03 (so EIP is 7C04) in real mode.
    def halted_in_stub():
        regs = vm.cmd("human-monitor-command", **{"command-line": "info registers"})
        return "HLT=1" in regs and "EIP=00007c04 " in regs and "CS =0000 00000000 " in regs

    wait_for(halted_in_stub, 30, "the BIOS VM to halt in the wimboot stand-in")


def smbclient(ns, *args, env=None):
    return subprocess.run(
        ["smbclient", f"//{ns.addr}/installers", *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
        timeout=30,
    )


def test_smb_share_reads_as_guest(net, applied):
    ns = net[0]
    listing = smbclient(ns, "-N", "-c", "ls")
    assert listing.returncode == 0, listing.stdout + listing.stderr
    assert "Win10_22H2_German_x64" in listing.stdout
    assert "Win11_24H2_English_x64" in listing.stdout
    got = smbclient(ns, "-N", "-c", "get Win10_22H2_German_x64/setup.exe -")
    assert got.returncode == 0 and "MZ setup stand-in" in got.stdout, got.stderr


def test_smb_share_reads_with_the_pillar_credentials(net, pillar):
    # What install.cmd's `net use` sends: Samba maps the unknown user to guest.
    share = pillar["ipxe"]["share"]
    proc = smbclient(net[0], "-U", share["user"], "-c", "ls", env={"PASSWD": share["password"]})
    assert proc.returncode == 0 and "Win10_22H2_German_x64" in proc.stdout, proc.stderr


def test_smb_share_refuses_writes(net, applied):
    ns, _, work, _ = net
    upload = work / "smb-upload.txt"
    upload.write_text("not allowed\n")
    for command in (f"put {upload} evil.txt", "mkdir evil", "del Win10_22H2_German_x64/setup.exe"):
        proc = smbclient(ns, "-N", "-c", command)
        out = proc.stdout + proc.stderr
        assert "NT_STATUS_ACCESS_DENIED" in out or "NT_STATUS_MEDIA_WRITE_PROTECTED" in out, out
    installers = applied / "srv/tftp/installers"
    assert not (installers / "evil.txt").exists() and not (installers / "evil").exists()
    assert (installers / "Win10_22H2_German_x64/setup.exe").exists()


# --------------------------------------------------------------------------- UEFI


def addresses_of(mac, leases):
    """Addresses the site DHCP server leased to ``mac`` (the firmware and iPXE may differ)."""
    if not leases.exists():
        return set()
    return {f[2] for f in (line.split() for line in leases.read_text().splitlines()) if f[1] == mac}


@pytest.fixture(scope="module")
def uefi_vm(net):
    """A UEFI VM: OVMF (no Secure Boot) PXE-boots from virtio-net with its own
    network stack (no NIC option ROM), so the firmware, not a ROM iPXE, talks to
    the proxy DHCP and fetches ipxe.efi."""
    ns, _, work, _ = net
    code, nvram = work / "OVMF_CODE.fd", work / "OVMF_VARS.fd"
    shutil.copy(OVMF / "OVMF_CODE.fd", code)
    shutil.copy(OVMF / "OVMF_VARS.fd", nvram)
    qmp_path = work / "qmp-uefi.sock"
    ns.popen(
        [
            "qemu-system-x86_64",
            "-machine",
            "q35,accel=tcg",
            "-m",
            "256",
            "-display",
            "none",
            "-drive",
            f"if=pflash,format=raw,unit=0,readonly=on,file={code}",
            "-drive",
            f"if=pflash,format=raw,unit=1,file={nvram}",
            "-netdev",
            f"tap,id=n1,ifname={UEFI_TAP},script=no,downscript=no",
            "-device",
            f"virtio-net-pci,netdev=n1,mac={UEFI_MAC},romfile=,bootindex=1",
            # OVMF's console goes to the screen and the serial port: iPXE's too.
            "-serial",
            f"file:{work / 'uefi-serial.log'}",
            "-qmp",
            f"unix:{qmp_path},server=on,wait=off",
        ],
        stdout=open(work / "qemu-uefi.log", "w"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
    )
    wait_for(qmp_path.exists, 10, "QEMU's QMP socket")
    return QMP(qmp_path)


def serial_text(path):
    """The VM's serial output with ANSI escape sequences removed."""
    raw = path.read_bytes().decode(errors="replace") if path.exists() else ""
    return ANSI.sub("", raw)


def test_uefi_client_gets_ipxe_efi_then_the_menu(net, uefi_vm):
    _, log, work, proxy_log = net
    leases, serial = work / "site.leases", work / "uefi-serial.log"

    def uefi_requests():
        return log.requested(clients=addresses_of(UEFI_MAC, leases))

    text = []

    def menu_drawn():
        text[:] = [serial_text(serial)]
        return "[x] Exit and boot the next device" in text[0]

    try:
        wait_for(menu_drawn, 150, "the iPXE menu on the UEFI VM's console")
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}; TFTP: {uefi_requests()}; serial:\n{text[0][-2000:]}"
        ) from None
    # The firmware fetched ipxe.efi (OVMF asks for its size first, then the file),
    # never the BIOS binary, and iPXE then fetched the menu.
    requests = uefi_requests()
    assert "menu.ipxe" in requests, requests
    before_menu = requests[: requests.index("menu.ipxe")]
    assert before_menu and set(before_menu) == {"ipxe.efi"}, requests
    # The proxy answered the firmware (client arch 7, EFI x86-64) with ipxe.efi and
    # iPXE (user class iPXE) with the menu.
    proxy = proxy_log.read_text()
    assert "vendor class: PXEClient:Arch:00007:UNDI:003000" in proxy
    assert "bootfile name: ipxe.efi" in proxy
    # iPXE's EFI build printed the menu through the firmware's console.
    assert "Features:" in text[0] and " EFI " in text[0]
    assert "Lab network installers" in text[0]
    assert "[w] Windows 10 22H2 (x64, de-DE)" in text[0]
    assert "[e] Windows 11 24H2 (x64, en-US)" in text[0]
    assert "[s] iPXE shell" in text[0]
    # The same menu on OVMF's graphics screen (not VGA text mode): a PPM with
    # iPXE's menu colours, most pixels the blue background.
    shot = work / "uefi-menu.ppm"
    uefi_vm.cmd("screendump", filename=str(shot))
    magic, size, depth, pixels = shot.read_bytes().split(b"\n", 3)
    assert magic == b"P6" and depth == b"255"
    colours = Counter(pixels[i : i + 3] for i in range(0, len(pixels), 3))
    (r, g, b), share = colours.most_common(1)[0]
    assert b > 2 * max(r, g) and share > len(pixels) // 6, colours.most_common(3)
    assert len(colours) >= 4, colours
    if os.environ.get("LABSALT_IPXE_SCREENSHOT"):
        uefi_vm.cmd("screendump", filename=str(DOCS_SHOT_UEFI), format="png")


def test_uefi_choosing_an_entry_fetches_its_files_and_starts_wimboot(net, uefi_vm):
    _, log, work, _ = net
    clients = addresses_of(UEFI_MAC, work / "site.leases")
    seen = len(log.requested(clients=clients))
    uefi_vm.cmd("send-key", keys=[{"type": "qcode", "data": "e"}])
    wanted_last = "ipxe/win11en/install.cmd"
    fetched = wait_for(
        lambda: (r := log.requested(clients=clients)[seen:]) and wanted_last in r and r,
        60,
        "UEFI iPXE to fetch the files of the win11en entry",
    )
    # cpuid --ext 29 passed under ipxe.efi, and every initrd was loaded.
    d = "installers/Win11_24H2_English_x64"
    assert fetched == [
        "wimboot",
        f"{d}/Boot/BCD",
        f"{d}/Boot/boot.sdi",
        f"{d}/sources/boot.wim",
        "ipxe/winpeshl.ini",
        wanted_last,
    ]

    # iPXE started the wimboot stand-in through the firmware's LoadImage and
    # StartImage: the CPU halts in 64-bit mode on its hlt (.text+1, so RIP ends in 002).
    def halted_in_stub():
        regs = uefi_vm.cmd("human-monitor-command", **{"command-line": "info registers"})
        return "HLT=1" in regs and re.search(r"RIP=[0-9a-f]{13}002 ", regs) and "CS64" in regs

    wait_for(halted_in_stub, 30, "the UEFI VM to halt in the wimboot stand-in")
