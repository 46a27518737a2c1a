"""
bind_ad's pure logic: the records it generates, the serial, the input checks.

What the DCs register is read from Samba 4.17's own ``dns_update_list`` (copied
from a DC provisioned by samba-tool), so the generated zone is checked against
what a real DC looks up and registers, name by name.
"""

import datetime
import importlib.util
import re
import shutil
from pathlib import Path

import pytest
from salt.exceptions import CommandExecutionError, SaltInvocationError

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
_spec = importlib.util.spec_from_file_location("bind_ad", REPO / "_modules" / "bind_ad.py")
bind_ad = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bind_ad)

DOMAIN = "ad.example.org"
SITE = "Default-First-Site-Name"
TODAY = datetime.date(2026, 11, 25)


def params(**extra):
    base = {
        "domain": DOMAIN,
        "dcs": [
            {"name": "dc1", "ipv4": "192.0.2.11", "ipv6": "2001:db8::11"},
            {"name": "dc2.ad.example.org", "ipv4": "192.0.2.12"},
        ],
        "nameservers": [{"name": "ns1", "ipv4": "192.0.2.2"}],
        "config_dir": "/etc/bind",
        "zone_dir": "/etc/bind/zones",
    }
    base.update(extra)
    return base


def by_owner(records):
    table = {}
    for owner, ttl, rtype, data in records:
        table.setdefault(owner, []).append((ttl, rtype, data))
    return table


def registrations(dc_name, ip):
    """(type, fqdn, data...) of every entry a Samba DC registers, from dns_update_list."""
    values = {
        "DNSDOMAIN": DOMAIN,
        "DNSFOREST": DOMAIN,
        "HOSTNAME": dc_name,
        "SITE": SITE,
        "NTDSGUID": "f2c6ac79-2f9d-42ac-a3d3-6f224c379ee1",
        "DOMAINGUID": "f91d05f9-f9bb-4c8f-8a9d-ba224f344ac2",
        "IP": ip,
    }
    entries = []
    for raw in (HERE / "data" / "samba-4.17-dns_update_list").read_text().splitlines():
        line = re.sub(r"\$\{IF_[A-Z_]+\}", "", raw.split("#", 1)[0]).strip()
        if not line or line.startswith(("RPC", "AAAA")):  # AAAA: the DC has no IPv6 here
            continue
        entries.append(tuple(re.sub(r"\$\{?(\w+)\}?", lambda m: values[m.group(1)], line).split()))
    return entries


def test_every_dc_registration_is_served_or_delegated():
    plan = bind_ad.plan(params())
    table = by_owner(plan["records"])
    delegated = [o for o, rrs in table.items() if o != "@" and any(r[1] == "NS" for r in rrs)]
    entries = registrations("dc1.ad.example.org", "192.0.2.11")
    assert len(entries) > 25  # the list was read, not skipped
    srv_ports = {e[1]: e[3] for e in entries if e[0] == "SRV"}
    for rtype, name, *data in entries:
        owner = bind_ad._relative(name.lower(), DOMAIN)
        if any(owner == d.lower() or owner.endswith("." + d.lower()) for d in delegated):
            continue  # answered by the DCs through the delegation
        rrs = table.get(owner)
        assert rrs, f"{rtype} {name}: neither served by BIND nor delegated"
        if rtype in ("A", "NS"):
            want = data[0] + ("." if rtype == "NS" else "")
            assert (rtype, want) in [(r[1], r[2]) for r in rrs], (name, rrs)
        elif rtype == "SRV" and rrs[0][1] == "CNAME":
            # The CNAME points into _msdcs, where the DC has the same target and port.
            target = rrs[0][2].rstrip(".")
            assert target in srv_ports, (name, target)
            assert srv_ports[target] == data[1], (name, target)
        else:
            assert (rtype, f"0 100 {data[1]} {data[0]}.") in [(r[1], r[2]) for r in rrs]


