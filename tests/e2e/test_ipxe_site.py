"""
ipxe on a seasoned host (issue 16): a file server that already shares a
directory over Samba and serves TFTP with its own options.  The formula adds
its share (a file of its own, one marked include line in smb.conf) and its
tftpd-hpa settings (a marked block), the site's share still lists, a second
apply changes nothing, and ipxe.clean gives back /etc, /srv, /usr/local, /opt
and /var/lib/labsalt as they were, with the site's packages still installed.
"""

import ipaddress
import subprocess

import pytest

from tests.support import ipxe_tree
from tests.support.states import assert_no_changes, assert_ok

# What the site had before labsalt: Samba and tftpd-hpa (not Debian's ipxe).
SITE_PACKAGES = ["tftpd-hpa", "samba"]
TREE = "/srv/tftp/installers/Win10_22H2_German_x64"
SITE_SMB = """
[site]
   comment = The site's documents
   path = /srv/site
   read only = yes
   guest ok = yes
"""
SITE_TFTPD = """# The site's tftpd-hpa settings
TFTP_USERNAME="tftp"
TFTP_DIRECTORY="/srv/tftp"
TFTP_ADDRESS=":69"
TFTP_OPTIONS="--secure --verbose --blocksize 1468"
"""

# Files outside logs and caches that labsalt must give back as they were.
LISTING = r"""
import hashlib, os, stat, sys
SKIP = {"/etc/ld.so.cache", "/etc/.pwd.lock"}
for top in sys.argv[1:]:
    for root, dirs, files in os.walk(top):
        dirs.sort()
        for name in sorted(dirs + files):
            path = os.path.join(root, name)
            if path in SKIP or (root == "/etc" and name.endswith("-")):
                continue  # ldconfig's cache, shadow tools' lock and backup copies
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                what = "-> " + os.readlink(path)
            elif stat.S_ISREG(info.st_mode):
                with open(path, "rb") as handle:
                    what = hashlib.sha256(handle.read()).hexdigest()
            else:
                what = "dir" if stat.S_ISDIR(info.st_mode) else "other"
            print(path, oct(info.st_mode), info.st_uid, info.st_gid, what)
"""
TOPS = ["/etc", "/usr/local", "/srv", "/opt", "/var/lib/labsalt"]


def listing(host):
    tops = [top for top in TOPS if host.path(top).exists()]
    return host.run("python3", "-c", LISTING, *tops).stdout.splitlines()


def installed(host, package):
    status = host.run("dpkg-query", "-W", "-f=${Status}", package, check=False).stdout
    return "install ok installed" in status


def smbclient(host, share, *args):
    return subprocess.run(
        ["smbclient", "-N", f"//{host.addr}/{share}", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )


@pytest.fixture(scope="module")
def site(host_factory, tmp_path_factory):
    host = host_factory.start("pxe-site", packages=SITE_PACKAGES)
    work = tmp_path_factory.mktemp("ipxe-site")
    ipxe_tree.make_installer(host.path(TREE), work)
    host.path("/srv/site").mkdir(parents=True)
    host.path("/srv/site/handbook.txt").write_text("the site's handbook\n")
    smb = host.path("/etc/samba/smb.conf")
    smb.write_text(smb.read_text() + SITE_SMB)
    host.path("/etc/default/tftpd-hpa").write_text(SITE_TFTPD)
    host.run("chmod", "-R", "a+rX", "/srv")
    host.run("systemctl", "restart", "smbd", "tftpd-hpa")
    assert "handbook.txt" in smbclient(host, "site", "-c", "ls").stdout
    return host


@pytest.fixture(scope="module")
def pillar(site, tmp_path_factory):
    served = tmp_path_factory.mktemp("wimboot-site")
    (served / "wimboot").write_bytes(ipxe_tree.WIMBOOT_STUB)
    subnet = ipaddress.ip_network(f"{site.addr}/30", strict=False).network_address
    with ipxe_tree.http_server(served, addr=site.ns.host_addr) as url:
        yield {
            "labsalt": {"roles": ["pxe"]},
            "ipxe": {
                "server": site.addr,
                "wimboot": {
                    "url": f"{url}/wimboot",
                    "sha256": ipxe_tree.sha256(ipxe_tree.WIMBOOT_STUB),
                },
                "installers": [ipxe_tree.INSTALLERS[0]],
                # systemd-nspawn hosts lack CAP_NET_ADMIN for dnsmasq (see test_ipxe.py).
                "dhcp": {"subnet": str(subnet), "proxy": False},
            },
        }


def test_ipxe_coexists_with_site(site, pillar):
    before = listing(site)
    assert not installed(site, "ipxe")

    assert_ok(site.apply("ipxe", pillar=pillar))
    # The site's share and the formula's both list; the site's settings stay.
    assert "handbook.txt" in smbclient(site, "site", "-c", "ls").stdout
    ls = smbclient(site, "installers", "-c", "cd Win10_22H2_German_x64; ls")
    assert "setup.exe" in ls.stdout, ls.stdout + ls.stderr
    smb = site.path("/etc/samba/smb.conf").read_text()
    assert SITE_SMB in smb and "include = /etc/samba/labsalt-ipxe.conf" in smb
    tftpd = site.path("/etc/default/tftpd-hpa").read_text()
    assert tftpd.startswith(SITE_TFTPD)
    # in.tftpd runs with the site's options (and the formula's directory).
    cmdline = site.run("sh", "-c", "cat /proc/$(pidof in.tftpd)/cmdline | tr '\\0' ' '").stdout
    assert "--verbose" in cmdline and "--blocksize 1468" in cmdline, cmdline
    menu = subprocess.run(
        ["curl", "-sS", "--max-time", "10", f"tftp://{site.addr}/menu.ipxe"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "item --key w win10de" in menu

    assert_no_changes(site.apply("ipxe", pillar=pillar))

    assert_ok(site.apply("ipxe.clean", pillar=pillar))
    after = listing(site)
    assert after == before, "\n".join(
        [f"- {line}" for line in sorted(set(before) - set(after))]
        + [f"+ {line}" for line in sorted(set(after) - set(before))]
    )
    # The site's packages stay; the one labsalt installed (ipxe) is gone.
    assert all(installed(site, package) for package in SITE_PACKAGES)
    assert not installed(site, "ipxe")
    assert "handbook.txt" in smbclient(site, "site", "-c", "ls").stdout
    assert site.run("systemctl", "is-active", "tftpd-hpa").stdout.strip() == "active"
