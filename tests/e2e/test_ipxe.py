"""
The whole ipxe formula (packages, config, services) converged over salt-ssh in a
throw-away Debian 12 host that starts with the base image only (issue 14: test
mode predicts there, one real run converges), then used from this machine with
the real clients.
"""

import ipaddress
import os
import subprocess

import pytest

from tests.support import ipxe_tree
from tests.support.states import assert_no_changes, assert_ok, changed

# What the formula installs on this pillar (no proxy DHCP, no ISO).
PACKAGES = ["tftpd-hpa", "ipxe", "samba"]
TREE = "/srv/tftp/installers/Win10_22H2_German_x64"
PASSWORD = "Rd-only-Pa55"


@pytest.fixture(scope="module")
def pxe(host_factory, tmp_path_factory):
    # The base image only: nothing of the formula's is pre-installed.
    host = host_factory.start("pxe")
    # An installer tree (a real WIM from wimcapture on this machine).
    ipxe_tree.make_installer(host.path(TREE), tmp_path_factory.mktemp("ipxe-tree"))
    host.run("chmod", "-R", "a+rX", "/srv")
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
                # A real read-only Samba user instead of guest access.
                "share": {"guest": False, "user": "wininst", "password": PASSWORD},
                # dnsmasq needs CAP_NET_ADMIN, which systemd-nspawn hosts lack; the
                # proxy config runs for real in tests/integration/test_ipxe.py.
                "dhcp": {"subnet": str(subnet), "proxy": False},
            },
        }
        predicted = host.apply("ipxe", pillar=pillar, test=True)
        yield host, pillar, host.apply("ipxe", pillar=pillar), predicted


def test_test_mode_on_the_bare_host_predicts_without_failing(pxe):
    _, _, _, predicted = pxe
    assert_ok(predicted)
    states = changed(predicted)
    packages = next(v for k, v in states.items() if "ipxe-packages" in k)
    assert sorted(packages["changes"]) == sorted(PACKAGES)
    assert [k for k in states if "undionly.kpxe" in k] and [k for k in states if "ipxe.efi" in k]
    user = next(v for k, v in states.items() if "ipxe-share-samba-user" in k)
    assert user["changes"] == {"wininst": "added"}
    assert all(v["result"] is None for v in states.values())


def test_first_apply_succeeds_and_starts_the_services(pxe):
    host, _, ret, _ = pxe
    assert_ok(ret)
    for unit in ("tftpd-hpa", "smbd"):
        assert host.run("systemctl", "is-active", unit).stdout.strip() == "active", unit


def test_second_apply_changes_nothing(pxe):
    host, pillar, _, _ = pxe
    assert_no_changes(host.apply("ipxe", pillar=pillar))


def test_password_is_not_in_the_output(pxe):
    host, pillar, ret, _ = pxe
    assert PASSWORD not in str(ret)
    assert [k for k in ret if "ipxe-share-samba-user" in k]
    # A new password: test mode predicts the change and keeps the old one.
    pillar = {"ipxe": {**pillar["ipxe"], "share": {**pillar["ipxe"]["share"], "password": "N3w"}}}
    predicted = host.apply("ipxe", pillar=pillar, test=True)
    user = [v for k, v in predicted.items() if "ipxe-share-samba-user" in k][0]
    assert user["result"] is None and user["changes"] == {"wininst": "password changed"}
    assert "N3w" not in str(predicted) and PASSWORD not in str(predicted)
    assert smbclient(host, "-U", "wininst", "-c", "ls", env={"PASSWD": PASSWORD}).returncode == 0


def smbclient(host, *args, env=None):
    return subprocess.run(
        ["smbclient", f"//{host.addr}/installers", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
        env={**os.environ, **(env or {})},
    )


def test_clients_on_this_machine_get_the_menu_and_the_share(pxe):
    host, _, _, _ = pxe
    menu = subprocess.run(
        ["curl", "-sS", "--max-time", "10", f"tftp://{host.addr}/menu.ipxe"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert menu == host.path("/srv/tftp/menu.ipxe").read_text()
    assert "item --key w win10de [w] Windows 10 22H2 (x64, de-DE)" in menu
    user = {"PASSWD": PASSWORD}
    ls = smbclient(host, "-U", "wininst", "-c", "cd Win10_22H2_German_x64; ls", env=user)
    assert ls.returncode == 0 and "setup.exe" in ls.stdout, ls.stdout + ls.stderr
    put = smbclient(host, "-U", "wininst", "-c", "mkdir evil", env=user)
    assert "NT_STATUS_ACCESS_DENIED" in put.stdout + put.stderr
    guest = smbclient(host, "-N", "-c", "ls")
    assert guest.returncode != 0 and "NT_STATUS_" in guest.stdout + guest.stderr


def test_clean_removes_what_the_formula_made(pxe):
    # Last: it undoes the apply the other tests use.
    host, pillar, _, _ = pxe
    assert_ok(host.apply("ipxe.clean", pillar=pillar))
    for path in ("menu.ipxe", "wimboot", "undionly.kpxe", "ipxe.efi", "ipxe"):
        assert not host.path(f"/srv/tftp/{path}").exists(), path
    assert host.path(f"{TREE}/sources/boot.wim").is_file()  # installer trees stay
    # labsalt installed them, so clean purges them, and the user it made.
    for package in PACKAGES:
        dpkg = host.run("dpkg-query", "-W", "-f=${Status}", package, check=False).stdout
        assert "install ok installed" not in dpkg, package
    assert host.run("getent", "passwd", "wininst", check=False).returncode == 2
    assert not host.path("/var/lib/labsalt/ipxe").exists()