def test_seed_records_and_ttls():
    table = by_owner(bind_ad.plan(params())["records"])
    # Issue 18: delegation NS and CNAMEs at 3600 by default (the notebook had 86400).
    for subtree in ("_msdcs", "_sites", "DomainDnsZones", "ForestDnsZones"):
        assert sorted(table[subtree]) == [
            (3600, "NS", "dc1.ad.example.org."),
            (3600, "NS", "dc2.ad.example.org."),
        ]
    assert table["_kerberos._udp"] == [(3600, "CNAME", "_kerberos._tcp.dc._msdcs.ad.example.org.")]
    assert sorted(table["_kpasswd._udp"]) == [
        (3600, "SRV", "0 100 464 dc1.ad.example.org."),
        (3600, "SRV", "0 100 464 dc2.ad.example.org."),
    ]
    assert (3600, "AAAA", "2001:db8::11") in table["dc1"]
    assert (3600, "NS", "ns1.ad.example.org.") in table["@"]


def test_delegation_and_cname_ttls_are_pillar_keys():
    ttl = {"delegation": 86400, "cname": 7200}
    table = by_owner(bind_ad.plan(params(ttl=ttl))["records"])
    assert {t for t, _, _ in table["_msdcs"]} == {86400}
    assert table["_ldap._tcp"] == [(7200, "CNAME", "_ldap._tcp.dc._msdcs.ad.example.org.")]
    assert {t for t, rtype, _ in table["_kpasswd._tcp"]} == {3600}


@pytest.mark.parametrize(
    ("value", "written"),
    [(None, "explicit"), ("explicit", "explicit"), ("no", "no"), (False, "no"), (True, "yes")],
)
def test_zone_statement_notify(value, written):
    extra = {} if value is None else {"notify": value}
    text = bind_ad.zones_text(params(**extra), bind_ad.plan(params()))
    assert [ln for ln in text.splitlines() if ln.split()[:1] == ["notify"]] == [
        f"    notify {written};"
    ]


def test_notify_typo_is_one_line():
    with pytest.raises(SaltInvocationError, match=r"^bind_ad:notify: 'explicitt' is not one of"):
        bind_ad.validate(params(notify="explicitt"))


def test_child_domain_has_no_forest_records():
    table = by_owner(bind_ad.plan(params(forest_root=False))["records"])
    assert "_gc._tcp" not in table and "ForestDnsZones" not in table
    assert "_msdcs" in table


def test_delegating_tcp_and_udp_instead_of_cnames():
    table = by_owner(bind_ad.plan(params(srv_names="delegate"))["records"])
    assert {r[1] for r in table["_tcp"]} == {"NS"} and {r[1] for r in table["_udp"]} == {"NS"}
    assert not any(rtype == "CNAME" for rrs in table.values() for _, rtype, _ in rrs)
    assert "_kpasswd._udp" not in table  # served by the DCs below _udp


def test_serial_changes_only_with_content():
    plan = bind_ad.plan(params())
    first = bind_ad.zone_text(plan, {}, None, today=TODAY)
    assert "2026112500 ; serial" in first
    assert bind_ad.zone_text(plan, {}, first, today=TODAY) is first
    later = datetime.date(2027, 1, 1)
    assert bind_ad.zone_text(plan, {}, first, today=later) is first  # no change, no new serial
    changed = bind_ad.plan(params(dcs=params()["dcs"][:1]))
    second = bind_ad.zone_text(changed, {}, first, today=TODAY)
    assert "2026112501 ; serial" in second and "dc2" not in second
    assert "2027010100 ; serial" in bind_ad.zone_text(plan, {}, second, today=later)


