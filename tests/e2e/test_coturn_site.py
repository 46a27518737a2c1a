"""
coturn on seasoned hosts (issue 16): hosts that already run nftables with the
site's own ruleset (/etc/nftables.conf loaded by nftables.service, as Debian
sets it up), converged over salt-ssh with the coturn formula.

- A site table without an input filter of its own (``table inet site``: a
  forward guard and an output block, with counters) coexists: after apply it is
  byte-identical (``nft list table inet site``), TURN relays for a real client
  (turnutils_uclient with the shared secret), the site reloading its ruleset
  (``systemctl restart nftables``, whose file starts with ``flush ruleset``)
  brings coturn's table back, a second apply changes nothing, and
  ``coturn.clean`` returns /etc, /usr/local, /srv, /opt and /var/lib/labsalt to
  what they were before apply, the package set too (coturn and the
  dependencies labsalt installed are purged, nftables that the site had stays).
- A site whose own input chain filters (policy drop, admitting SSH and its web
  service) is refused, in test mode and for real, with one line naming
  ``coturn:firewall``, before anything is installed or written.
- Verify (issue 18) on a booted host with Debian's coturn service: it passes
  after apply; the host's own address (in the denied 198.18.0.0/15) is allowed
  exactly, so two clients relay to each other through it (coturn/coturn#584);
  with coturn stopped (``systemctl stop``) and with a pillar whose secret is
  not the server's, ``coturn.verify`` fails with one line and changes nothing.
"""

import re
import subprocess
import time

import pytest
import yaml

from tests.support import snapshot

SECRET = "site-TurnSecret-2718-coexist"

# The site's ruleset, as an admin writes /etc/nftables.conf on Debian.
SITE_RULESET = """#!/usr/sbin/nft -f
flush ruleset

table inet site {
  counter docs_forwarded {}
  chain forward_guard {
    type filter hook forward priority filter; policy accept;
    ip saddr 203.0.113.0/24 counter name docs_forwarded drop
  }
  chain output_block {
    type filter hook output priority filter; policy accept;
    ip daddr 192.0.2.0/24 counter packets 0 bytes 0 drop
  }
}
"""

# A site that filters input itself: coturn's table would cut off its web service.
FILTERING_RULESET = """#!/usr/sbin/nft -f
flush ruleset

table inet site {
  chain input {
    type filter hook input priority filter; policy drop;
    iif "lo" accept
    ct state established,related accept
    tcp dport { 22, 8080 } accept
  }
}
"""


def state_of(host):
    return {
        "table": site_table(host),
        "files": snapshot.files(host),
        "packages": snapshot.packages(host),
    }


def site_table(host):
    return host.run("nft", "list", "table", "inet", "site").stdout


def write_pillar(path, host):
    path.mkdir()
    (path / "top.sls").write_text("base:\n  '*':\n    - coturn\n")
    coturn = {
        "realm": "turn.lab.test",
        "static_auth_secret": SECRET,
        "min_port": 50000,
        "max_port": 50100,
        "allowed_peer_ips": [host.ns.host_addr],  # the test's peer, like a lab media server
    }
    (path / "coturn.sls").write_text(yaml.safe_dump({"coturn": coturn}))
    return path


def install_site_ruleset(host, ruleset):
    host.run("sh", "-c", "cat > /etc/nftables.conf", input=ruleset)
    host.run("systemctl", "enable", "--now", "nftables")
    host.run("systemctl", "restart", "nftables")


def by_id(ret, state_id):
    found = [v for v in ret.values() if v["__id__"] == state_id]
    assert len(found) == 1, sorted(v["__id__"] for v in ret.values())
    return found[0]


def failed(ret):
    return {k: v["comment"] for k, v in ret.items() if v["result"] is False}


def changed(ret):
    return {k: v["changes"] for k, v in ret.items() if v["changes"]}


@pytest.fixture(scope="module")
def hosts(host_factory):
    site, filtering = host_factory.start_many(["turnsite", "turnfw"], packages=["nftables"])
    install_site_ruleset(site, SITE_RULESET)
    install_site_ruleset(filtering, FILTERING_RULESET)
    return site, filtering


@pytest.fixture(scope="module")
def seasoned(hosts, tmp_path_factory):
    site = hosts[0]
    pillar = write_pillar(tmp_path_factory.mktemp("coturn-site") / "pillar", site)
    before = state_of(site)
    predicted = site.apply("coturn", pillar_dir=pillar, test=True)
    after_test = state_of(site)
    first = site.apply("coturn", pillar_dir=pillar)
    return {
        "host": site,
        "pillar": pillar,
        "before": before,
        "predicted": predicted,
        "after_test": after_test,
        "first": first,
        "table_after_apply": site_table(site),
    }


