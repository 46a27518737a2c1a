"""
The coturn execution module: the cross-key validator, the turnserver.conf line
writer (second line of defence behind the schema) and the firewall coexistence
check, fed with real ``nft -j list ruleset`` output of rulesets loaded into a
network namespace.
"""

import importlib.util
import json
import shutil
import tempfile
from pathlib import Path

import pytest
import yaml
from salt.exceptions import SaltInvocationError

REPO = Path(__file__).resolve().parents[2]


def _load():
    spec = importlib.util.spec_from_file_location("labsalt_coturn", REPO / "_modules" / "coturn.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


coturn = _load()
DEFAULTS = yaml.safe_load((REPO / "formulas/coturn/parameters/defaults.yaml").read_text())


@pytest.mark.parametrize(
    ("option", "value", "line"),
    [
        ("external-ip", "198.51.100.7", "external-ip=198.51.100.7"),
        ("denied-peer-ip", "10.0.0.0-10.255.255.255", "denied-peer-ip=10.0.0.0-10.255.255.255"),
        ("listening-port", 3478, "listening-port=3478"),
        (
            "cert",
            "/etc/letsencrypt/live/t/fullchain.pem",
            "cert=/etc/letsencrypt/live/t/fullchain.pem",
        ),
    ],
)
def test_conf_line_writes_one_word_values(option, value, line):
    assert coturn.conf_line(option, value) == line


@pytest.mark.parametrize(
    "value",
    [
        "198.51.100.7\nallowed-peer-ip=10.0.0.0-10.255.255.255",
        "198.51.100.7\rno-auth",
        "198.51.100.7 # comment",
        "a\tb",
        "",
        "/path with space",
        "caf\u00e9",
    ],
)
def test_conf_line_refuses_what_the_format_cannot_hold(value):
    with pytest.raises(SaltInvocationError, match="not one word of printable ASCII"):
        coturn.conf_line("external-ip", value)


def test_conf_line_never_shows_a_secret():
    with pytest.raises(SaltInvocationError) as info:
        coturn.conf_line("static-auth-secret", "s3cret value\nno-auth", secret=True)
    assert "s3cret" not in str(info.value) and "(secret value)" in str(info.value)


def test_conf_line_refuses_an_option_name_that_is_not_one():
    with pytest.raises(SaltInvocationError, match="not an option name"):
        coturn.conf_line("realm=x\nno-auth", "a")


def test_validator_accepts_the_defaults():
    assert coturn.validate(DEFAULTS)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"tls": {"cert": "/etc/c.pem", "pkey": None}}, "coturn:tls:pkey: is missing"),
        ({"tls": {"cert": None, "pkey": "/etc/k.pem"}}, "coturn:tls:cert: is missing"),
        (
            {"tls": {"cert": "/c", "pkey": "/k"}, "tls_listening_port": 3478},
            "coturn:tls_listening_port: 3478 is also listening_port",
        ),
        ({"listening_port": 50000}, "coturn:listening_port: 50000 lies in the relay port range"),
        ({"min_port": 1024}, "coturn:listening_port: 3478 lies in the relay port range 1024-65535"),
    ],
)
def test_validator_names_the_key(changes, message):
    with pytest.raises(SaltInvocationError, match=message):
        coturn.validate({**DEFAULTS, **changes})


# --------------------------------------------------------------------------- firewall

needs_nft = pytest.mark.skipif(
    not shutil.which("nft") or not shutil.which("ip"), reason="nftables/iproute2 not installed"
)

SITE_NO_INPUT = """
table inet site {
  counter seen {}
  chain forward_guard {
    type filter hook forward priority filter; policy accept;
    ip saddr 203.0.113.0/24 counter name seen drop
  }
  chain site_counts { ip daddr 192.0.2.1 counter; }
}
table inet labsalt_coturn {
  chain input { type filter hook input priority filter; policy drop; tcp dport 22 accept; }
}
table inet filter {
  chain input { type filter hook input priority filter; }
  chain forward { type filter hook forward priority filter; }
}
"""
SITE_INPUT_DROP = """
table ip legacy_site {
  chain INPUT { type filter hook input priority filter; policy drop; tcp dport 22 accept; }
}
"""
SITE_INPUT_RULES = """
table inet site {
  chain input { type filter hook input priority 10; policy accept; tcp dport 8080 counter; }
}
"""


def ruleset_json(text):
    from tests.support import netns  # noqa: PLC0415  (needs root and iproute2)

    with netns.namespace("ct") as ns, tempfile.NamedTemporaryFile("w", suffix=".nft") as rules:
        rules.write(text)
        rules.flush()
        ns.run("nft", "-f", rules.name)
        return json.loads(ns.run("nft", "-j", "list", "ruleset").stdout)


@needs_nft
def test_no_conflict_with_tables_that_do_not_filter_input():
    """Forward/output chains, regular chains, coturn's own table, Debian's empty default."""
    assert coturn._nft_conflicts("labsalt_coturn", ruleset_json(SITE_NO_INPUT)) == []


@needs_nft
def test_conflict_with_an_input_chain_that_drops():
    found = coturn._nft_conflicts("labsalt_coturn", ruleset_json(SITE_INPUT_DROP))
    assert found == ["table ip legacy_site chain INPUT (input hook, policy drop, 1 rules)"]


@needs_nft
def test_conflict_with_an_input_chain_that_has_rules():
    found = coturn._nft_conflicts("labsalt_coturn", ruleset_json(SITE_INPUT_RULES))
    assert found == ["table inet site chain input (input hook, policy accept, 1 rules)"]