def test_next_serial_never_goes_backwards():
    assert bind_ad.next_serial(None, TODAY) == 2026112500
    assert bind_ad.next_serial(2026112507, TODAY) == 2026112508
    assert bind_ad.next_serial(4000000000, TODAY) == 4000000001  # an older, larger scheme


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"domain": None}, "bind_ad:domain: is required"),
        ({"domain": "LABSALT"}, "'labsalt' is not a DNS domain name"),
        ({"domain": "ad..example.org"}, "is not a DNS name"),
        ({"dcs": []}, "list at least one domain controller"),
        ({"dcs": [{"name": "dc1"}]}, "bind_ad:dcs:0 (dc1.ad.example.org): has no address"),
        ({"dcs": [{"name": "dc1", "ipv4": "2001:db8::1"}]}, "is not an IPv4 address"),
        ({"dcs": [{"name": "dc.other.org", "ipv4": "192.0.2.1"}]}, "must lie inside"),
        (
            {"dcs": [{"name": "dc1", "ipv4": "192.0.2.1"}, {"name": "DC1.ad.example.org."}]},
            "bind_ad:dcs:1 (dc1.ad.example.org): listed twice (also dcs:0)",
        ),
        (
            {"dcs": [{"name": "dc1", "ipv4": "192.0.2.1"}, {"name": "dc2", "ipv4": "192.0.2.1"}]},
            "address 192.0.2.1 is also that of dc1.ad.example.org",
        ),
        ({"nameservers": []}, "bind_ad:nameservers: list at least this BIND server"),
        ({"nameservers": [{"name": "dc1", "ipv4": "192.0.2.2"}]}, "is listed as a DC too"),
        (
            {"records": [{"name": "x._msdcs", "type": "A", "data": "192.0.2.9"}]},
            "lies in _msdcs, which is delegated",
        ),
        ({"records": [{"name": "dc1", "type": "A", "data": "192.0.2.9"}]}, "generated from"),
        ({"records": [{"name": "www", "type": "BOGUS", "data": "x"}]}, "type 'BOGUS'"),
    ],
)
def test_bad_input_is_one_clear_error(change, message):
    with pytest.raises(SaltInvocationError) as exc:
        bind_ad.render(params(**change))
    assert message in str(exc.value)


def test_forward_mode_needs_no_zone():
    rendered = bind_ad.render(params(mode="forward", nameservers=[], config_dir="/nonexistent"))
    assert rendered["zone_file"] is None
    assert sorted(rendered["files"]) == [
        "/nonexistent/named.conf.labsalt-ad",
        "/nonexistent/named.conf.labsalt-ad-options",
        "/nonexistent/named.conf.local",
    ]
    zones = rendered["files"]["/nonexistent/named.conf.labsalt-ad"]
    assert "type forward;" in zones and "192.0.2.11; 2001:db8::11; 192.0.2.12;" in zones


# --------------------------------------------------------------------------- hostile input


@pytest.mark.parametrize(
    "name", ["x.DomainDnsZones", "x.domaindnszones", "X.FORESTDNSZONES", "a.b._MSDCS", "_Sites"]
)
def test_records_below_a_delegation_are_refused_whatever_the_case(name):
    # Before: the owner was lowercased and compared with "DomainDnsZones": accepted.
    with pytest.raises(SaltInvocationError, match="which is delegated to the DCs"):
        bind_ad.plan(params(records=[{"name": name, "type": "A", "data": "192.0.2.9"}]))


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (
            {"type": "A", "data": "192.0.2.300"},
            "bind_ad:records:0:data: '192.0.2.300' is not valid A",
        ),
        ({"type": "A", "data": "192.0.2.9\n$INCLUDE /etc/shadow"}, "newline or control"),
        ({"type": "AAAA", "data": "192.0.2.9"}, "is not valid AAAA"),
        ({"type": "CNAME", "data": "a b"}, "is not valid CNAME"),
        ({"type": "MX", "data": "10 mail ; x"}, "is not valid MX"),
        ({"type": "SRV", "data": "0 100 99999 dc1"}, "is not valid SRV"),
        ({"type": "A", "data": "192.0.2.9", "ttl": 10**20}, "bind_ad:records:0:ttl:"),
        ({"type": "A", "data": "192.0.2.9", "ttl": 2**31}, "is not a TTL (0..2147483647)"),
    ],
)
def test_record_data_is_checked_per_type(record, message):
    with pytest.raises(SaltInvocationError) as exc:
        bind_ad.plan(params(records=[dict(record, name="www")]))
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)


def test_txt_data_is_quoted_and_escaped():
    plan = bind_ad.plan(
        params(records=[
            {"name": "t1", "type": "TXT", "data": 'v=spf1 -all "x" \\ ; ()'},
            {"name": "t2", "type": "TXT", "data": '"already" "quoted"'},
        ])
    )  # fmt: skip
    table = by_owner(plan["records"])
    assert table["t1"][0][2] == '"v=spf1 -all \\"x\\" \\\\ ; ()"'
    assert table["t2"][0][2] == '"already" "quoted"'


