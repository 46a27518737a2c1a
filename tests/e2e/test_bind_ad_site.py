"""
bind_ad on a seasoned DNS server (issue 16): a throw-away Debian 12 host that
already runs the site's BIND (bind9 and dnsutils installed before labsalt came)
with a primary zone of its own, a reverse zone and its ACLs and options in
named.conf.options.  The formula is applied over salt-ssh: the site's zones
still answer, the AD delegation answers too, a second apply changes nothing,
and bind_ad.clean leaves /etc and /var/lib/bind as they were before the apply
(bind9 stays installed, the site's zone still resolves).  An option of the
site's that the pillar contradicts stops the run with one line naming it.
"""

import re

import pytest

from tests.support import snapshot
from tests.support.states import assert_no_changes, assert_ok, failed

DOMAIN = "ad.labsalt.test"
SITE_OPTIONS = """\
// The site's resolver policy (predates labsalt).
acl "site-clients" { localhost; localnets; 198.51.100.0/24; };

options {
\tdirectory "/var/cache/bind";
\tdnssec-validation auto;
\tlisten-on-v6 { any; };
\tallow-recursion { site-clients; };
\tallow-query-cache { site-clients; };
\tallow-transfer { none; };
\tminimal-responses yes;
};
"""
SITE_LOCAL = """\
// The site's zones.
zone "site.example" {
\ttype primary;
\tfile "/var/lib/bind/db.site.example";
};

zone "2.0.192.in-addr.arpa" {
\ttype primary;
\tfile "/var/lib/bind/db.192.0.2";
};
"""
SITE_ZONE = """\
$TTL 3600
@ IN SOA ns.site.example. hostmaster.site.example. (2024010101 3600 900 604800 3600)
@ IN NS ns.site.example.
ns IN A 192.0.2.53
host IN A 192.0.2.50
"""
SITE_REVERSE = """\
$TTL 3600
@ IN SOA ns.site.example. hostmaster.site.example. (2024010101 3600 900 604800 3600)
@ IN NS ns.site.example.
50 IN PTR host.site.example.
"""
# What is compared before apply and after clean: labsalt's trees and
# /var/lib/bind, without named's journals and managed-keys caches.
TREES = (*snapshot.TREES, "/var/lib/bind")
RUNTIME = re.compile(
    snapshot.VOLATILE.pattern + r"|\.(jnl|jbk)$|/managed-keys\.bind[^/]*$|\.mkeys[^/]*$"
)


def pillar(host, **extra):
    data = {
        "domain": DOMAIN,
        # On the host's own loopback (nothing listens): verify probes no other address.
        "dcs": [{"name": "dc1", "ipv4": "127.0.0.11"}, {"name": "dc2", "ipv4": "127.0.0.12"}],
        "nameservers": [{"name": "ns1", "ipv4": host.addr}],
        # No clients (the example pillar's are dropped): the site's ACLs decide.
        "clients": None,
    }
    data.update(extra)
    return {"bind_ad": data}


def dig(host, *args):
    out = host.run("dig", "@127.0.0.1", "+norec", "+short", "+time=2", "+tries=1", *args).stdout
    return out.split("\n")[:-1]


def listing(host):
    return snapshot.files(host, TREES, RUNTIME)


@pytest.fixture(scope="module")
def site(host_factory):
    """The site's DNS server as it was before labsalt: its zones, ACLs and options."""
    host = host_factory.start("dns1", packages=["bind9", "dnsutils"])
    for path, text in (
        ("/etc/bind/named.conf.options", SITE_OPTIONS),
        ("/etc/bind/named.conf.local", SITE_LOCAL),
        ("/var/lib/bind/db.site.example", SITE_ZONE),
        ("/var/lib/bind/db.192.0.2", SITE_REVERSE),
    ):
        host.run("sh", "-c", f"cat > {path}", input=text)
    host.run("named-checkconf", "-z")
    host.run("systemctl", "restart", "named")
    assert dig(host, "A", "host.site.example") == ["192.0.2.50"]
    return host


