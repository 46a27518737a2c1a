"""
vbox_egress on a seasoned host: a booted Debian 12 host that already has the
site's own firewall (an nftables table of its own, loaded from the site's
/etc/nftables.conf), the nftables package, a profile.d script and a unit file
of the site's.  vbox_egress is applied over salt-ssh and cleaned again:

- the site's table is byte-identical (``nft list table inet site``) after apply
  and after clean, and still does its job (its rule keeps rejecting the port it
  rejects, for processes in and out of the VM's slice);
- a second apply reports no changes;
- after clean, every file below /etc, /usr/local, /srv, /opt and /var/lib/labsalt
  is as it was before apply (content hashes, symlink targets, directories), and
  the package the site had (nftables) stays, while the one labsalt installed
  (iptables) is gone.
"""

import pytest

from tests.support import snapshot
from tests.support.states import assert_no_changes, assert_ok, changed

WRAPPER = "/usr/local/bin/vbox-egress-run"
TABLE = "labsalt_vbox_egress"
ALLOWED, BLOCKED_BY_SITE, PORT, SITE_PORT = "127.0.0.2", "127.0.0.2", 8080, 8443
PILLAR = {
    "vbox_egress": {
        "cgroup": "labsalt-vbox",
        "mode": "auto",
        "allow": [{"address": ALLOWED, "ports": [PORT, SITE_PORT]}],
    }
}

# The site's firewall: a table of its own, loaded at boot by nftables.service.
SITE_NFT = """#!/usr/sbin/nft -f
# Site firewall (predates labsalt).
table inet site {
	chain output {
		type filter hook output priority filter + 10; policy accept;
		ip daddr 127.0.0.2 tcp dport 8443 reject with tcp reset
	}
	chain input {
		type filter hook input priority filter; policy accept;
		tcp dport 2222 accept
	}
}
"""
SITE_FILES = {
    "/etc/nftables.conf": SITE_NFT,
    "/etc/profile.d/site.sh": "# site login settings\nexport SITE_PROXY=http://proxy.site.example:3128\n",
    "/etc/systemd/system/site-backup.service": (
        "[Unit]\nDescription=Site backup\n\n[Service]\nType=oneshot\nExecStart=/bin/true\n"
    ),
    "/usr/local/bin/site-report": "#!/bin/sh\necho site report\n",
}

SERVER = """
import socket, sys
srv = socket.create_server((sys.argv[1], int(sys.argv[2])))
while True:
    conn, _ = srv.accept()
    conn.sendall(b"hello\\n")
    conn.close()
"""

CLIENT = """
import socket, sys
try:
    with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5) as conn:
        print("reached" if conn.recv(16) == b"hello\\n" else "garbled")
except OSError as exc:
    print(type(exc).__name__)
"""


@pytest.fixture(scope="module")
def host(host_factory):
    host = host_factory.start("vbox-site", packages=["nftables"])
    for path, text in SITE_FILES.items():
        script = 'mkdir -p "${1%/*}" && cat > "$1" && chmod 0755 "$1"'
        host.run("sh", "-c", script, "sh", path, input=text)
    host.run("systemctl", "enable", "--now", "nftables.service")
    host.run("systemctl", "daemon-reload")
    for port in (PORT, SITE_PORT):
        host.run(
            "systemd-run", f"--unit=site-server-{port}", "python3", "-c", SERVER, ALLOWED, port
        )
    listening = f"ss -Hltn | grep -q ':{SITE_PORT}'"
    host.run("sh", "-c", f"for i in $(seq 50); do {listening} && exit; sleep 0.1; done; exit 1")
    yield host
    host_factory.stop(host)


def _site_table(host):
    return host.run("nft", "list", "table", "inet", "site").stdout


def _connect(host, addr, port, wrapped):
    cmd = ["python3", "-c", CLIENT, addr, port]
    proc = host.run(*([WRAPPER, *cmd] if wrapped else cmd), check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_vbox_egress_coexists_with_site(host):
    site_table = _site_table(host)
    assert "tcp dport 8443 reject" in site_table
    before = snapshot.files(host)
    assert snapshot.installed(host, "nftables") and not snapshot.installed(host, "iptables")
    site_pkgs = snapshot.packages(host)
    # The site's rule works before labsalt comes.
    assert _connect(host, BLOCKED_BY_SITE, SITE_PORT, wrapped=False) == "ConnectionRefusedError"
    assert _connect(host, ALLOWED, PORT, wrapped=False) == "reached"

    ret = assert_ok(host.apply("vbox_egress", pillar=PILLAR))
    assert any("vbox-egress-filter" in key for key in changed(ret))
    assert _site_table(host) == site_table, "apply changed the site's nftables table"
    tables = host.run("nft", "list", "tables").stdout.split("\n")
    assert f"table inet {TABLE}" in tables and "table inet site" in tables
    # Both filters work: labsalt's for the VM, the site's for everyone.
    assert _connect(host, ALLOWED, PORT, wrapped=True) == "reached"
    assert _connect(host, BLOCKED_BY_SITE, SITE_PORT, wrapped=True) != "reached"
    assert _connect(host, BLOCKED_BY_SITE, SITE_PORT, wrapped=False) == "ConnectionRefusedError"
    assert _connect(host, ALLOWED, PORT, wrapped=False) == "reached"
    # iptables and what apt pulled in with it; nothing the site had.
    recorded = host.run("cat", "/var/lib/labsalt/vbox_egress/installed-packages").stdout.split()
    assert "iptables" in recorded and "nftables" not in recorded
    assert not set(recorded) & site_pkgs, "recorded packages the site had"

    assert_no_changes(host.apply("vbox_egress", pillar=PILLAR))
    assert _site_table(host) == site_table

    ret = assert_ok(host.apply("vbox_egress.clean", pillar=PILLAR))
    assert changed(ret)
    assert _site_table(host) == site_table, "clean changed the site's nftables table"
    assert f"table inet {TABLE}" not in host.run("nft", "list", "tables").stdout
    assert snapshot.installed(host, "nftables"), "clean removed the site's nftables"
    assert not snapshot.installed(host, "iptables"), "clean left the iptables labsalt installed"
    assert snapshot.packages(host) == site_pkgs, "clean left or took packages"
    assert snapshot.diff(before, snapshot.files(host)) == []
    assert _connect(host, BLOCKED_BY_SITE, SITE_PORT, wrapped=False) == "ConnectionRefusedError"
    assert host.run("systemctl", "is-enabled", "nftables.service").stdout.strip() == "enabled"
    assert_no_changes(host.apply("vbox_egress.clean", pillar=PILLAR))