@pytest.mark.parametrize(
    ("clients", "shown"),
    [
        (["0.0.0.0/0"], "0.0.0.0/0"),
        (["::/0"], "::/0"),
        (["any"], "any"),
        (["localhost", "0.0.0.0/1", "128.0.0.0/1"], "0.0.0.0/1, 128.0.0.0/1"),
        (["0/0"], None),
    ],
)
def test_open_resolver_is_refused_in_plain_words(clients, shown):
    try:
        bind_ad.validate(params(clients=clients))
    except SaltInvocationError as exc:
        message = str(exc)
    else:
        message = ""
    if shown is None:  # not an address at all: BIND would reject it, the schema does too
        return
    assert message.startswith(f"bind_ad:clients: {shown} lets every address recurse"), message
    assert "(?!" not in message


def test_restricted_clients_are_fine():
    assert bind_ad.validate(
        params(clients=["localhost", "192.0.2.0/24", "!192.0.2.7", "2001:db8::/64"])
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"config_dir": "/"}, "bind_ad:config_dir: '/' is not a directory of BIND's"),
        ({"zone_dir": "//"}, "bind_ad:zone_dir:"),
        ({"rndc": ["rndc; touch /tmp/labsalt-pwned"]}, "bind_ad:rndc:0:"),
    ],
)
def test_validate_refuses(change, message):
    with pytest.raises(SaltInvocationError, match=re.escape(message)):
        bind_ad.validate(params(**change))


# --------------------------------------------------------------------------- the site's files

DEBIAN_OPTIONS = """options {
\tdirectory "/var/cache/bind";

\t// forwarders {
\t// \t0.0.0.0;
\t// };

\tdnssec-validation auto;

\tlisten-on-v6 { any; };
};
"""
FRAGMENT = "/etc/bind/named.conf.labsalt-ad-options"


def test_options_edit_adds_one_marked_line_and_keeps_the_site():
    wanted = [
        ("validate-except", '{ "ad.example.org"; }', "domain"),
        ("listen-on-v6", "{ any; }", "listen_on_v6"),  # the same as the site's: left to it
        ("allow-recursion", "{ localhost; }", "clients"),
    ]
    new, keep = bind_ad.options_edit(DEBIAN_OPTIONS, FRAGMENT, wanted)
    added = [line for line in new.splitlines() if line not in DEBIAN_OPTIONS.splitlines()]
    assert added == [f'\tinclude "{FRAGMENT}"; /* labsalt bind_ad */']
    assert keep == [wanted[0][:2], wanted[2][:2]]
    assert bind_ad.options_edit(new, FRAGMENT, wanted) == (new, keep)  # idempotent
    assert bind_ad._without_marked(new) == DEBIAN_OPTIONS  # clean gives the site's file back


@pytest.mark.parametrize(
    ("site", "wanted", "message"),
    [
        (
            "listen-on-v6 { none; };",
            [("listen-on-v6", "{ any; }", "listen_on_v6")],
            "bind_ad:listen_on_v6: named.conf.options already sets listen-on-v6",
        ),
        (
            'validate-except { "other.example"; };',
            [("validate-except", '{ "ad.example.org"; }', "domain")],
            "bind_ad:domain: named.conf.options already sets validate-except without "
            "ad.example.org",
        ),
        (
            "allow-recursion { site-clients; };",
            [("allow-recursion", "{ localhost; }", "clients")],
            "bind_ad:clients: named.conf.options already sets allow-recursion to "
            "{ site-clients; }, not { localhost; }",
        ),
    ],
)
def test_a_conflicting_site_option_is_one_line_naming_it(site, wanted, message):
    with pytest.raises(SaltInvocationError) as exc:
        bind_ad.options_edit(f"options {{\n\t{site}\n}};\n", FRAGMENT, wanted)
    assert str(exc.value).startswith(message) and "\n" not in str(exc.value)


def test_site_validate_except_with_the_domain_is_enough():
    text = 'options { validate-except { "other.example"; "AD.example.org."; }; };\n'
    _, keep = bind_ad.options_edit(
        text, FRAGMENT, [("validate-except", '{ "ad.example.org"; }', "domain")]
    )
    assert keep == []


@pytest.mark.parametrize("site", ["", "zone \"site.example\" { type primary; file \"x\"; };\n",
                                  "// no newline at the end"])  # fmt: skip