def relay(host, secret=SECRET):
    """turnutils_uclient from this machine through the host's TURN server to a local peer."""
    peer = subprocess.Popen(
        ["turnutils_peer", "-L", host.ns.host_addr, "-p", "3480"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        cmd = ["turnutils_uclient", "-u", "bbb", "-W", secret, "-e", host.ns.host_addr]
        cmd += ["-r", "3480", "-n", "5", "-L", host.ns.host_addr, host.addr]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    finally:
        peer.terminate()
        peer.wait()
    found = re.findall(r"tot_send_msgs=(\d+), tot_recv_msgs=(\d+)", proc.stdout)
    return (found[-1] if found else None), proc.stdout + proc.stderr


def test_coturn_coexists_with_site(seasoned):
    host = seasoned["host"]
    # test mode predicted and changed nothing
    assert not failed(seasoned["predicted"]), failed(seasoned["predicted"])
    assert changed(seasoned["predicted"])
    assert seasoned["after_test"] == seasoned["before"]
    # the real run: no failure, the site's table untouched, coturn's own table next to it
    assert not failed(seasoned["first"]), failed(seasoned["first"])
    assert "got a relay" in by_id(seasoned["first"], "coturn-verified")["comment"]
    assert seasoned["table_after_apply"] == seasoned["before"]["table"]
    tables = host.run("nft", "list", "tables").stdout.split("\n")
    assert sorted(t for t in tables if t) == ["table inet labsalt_coturn", "table inet site"]
    assert host.run("systemctl", "is-active", "coturn").stdout.strip() == "active"
    # TURN works for a real client through coturn's table
    totals, out = relay(host)
    assert totals == ("10", "10"), out
    # the site reloads its ruleset (flush ruleset first): coturn's table follows
    # (systemctl returns once nftables is up; coturn's unit follows right after it)
    host.run("systemctl", "restart", "nftables")
    for _ in range(50):
        ours = host.run("nft", "list", "table", "inet", "labsalt_coturn", check=False)
        if ours.returncode == 0:
            break
        time.sleep(0.2)
    assert "policy drop" in ours.stdout, ours.stderr
    assert site_table(host) == seasoned["before"]["table"]
    # a second apply changes nothing
    second = host.apply("coturn", pillar_dir=seasoned["pillar"])
    assert not failed(second) and not changed(second), changed(second) or failed(second)
    assert site_table(host) == seasoned["before"]["table"]


def test_coturn_clean_gives_back_the_site_host(seasoned):
    host = seasoned["host"]
    cleaned = host.apply("coturn.clean", pillar_dir=seasoned["pillar"])
    assert not failed(cleaned), failed(cleaned)
    assert site_table(host) == seasoned["before"]["table"]
    assert host.run("nft", "list", "tables").stdout.split() == ["table", "inet", "site"]
    after = snapshot.files(host)
    before = seasoned["before"]["files"]
    assert snapshot.diff(before, after) == []
    assert snapshot.packages(host) == seasoned["before"]["packages"]  # coturn purged, nftables kept
    assert "nftables" in snapshot.packages(host)
    # and again: nothing left to clean
    again = host.apply("coturn.clean", pillar_dir=seasoned["pillar"])
    assert not failed(again) and not changed(again), changed(again)


def test_coturn_refuses_host_whose_input_filter_it_would_break(hosts, tmp_path_factory):
    host = hosts[1]
    pillar = write_pillar(tmp_path_factory.mktemp("coturn-fw") / "pillar", host)
    ruleset = host.run("nft", "list", "ruleset").stdout
    files = snapshot.files(host)
    for test in (True, False):
        ret = host.apply("coturn", pillar_dir=pillar, test=test)
        refusal = [
            v["comment"] for v in ret.values() if "coturn:firewall: refusing" in v["comment"]
        ]
        assert len(refusal) == 1, failed(ret)
        assert "\n" not in refusal[0]
        assert "table inet site chain input (input hook, policy drop, 3 rules)" in refusal[0]
        assert not [v for v in ret.values() if v["changes"]], changed(ret)
    assert host.run("dpkg-query", "-W", "coturn", check=False).returncode != 0
    assert host.run("nft", "list", "ruleset").stdout == ruleset
    assert snapshot.files(host) == files
    assert SECRET not in ruleset


# The site ran coturn before labsalt, with a config of its own.
SITE_TURNSERVER_CONF = """# the site's own TURN server
listening-port=3478
realm=site.example
no-cli
no-tls
no-dtls
"""


def test_coturn_clean_gives_the_site_its_own_coturn_back(host_factory, tmp_path_factory):
    # (the package set of test_bigbluebutton_conference's hosts: its image is cached)
    host = host_factory.start("turnown", packages=["coturn", "nftables", "libxml2-utils"])
    host.run("sh", "-c", "cat > /etc/turnserver.conf", input=SITE_TURNSERVER_CONF)
    host.run("systemctl", "restart", "coturn")
    pillar = write_pillar(tmp_path_factory.mktemp("coturn-own") / "pillar", host)
    before = {"files": snapshot.files(host), "packages": snapshot.packages(host)}
    first = host.apply("coturn", pillar_dir=pillar)
    assert not failed(first), failed(first)
    assert "use-auth-secret" in host.run("cat", "/etc/turnserver.conf").stdout
    totals, out = relay(host)
    assert totals == ("10", "10"), out
    cleaned = host.apply("coturn.clean", pillar_dir=pillar)
    assert not failed(cleaned), failed(cleaned)
    after = snapshot.files(host)
    assert snapshot.diff(before["files"], after) == []
    assert host.run("cat", "/etc/turnserver.conf").stdout == SITE_TURNSERVER_CONF
    assert snapshot.packages(host) == before["packages"]  # the site's coturn and nftables stay
    assert host.run("systemctl", "is-active", "coturn").stdout.strip() == "active"
    restarted = [v for v in cleaned.values() if v["__id__"] == "coturn-service-site-config"]
    assert restarted and restarted[0]["changes"] == {"restarted": "coturn"}
    assert host.run("nft", "list", "tables").stdout.strip() == ""


def test_coturn_verify_on_a_booted_host(host_factory, tmp_path_factory):
    # (the package set of test_bigbluebutton_conference's hosts: its image is cached)
    host = host_factory.start("turnverify", packages=["coturn", "nftables", "libxml2-utils"])
    pillar = write_pillar(tmp_path_factory.mktemp("coturn-verify") / "pillar", host)
    first = host.apply("coturn", pillar_dir=pillar)
    assert not failed(first), failed(first)
    verified = by_id(first, "coturn-verified")
    assert verified["comment"] == (
        "turnutils_uclient with the pillar's secret got a relay "
        + re.search(r"\(127\.0\.0\.1:\d+\)", verified["comment"]).group(0)
        + " from 127.0.0.1:3478/udp; a peer in a denied range (192.0.2.1, "
        "192.0.2.0-192.0.2.255) is refused (403 Forbidden IP)"
    )
    # the host's own address lies in the denied 198.18.0.0/15: allowed exactly, and said so
    own = by_id(first, "coturn-own-addresses")["comment"]
    assert f"own address {host.addr} (a host address coturn relays from; " in own, own
    conf = host.run("cat", "/etc/turnserver.conf").stdout
    assert f"\nallowed-peer-ip={host.addr}\n" in conf
    # two clients relaying to each other's relayed address (the host's own) get through
    cmd = ["turnutils_uclient", "-y", "-u", "bbb", "-W", SECRET, "-n", "5"]
    proc = subprocess.run(
        [*cmd, "-L", host.ns.host_addr, host.addr],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    totals = re.findall(r"tot_send_msgs=(\d+), tot_recv_msgs=(\d+)", proc.stdout)
    assert "Forbidden IP" not in proc.stdout and totals and totals[-1][0] == totals[-1][1] != "0", (
        proc.stdout + proc.stderr
    )
    # a pillar whose secret is not the server's
    other = write_pillar(tmp_path_factory.mktemp("coturn-other") / "pillar", host)
    data = yaml.safe_load((other / "coturn.sls").read_text())
    data["coturn"]["static_auth_secret"] = "not-the-Servers-secret-31415"
    (other / "coturn.sls").write_text(yaml.safe_dump(data))
    ret = host.apply("coturn.verify", pillar_dir=other)
    assert failed(ret) == {
        next(k for k in ret if "coturn-verified" in k): (
            "coturn verify: the TURN server at 127.0.0.1:3478/udp refuses credentials made "
            "from the pillar's static_auth_secret (Cannot complete Allocation): does it run "
            "with another secret?"
        )
    }
    assert not changed(ret), changed(ret)
    # coturn stopped: verify fails with one line and does not start it
    host.run("systemctl", "stop", "coturn")
    ret = host.apply("coturn.verify", pillar_dir=pillar)
    assert list(failed(ret).values()) == [
        "coturn verify: no TURN server answers at 127.0.0.1:3478/udp (connection refused): "
        "is coturn running?"
    ]
    assert not changed(ret), changed(ret)
    state = host.run("systemctl", "is-active", "coturn", check=False).stdout.strip()
    assert state == "inactive"
    # and it can be turned off per host
    data = yaml.safe_load((pillar / "coturn.sls").read_text())
    data["coturn"]["verify"] = {"enabled": False}
    (pillar / "coturn.sls").write_text(yaml.safe_dump(data))
    ret = host.apply("coturn.verify", pillar_dir=pillar)
    assert not failed(ret), failed(ret)
    assert (
        by_id(ret, "coturn-verified")["comment"] == "not verified: coturn:verify:enabled is false"
    )