def test_bind_ad_coexists_with_site(site):
    before = listing(site)
    assert "/etc/bind/named.conf.local" in before and "/var/lib/bind/db.site.example" in before

    # test=True first: predicts the formula's files and the two include lines, writes nothing.
    predicted = assert_ok(site.apply("bind_ad", pillar=pillar(site), test=True))
    files = {p for v in predicted.values() if v["result"] is None for p in v["changes"]}
    assert files == {
        "/etc/bind/named.conf.options",
        "/etc/bind/named.conf.local",
        "/etc/bind/named.conf.labsalt-ad",
        "/etc/bind/named.conf.labsalt-ad-options",
        f"/etc/bind/zones/db.{DOMAIN}",
        "reconfig",
        "reload",
    }, files
    assert snapshot.diff(before, listing(site)) == []

    states = assert_ok(site.apply("bind_ad", pillar=pillar(site)))
    # The site's zones still answer, next to the AD zone and its delegations.
    assert dig(site, "A", "host.site.example") == ["192.0.2.50"]
    assert dig(site, "-x", "192.0.2.50") == ["host.site.example."]
    assert dig(site, "A", f"dc1.{DOMAIN}") == ["127.0.0.11"]
    # The verify step passed through the site's named (its ACLs let localhost recurse).
    (verified,) = [v for k, v in states.items() if k.endswith("_|-verified")]
    assert verified["result"] is True and verified["comment"].startswith("named at 127.0.0.1#53")
    referral = site.run(
        "dig", "@127.0.0.1", "+norec", "+time=2", "+tries=1", "NS", f"_msdcs.{DOMAIN}"
    ).stdout
    assert f"dc1.{DOMAIN}." in referral and f"dc2.{DOMAIN}." in referral, referral
    # Only one line was added to each of the site's files; its options are its own.
    options = site.path("/etc/bind/named.conf.options").read_text()
    local = site.path("/etc/bind/named.conf.local").read_text()
    assert [line for line in options.splitlines() if line not in SITE_OPTIONS.splitlines()] == [
        '\tinclude "/etc/bind/named.conf.labsalt-ad-options"; /* labsalt bind_ad */'
    ]
    assert (
        local == SITE_LOCAL + 'include "/etc/bind/named.conf.labsalt-ad"; /* labsalt bind_ad */\n'
    )
    fragment = site.path("/etc/bind/named.conf.labsalt-ad-options").read_text()
    assert f'validate-except {{ "{DOMAIN}"; }};' in fragment
    assert "allow-recursion" not in fragment  # the site's ACL stays in charge
    # bind9 was the site's: nothing recorded as installed by labsalt.
    assert not site.path("/var/lib/labsalt/bind_ad/installed-packages").exists()
    assert not any("pkg" in k for k, v in states.items() if v["changes"])

    assert_no_changes(site.apply("bind_ad", pillar=pillar(site)))

    assert_ok(site.apply("bind_ad.clean", pillar=pillar(site)))
    assert snapshot.diff(before, listing(site)) == []
    assert site.run("dpkg-query", "-W", "-f=${db:Status-Abbrev}", "bind9").stdout.startswith("ii")
    assert site.run("systemctl", "is-active", "named").stdout.strip() == "active"
    assert dig(site, "A", "host.site.example") == ["192.0.2.50"]
    assert dig(site, "-x", "192.0.2.50") == ["host.site.example."]
    assert dig(site, "A", f"dc1.{DOMAIN}") == []  # the AD zone is gone from named


def test_bind_ad_refuses_a_conflicting_site_option(site):
    before = listing(site)
    ret = site.apply("bind_ad", pillar=pillar(site, clients=["localhost"]))
    bad = failed(ret)
    comments = [v["comment"] for v in bad.values() if "requisite failed" not in v["comment"]]
    assert comments == [
        "bind_ad:clients: /etc/bind/named.conf.options already sets allow-recursion to "
        "{ site-clients; }, not { localhost; }; drop bind_ad:clients or that option"
    ], bad
    assert snapshot.diff(before, listing(site)) == []
    assert dig(site, "A", "host.site.example") == ["192.0.2.50"]