def test_local_edit_appends_one_line_and_clean_restores_the_bytes(site):
    new = bind_ad.local_edit(site, "/etc/bind/named.conf.labsalt-ad")
    assert new.startswith(site) and new.count("labsalt bind_ad") == 1
    assert bind_ad.local_edit(new, "/etc/bind/named.conf.labsalt-ad") == new
    assert bind_ad._without_marked(new) == site


def test_an_earlier_bind_ad_named_conf_local_is_taken_over(tmp_path):
    etc = tmp_path / "bind"
    etc.mkdir()
    (etc / "named.conf.options").write_text(DEBIAN_OPTIONS)
    old = bind_ad.MANAGED.replace(";", "//", 1) + 'zone "ad.example.org" {\n};\n'
    (etc / "named.conf.local").write_text(old)
    files = bind_ad.render(params(config_dir=str(etc)))["files"]
    assert files[str(etc / "named.conf.local")] == (
        f'include "{etc}/named.conf.labsalt-ad"; /* labsalt bind_ad */\n'
    )


def test_writers_quote_as_a_second_defence():
    # Past the schema (e.g. called directly): nothing breaks out of its statement.
    with pytest.raises(SaltInvocationError, match="bind_ad:clients"):
        bind_ad._acl(["10.0.0.0/8; }; allow-transfer { any"], "clients")
    assert bind_ad._qstr('a"b\\c', "x") == '"a\\"b\\\\c"'
    with pytest.raises(SaltInvocationError, match="bind_ad:zone_dir"):
        bind_ad._qstr("/x\n};", "zone_dir")
    with pytest.raises(SaltInvocationError, match="bind_ad:dnssec_policy"):
        bind_ad.zones_text(params(dnssec_policy="default; };"), bind_ad.plan(params()))


# --------------------------------------------------------------------------- checking

needs_bind = pytest.mark.skipif(not shutil.which("named-checkconf"), reason="no bind9-utils")


def _tree(tmp_path):
    etc = tmp_path / "etc" / "bind"
    etc.mkdir(parents=True)
    (etc / "named.conf").write_text(
        f'include "{etc}/named.conf.options";\ninclude "{etc}/named.conf.local";\n'
    )
    (etc / "named.conf.options").write_text(f'options {{ directory "{tmp_path}/c"; }};\n')
    (etc / "named.conf.local").write_text("")
    return etc


@needs_bind
def test_check_config_validates_the_whole_set(tmp_path):
    etc = _tree(tmp_path)
    p = params(config_dir=str(etc), zone_dir=str(etc / "zones"))
    files = bind_ad.render(p)["files"]
    assert "zone ad.example.org/IN: loaded serial" in bind_ad.check_config(
        files, named_conf=str(etc / "named.conf")
    )
    zone = bind_ad.zone_path(p)
    broken = dict(files, **{zone: files[zone] + "www 3600 IN A 192.0.2.300\n"})
    with pytest.raises(CommandExecutionError, match="192.0.2.300"):
        bind_ad.check_config(broken, named_conf=str(etc / "named.conf"))
    assert not (etc / "zones").exists()  # nothing written outside the temporary tree


@needs_bind
def test_check_config_copies_only_named_files_and_is_bounded(tmp_path, monkeypatch):
    etc = _tree(tmp_path)
    (etc / "unrelated").mkdir()
    (etc / "unrelated" / "big.bin").write_bytes(b"\0" * 4096)
    copied = []
    real_copy = shutil.copy2
    monkeypatch.setattr(
        bind_ad.shutil, "copy2", lambda src, dst: copied.append(src) or real_copy(src, dst)
    )
    p = params(config_dir=str(etc), zone_dir=str(etc / "zones"))
    bind_ad.check_config(bind_ad.render(p)["files"], named_conf=str(etc / "named.conf"))
    assert copied == [str(etc / "named.conf")]  # the rest are the new texts themselves
    # A site zone named relative to `directory` is found and loaded too.
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "db.site").write_text(
        "$TTL 60\n@ IN SOA ns hm 1 60 60 60 60\n@ IN NS ns\nns IN A 192.0.2.53\n"
    )
    site_zone = 'zone "site.example" { type primary; file "db.site"; };\n'
    (etc / "named.conf.local").write_text(site_zone)
    out = bind_ad.check_config(bind_ad.render(p)["files"], named_conf=str(etc / "named.conf"))
    assert "zone site.example/IN: loaded serial 1" in out
    monkeypatch.setattr(bind_ad, "MAX_COPY_FILES", 0)
    with pytest.raises(CommandExecutionError, match="more than 0 files"):
        bind_ad.check_config(bind_ad.render(p)["files"], named_conf=str(etc / "named.conf"))


