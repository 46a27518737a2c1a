"""
bind_ad converged over salt-ssh on a throw-away Debian 12 host: the package
installed from Debian, named running under systemd with Debian's own
/etc/bind/named.conf, and the formula's files in the real locations.

The DCs here are addresses on the host's own loopback that nothing answers
(127.0.0.11, 127.0.0.12): these tests look only at what BIND itself serves
(queries without recursion), and the verify step names both DCs in warnings;
the functional tests resolve through the delegations to a real Samba DC.
"""

import pytest

from tests.support import snapshot
from tests.support.states import assert_no_changes, assert_ok, changed, failed

DOMAIN = "ad.labsalt.test"
ZONE = f"/etc/bind/zones/db.{DOMAIN}"
# Inside the host's network namespace, where nothing listens: never probe elsewhere.
DC1, DC2 = "127.0.0.11", "127.0.0.12"


def pillar(host, **extra):
    data = {
        "domain": DOMAIN,
        "dcs": [{"name": "dc1", "ipv4": DC1}, {"name": "dc2", "ipv4": DC2}],
        "nameservers": [{"name": "ns1", "ipv4": host.addr}],
        "clients": ["localhost"],
        "records": [{"name": "printer", "type": "A", "data": "192.0.2.7"}],
    }
    data.update(extra)
    return {"bind_ad": data}


@pytest.fixture(scope="module")
def host(host_factory):
    return host_factory.start("ns1")


@pytest.fixture(scope="module")
def applied(host):
    return host.apply("bind_ad", pillar=pillar(host))


def dig(host, *args):
    out = host.run("dig", "@127.0.0.1", "+norec", "+short", "+time=2", "+tries=1", *args).stdout
    return out.split("\n")[:-1]


def test_highstate_installs_runs_and_serves(applied, host):
    states = assert_ok(applied)
    assert changed(states)
    assert host.run("systemctl", "is-active", "named").stdout.strip() == "active"
    assert sorted(dig(host, "SRV", f"_kpasswd._udp.{DOMAIN}")) == [
        f"0 100 464 dc1.{DOMAIN}.",
        f"0 100 464 dc2.{DOMAIN}.",
    ]
    assert dig(host, "CNAME", f"_kerberos._udp.{DOMAIN}") == [f"_kerberos._tcp.dc._msdcs.{DOMAIN}."]
    assert dig(host, "A", f"printer.{DOMAIN}") == ["192.0.2.7"]
    # Debian's named.conf.options includes the formula's options; rndc reached named.
    assert "labsalt-ad-options" in host.path("/etc/bind/named.conf.options").read_text()
    assert "validate-except" in host.path("/etc/bind/named.conf.labsalt-ad-options").read_text()
    assert host.run("rndc", "zonestatus", DOMAIN).returncode == 0
    # No Samba on this host: the Samba part has nothing to do.
    assert not any("samba" in key for key in states)


def test_second_apply_changes_nothing(applied, host):
    assert_no_changes(host.apply("bind_ad", pillar=pillar(host)))


def test_test_mode_predicts_without_touching(applied, host):
    before = host.path(ZONE).read_text()
    one_dc = pillar(host, dcs=[{"name": "dc1", "ipv4": DC1}])
    ret = host.apply("bind_ad", pillar=one_dc, test=True)
    predicted = {p for v in assert_ok(ret).values() if v["result"] is None for p in v["changes"]}
    assert predicted == {ZONE, "reload"}, predicted
    assert host.path(ZONE).read_text() == before
    assert dig(host, "A", f"dc2.{DOMAIN}") == [DC2]  # dc2 still served


def test_broken_zone_leaves_the_live_one_alone(applied, host):
    before = host.path(ZONE).read_text()
    bad = pillar(
        host,
        records=[
            {"name": "printer", "type": "A", "data": "192.0.2.7"},
            {"name": "printer", "type": "CNAME", "data": "dc1"},
        ],
    )
    ret = host.apply("bind_ad", pillar=bad)
    bad_states = failed(ret)
    assert any("CNAME and other data" in v["comment"] for v in bad_states.values()), bad_states
    assert not [k for k in changed(ret) if "rndc" in k or "bind" in k.split("_|-")[0]]
    assert host.path(ZONE).read_text() == before
    assert dig(host, "A", f"printer.{DOMAIN}") == ["192.0.2.7"]
    assert host.run("systemctl", "is-active", "named").stdout.strip() == "active"


def _verified(ret):
    (state,) = [v for k, v in ret.items() if k.endswith("_|-verified")]
    return state


def test_highstate_verifies_named_and_warns_of_silent_dcs(applied):
    state = _verified(applied)
    assert state["result"] is True, state
    assert state["comment"].startswith("named at 127.0.0.1#53 answers: "), state
    assert state["warnings"] == [
        f"DC dc1.{DOMAIN} does not answer on {DC1} port 53, {DC1} port 88 (TCP)",
        f"DC dc2.{DOMAIN} does not answer on {DC2} port 53, {DC2} port 88 (TCP)",
        "no DC answers on 53: lookups through the delegations were not checked",
    ], state


def test_verify_fails_with_one_line_when_named_is_stopped(applied, host):
    host.run("systemctl", "stop", "named")
    try:
        ret = host.apply("bind_ad.verify", pillar=pillar(host))
        state = _verified(ret)
        assert state["result"] is False, state
        assert "\n" not in state["comment"]
        assert state["comment"].startswith(
            f"bind_ad verify: named at 127.0.0.1#53 does not answer {DOMAIN} SOA: "
        ), state
        # Nothing was undone or restarted: named stays stopped, the files stay.
        assert host.run("systemctl", "is-active", "named", check=False).stdout.strip() != "active"
        assert host.path(ZONE).exists()
        # Turned off per host in pillar: the same run succeeds without querying.
        off = _verified(
            host.apply("bind_ad.verify", pillar=pillar(host, verify={"enabled": False}))
        )
        assert off["result"] is True and "verify:enabled is false" in off["comment"], off
    finally:
        host.run("systemctl", "start", "named")
    assert _verified(host.apply("bind_ad.verify", pillar=pillar(host)))["result"] is True


def test_clean_removes_what_it_installed(applied, host):
    # Last on this host: labsalt installed bind9 here, so clean removes it again.
    record = host.path("/var/lib/labsalt/bind_ad/installed-packages").read_text().split()
    assert {"bind9", "bind9-dnsutils", "bind9-utils"} <= set(record), record
    assert_ok(host.apply("bind_ad.clean", pillar=pillar(host)))
    left = [pkg for pkg in record if snapshot.installed(host, pkg)]
    assert left == [], left
    # the state directory went, and /var/lib/labsalt with it (nothing else is kept there)
    assert not host.path("/var/lib/labsalt").exists()
    assert not host.path(ZONE).exists()


def test_test_mode_on_a_fresh_host_installs_nothing(host_factory):
    fresh = host_factory.start("ns2")
    ret = fresh.apply("bind_ad", pillar=pillar(fresh), test=True)
    states = assert_ok(ret)
    predicted = {k for k, v in states.items() if v["result"] is None}
    (packages,) = [v for k, v in states.items() if k.endswith("_|-installed")]
    assert packages["result"] is None and "bind9" in packages["changes"], packages
    files = {p for v in states.values() if v["result"] is None for p in v["changes"]}
    assert ZONE in files, (files, predicted)
    assert fresh.run("dpkg-query", "-W", "bind9", check=False).returncode != 0
    assert not fresh.path("/etc/bind").exists()
