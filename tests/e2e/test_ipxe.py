"""
The whole ipxe formula (packages, config, services) converged over salt-ssh in a
throw-away Debian 12 host, then used from this machine with the real clients.
"""

import ipaddress
import subprocess

import pytest

from tests.support import ipxe_tree
from tests.support.states import assert_no_changes, assert_ok

PACKAGES = ["tftpd-hpa", "ipxe", "samba", "dnsmasq-base", "wimtools"]
TREE = "/srv/tftp/installers/Win10_22H2_German_x64"


@pytest.fixture(scope="module")
def pxe(host_factory, tmp_path_factory):
    host = host_factory.start("pxe", packages=PACKAGES)
    # An installer tree made inside the host (a real WIM from wimcapture).
    host.run(
        "sh",
        "-ec",
        f"mkdir -p {TREE}/boot/fonts {TREE}/sources /tmp/wim/Windows/System32\n"
        f"echo bcd > {TREE}/boot/bcd; echo sdi > {TREE}/boot/boot.sdi\n"
        f"echo MZ setup stand-in > {TREE}/setup.exe\n"
        "echo readme > /tmp/wim/Windows/System32/readme.txt\n"
        f"wimcapture /tmp/wim {TREE}/sources/boot.wim 'Microsoft Windows Setup' >/dev/null",
    )
    served = tmp_path_factory.mktemp("wimboot-e2e")
    (served / "wimboot").write_bytes(ipxe_tree.WIMBOOT_STUB)
    subnet = ipaddress.ip_network(f"{host.addr}/30", strict=False).network_address
    with ipxe_tree.http_server(served, addr=host.ns.host_addr) as url:
        pillar = {
            "labsalt": {"roles": ["pxe"]},
            "ipxe": {
                "server": host.addr,
                "wimboot": {
                    "url": f"{url}/wimboot",
                    "sha256": ipxe_tree.sha256(ipxe_tree.WIMBOOT_STUB),
                },
                "installers": [ipxe_tree.INSTALLERS[0]],
                # dnsmasq needs CAP_NET_ADMIN, which systemd-nspawn hosts lack; the
                # proxy config runs for real in tests/integration/test_ipxe.py.
                "dhcp": {"subnet": str(subnet), "proxy": False},
            },
        }
        yield host, pillar, host.apply("ipxe", pillar=pillar)


def test_first_apply_succeeds_and_starts_the_services(pxe):
    host, _, ret = pxe
    assert_ok(ret)
    for unit in ("tftpd-hpa", "smbd"):
        assert host.run("systemctl", "is-active", unit).stdout.strip() == "active", unit


def test_second_apply_changes_nothing(pxe):
    host, pillar, _ = pxe
    assert_no_changes(host.apply("ipxe", pillar=pillar))


def test_clients_on_this_machine_get_the_menu_and_the_share(pxe):
    host, _, _ = pxe
    menu = subprocess.run(
        ["curl", "-sS", "--max-time", "10", f"tftp://{host.addr}/menu.ipxe"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert menu == host.path("/srv/tftp/menu.ipxe").read_text()
    assert "item --key w win10de [w] Windows 10 22H2 (x64, de-DE)" in menu
    ls = subprocess.run(
        ["smbclient", f"//{host.addr}/installers", "-N", "-c", "cd Win10_22H2_German_x64; ls"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert ls.returncode == 0 and "setup.exe" in ls.stdout, ls.stdout + ls.stderr