# --------------------------------------------------------------------------- samba


@pytest.mark.skipif(not shutil.which("testparm"), reason="no samba-common-bin")
def test_samba_conf_text_only_on_a_dc(tmp_path):
    command = "/usr/sbin/samba_dnsupdate --use-samba-tool"
    dc = tmp_path / "dc.conf"
    dc.write_text("[global]\n\tserver role = active directory domain controller\n\n[netlogon]\n")
    text = bind_ad.samba_conf_text(str(dc), command)
    assert text.startswith(f"[global]\n\tdns update command = {command}\n")
    dc.write_text(text.replace(command, "/usr/sbin/samba_dnsupdate"))
    assert bind_ad.samba_conf_text(str(dc), command) == text  # replaced, not added twice
    member = tmp_path / "member.conf"
    member.write_text("[global]\n\tserver role = member server\n")
    assert bind_ad.samba_conf_text(str(member), command) is None
    assert bind_ad.samba_conf_text(str(tmp_path / "absent.conf"), command) is None


@pytest.mark.parametrize("previous", [None, "   dns update command = /usr/local/bin/mine\n"])
def test_samba_clean_restores_the_previous_line(tmp_path, previous):
    before = "[global]\n\tworkgroup = LAB\n" + (previous or "") + "\n[share]\n\tpath = /srv\n"
    conf, record = tmp_path / "smb.conf", tmp_path / "record"
    conf.write_text(before)
    record.write_text(bind_ad.samba_previous(str(conf)))
    lines = before.splitlines(keepends=True)
    index = bind_ad._samba_global_setting(lines)
    setting = "\tdns update command = /usr/sbin/samba_dnsupdate --use-samba-tool\n"
    if index is None:
        lines.insert(1, setting)
    else:
        lines[index] = setting
    conf.write_text("".join(lines))
    assert bind_ad.samba_restore_text(str(conf), str(record)) == before


@pytest.mark.parametrize(
    ("pillar", "site", "server"),
    [
        ({}, None, ("127.0.0.1", 53)),  # BIND's default: every IPv4 interface
        ({"listen_on": ["127.0.0.10"]}, None, ("127.0.0.10", 53)),
        ({"listen_on": ["192.0.2.2", "localhost"]}, None, ("127.0.0.1", 53)),
        ({"listen_on": ["!192.0.2.9", "192.0.2.0/24", "192.0.2.2"]}, None, ("192.0.2.2", 53)),
        ({}, "options { listen-on port 5353 { 192.0.2.2; }; };\n", ("192.0.2.2", 5353)),
        ({}, "options { listen-on { 127.0.0.0/8; 192.0.2.2; }; };\n", ("127.0.0.1", 53)),
        ({"listen_on": ["none"], "listen_on_v6": ["2001:db8::2"]}, None, ("2001:db8::2", 53)),
        ({"listen_on": ["none"], "listen_on_v6": ["any"]}, None, ("::1", 53)),
    ],
)
def test_verify_asks_named_at_its_own_listen_address(tmp_path, pillar, site, server):
    if site is not None:
        (tmp_path / "named.conf.options").write_text(site)
    assert bind_ad.verify_server(params(config_dir=str(tmp_path), **pillar)) == server


def test_verify_checks_in_words_for_test_mode(tmp_path):
    checks = bind_ad.verify_checks(params(config_dir=str(tmp_path)))
    assert checks[0] == "named answers on 127.0.0.1#53"
    assert "referrals to the DCs for _msdcs, _sites, DomainDnsZones, ForestDnsZones" in checks
    forward = bind_ad.verify_checks(params(config_dir=str(tmp_path), mode="forward"))
    assert not [c for c in forward if "referrals" in c or "CNAME" in c]