@needs_nft
def test_own_table_of_another_name_is_a_conflict():
    """Only the table coturn is configured with is its own."""
    found = coturn._nft_conflicts("other_name", ruleset_json(SITE_NO_INPUT))
    assert found == ["table inet labsalt_coturn chain input (input hook, policy drop, 1 rules)"]


# --------------------------------------------------------------------------- own addresses

DENIED_10 = "10.0.0.0-10.255.255.255"


def test_own_addresses_in_denied_ranges_the_nat_lab_of_coturn_1407():
    """listening-ip 10.0.10.5 (the relay address) in the denied 10/8, public external-ip."""
    mapdata = {**DEFAULTS, "listening_ips": ["10.0.10.5"], "external_ip": "34.100.10.47"}
    assert coturn.own_peer_exceptions(mapdata) == [
        {
            "address": "10.0.10.5",
            "source": "listening_ips, the relay address",
            "range": DENIED_10,
            "allowed": True,
        }
    ]


def test_own_external_address_in_a_denied_range():
    mapdata = {**DEFAULTS, "external_ip": "192.168.178.20", "listening_ips": ["10.0.10.5"]}
    found = coturn.own_peer_exceptions(mapdata, ["172.16.0.9"])  # host addresses: not relayed
    assert [(e["address"], e["source"], e["range"]) for e in found] == [
        ("192.168.178.20", "external_ip", "192.168.0.0-192.168.255.255"),
        ("10.0.10.5", "listening_ips, the relay address", DENIED_10),
    ]


def test_own_addresses_from_the_host_when_listening_on_all():
    """No listening-ip: coturn relays from any host address; loopback and link-local never."""
    host = ["127.0.0.1", "192.168.1.5", "203.0.113.9", "::1", "fe80::5054:ff:fe12:3456", "fd00::5"]
    for listening in ([], ["0.0.0.0", "::"]):
        found = coturn.own_peer_exceptions({**DEFAULTS, "listening_ips": listening}, host)
        assert [(e["address"], e["range"]) for e in found] == [
            ("192.168.1.5", "192.168.0.0-192.168.255.255"),
            ("203.0.113.9", "203.0.113.0-203.0.113.255"),
            ("fd00::5", "fc00::-fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
        ]


def test_own_address_already_allowed_or_not_denied_is_no_exception():
    mapdata = {
        **DEFAULTS,
        "listening_ips": ["10.0.10.5", "34.100.10.47"],
        "allowed_peer_ips": ["10.0.10.0-10.0.10.255"],
    }
    assert coturn.own_peer_exceptions(mapdata) == []


def test_own_address_kept_denied_when_not_allowed_and_said_so():
    mapdata = {**DEFAULTS, "listening_ips": ["10.0.10.5"], "allow_own_addresses": False}
    found = coturn.own_peer_exceptions(mapdata)
    assert [e["allowed"] for e in found] == [False]
    assert coturn.own_exceptions_comment(found) == (
        "coturn:allow_own_addresses is false: the server's own address 10.0.10.5 (in denied "
        "10.0.0.0-10.255.255.255) stays denied, so clients relaying to each other through "
        "this server fail"
    )
    assert coturn.own_exceptions_comment([]) == (
        "no own address of this server lies in a denied peer range"
    )


# --------------------------------------------------------------------------- verify plan


@pytest.mark.parametrize(
    ("listening", "target"),
    [
        ([], "127.0.0.1"),
        (["0.0.0.0"], "127.0.0.1"),
        (["0.0.0.0", "::"], "127.0.0.1"),
        (["::"], "::1"),
        (["198.51.100.7", "10.0.0.1"], "198.51.100.7"),
    ],
)
def test_verify_reaches_the_server_where_it_listens(listening, target):
    assert coturn.verify_target({**DEFAULTS, "listening_ips": listening}) == (target, 3478)


def test_denied_probe_prefers_a_documentation_address():
    """Never a lab host: if the server wrongly let it through, nothing real is reached."""
    assert coturn.denied_probe(DEFAULTS, 4) == ("192.0.2.1", "192.0.2.0-192.0.2.255")


def test_denied_probe_ipv6_skips_loopback():
    assert coturn.denied_probe(DEFAULTS, 6) == ("64:ff9b::1", "64:ff9b::-64:ff9b::ffff:ffff")


def test_denied_probe_avoids_allowed_and_own_addresses():
    mapdata = {
        "denied_peer_ips": ["0.0.0.0-0.255.255.255", "127.0.0.0-127.255.255.255", DENIED_10],
        "allowed_peer_ips": ["10.0.0.0-10.0.0.255"],
    }
    assert coturn.denied_probe(mapdata, 4) == ("10.127.255.255", DENIED_10)
    own = [{"address": "10.127.255.255", "allowed": True}]
    assert coturn.denied_probe(mapdata, 4, own) == ("10.255.255.254", DENIED_10)
    assert coturn.denied_probe({"denied_peer_ips": ["fc00::-fdff::"]}, 4) is None
    assert coturn.denied_probe({"denied_peer_ips": ["10.0.0.1"], "allowed_peer_ips": []}, 4) == (
        "10.0.0.1",
        "10.0.0.1",
    )


def test_verify_plan_in_words():
    assert coturn.verify_checks({**DEFAULTS, "listening_ips": ["198.18.0.2"]}) == [
        "turnutils_uclient with credentials from the pillar's static_auth_secret allocates a "
        "relay at 198.18.0.2:3478/udp",
        "a peer in a denied range (192.0.2.1, 192.0.2.0-192.0.2.255) is refused",
    ]
