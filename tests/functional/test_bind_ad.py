"""
bind_ad against real daemons: a Samba AD DC provisioned with samba-tool and the
formula's BIND, both in one network namespace.

The DC listens on the namespace's address (its internal DNS serves the AD
subtrees); named listens on 127.0.0.10 inside the namespace with a test-owned
named.conf that includes the two files the formula manages and a fake root zone
(no root priming, nothing leaves the namespace).  The formula is applied through
Salt's real loaders with ``config_dir``/``zone_dir`` pointing into a temp tree,
and named is told about changes over its control channel (rndc), as on a host.
Clients (dig, kinit, samba_dnsupdate) run inside the namespace, in a mount
namespace whose resolv.conf names BIND only.
"""

import base64
import contextlib
import ctypes
import fcntl
import hashlib
import os
import re
import shlex
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.support import netns
from tests.support.states import assert_no_changes, assert_ok, changed, failed, results

REALM = "AD.LABSALT.TEST"
DOMAIN = REALM.lower()
ADMIN_PASS = "Lab-Adm1n-Pass.7"
BIND_ADDR = "127.0.0.10"
DEAD_FORWARDER = "127.0.0.99"  # nothing listens there: forwarding would fail
# Provisioning bakes paths and the DC's address into the databases, so the DC
# always lives at this path (one run at a time, under a lock) and the cache is
# keyed by its address.
DC_DIR = Path("/run/labsalt-tests/bind_ad-dc")
DC_LOCK = Path("/run/labsalt-tests/bind_ad-dc.lock")
CACHE = Path("/var/cache/labsalt-tests")
KEEP_TARBALLS = 6

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces and named need root"),
    pytest.mark.skipif(
        not all(shutil.which(p) for p in ("named", "samba-tool", "samba", "dig", "kinit")),
        reason="scripts/apt/bind_ad.txt is not installed",
    ),
]


def _sh(*cmd, **kwargs):
    return netns.sh(*map(str, cmd), **kwargs)


def _samba_version():
    return _sh("samba", "--version").stdout.split()[-1]


@pytest.fixture(scope="module")
def lab():
    with netns.namespace("bindad") as ns:
        # BIND listens only on interface addresses: give it its own on the namespace's lo.
        ns.run("ip", "addr", "add", f"{BIND_ADDR}/8", "dev", "lo")
        yield ns


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    """Files the clients see instead of the host's: resolv.conf (BIND only), nsswitch, krb5."""
    root = tmp_path_factory.mktemp("bind_ad-clients")
    (root / "resolv.conf").write_text(f"nameserver {BIND_ADDR}\n")
    (root / "nsswitch.conf").write_text("hosts: files dns\npasswd: files\ngroup: files\n")
    (root / "krb5.conf").write_text(
        "[libdefaults]\n"
        f"    default_realm = {REALM}\n"
        "    dns_lookup_kdc = true\n"
        "    dns_lookup_realm = false\n"
        "    rdns = false\n"
    )
    return root


def in_namespace(ns, sandbox, script, check=True, **kwargs):
    """Run a shell script inside ``ns`` with private /run/samba and BIND as the only resolver."""
    setup = (
        "set -e; mount -t tmpfs tmpfs /run/samba 2>/dev/null || "
        "{ mkdir -p /run/samba && mount -t tmpfs tmpfs /run/samba; }; "
        "mount -t tmpfs tmpfs /var/log/samba; "
        f"mount --bind {sandbox}/resolv.conf /etc/resolv.conf; "
        f"mount --bind {sandbox}/nsswitch.conf /etc/nsswitch.conf; "
    )
    return ns.run("unshare", "-m", "sh", "-c", setup + script, check=check, **kwargs)


def _provision_args(addr):
    return [
        "samba-tool", "domain", "provision",
        f"--realm={REALM}", "--domain=LABSALT", "--server-role=dc",
        "--dns-backend=SAMBA_INTERNAL", f"--adminpass={ADMIN_PASS}",
        f"--host-ip={addr}", "--host-name=dc1", f"--targetdir={DC_DIR}",
        f"--option=dns forwarder={BIND_ADDR}",
        f"--option=interfaces={addr}", "--option=bind interfaces only=yes",
    ]  # fmt: skip


def _tarball(addr):
    """The cached DC for this Samba version and these provisioning arguments."""
    recipe = hashlib.sha256(repr(_provision_args(addr)).encode()).hexdigest()[:12]
    return CACHE / f"bind_ad-dc-samba{_samba_version()}-{addr}-{recipe}.tar.gz"


def _provision(ns, empty_conf):
    shutil.rmtree(DC_DIR, ignore_errors=True)
    DC_DIR.mkdir(parents=True)
    # An empty -s config, or Debian's /etc/samba/smb.conf leaks into the DC's.
    ns.run(*_provision_args(ns.addr), "-s", empty_conf)


@pytest.fixture(scope="module")
def dc(lab, sandbox, tmp_path_factory):
    """A running Samba AD DC at lab.addr, restored from the cache (or provisioned and cached)."""
    DC_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(DC_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        tarball = _tarball(lab.addr)
        if tarball.is_file():
            shutil.rmtree(DC_DIR, ignore_errors=True)
            _sh("tar", "--xattrs", "--xattrs-include=*", "--acls", "-xzf", tarball, "-C", "/")
        else:
            empty = tmp_path_factory.mktemp("bind_ad-empty") / "smb.conf"
            empty.write_text("")
            _provision(lab, empty)
            CACHE.mkdir(parents=True, exist_ok=True)
            partial = tarball.with_suffix(".partial")
            _sh(
                "tar", "--xattrs", "--xattrs-include=*", "--acls", "-czf", partial,
                "-C", "/", DC_DIR.relative_to("/"),
            )  # fmt: skip
            partial.rename(tarball)
            # One tarball per address the DC got; keep the few most recent.
            olds = sorted(CACHE.glob("bind_ad-dc-*.tar.gz"), key=lambda p: p.stat().st_mtime)
            for old in olds[:-KEEP_TARBALLS]:
                old.unlink(missing_ok=True)
        conf = DC_DIR / "etc" / "smb.conf"
        (DC_DIR / "cache").mkdir(exist_ok=True)
        log = open(tmp_path_factory.mktemp("bind_ad-dclog") / "samba.log", "w")  # noqa: SIM115
        samba = lab.popen(
            ["unshare", "-m", "sh", "-c",
             "mount -t tmpfs tmpfs /run/samba && mount -t tmpfs tmpfs /var/log/samba && "
             f"mount --bind {sandbox}/resolv.conf /etc/resolv.conf && "
             f"exec samba --foreground --no-process-group --debug-stdout -s {conf}"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        _wait(lambda: _dig(lab, "SOA", DOMAIN, server=lab.addr, check=False), "samba DNS")
        _wait(lambda: _port_open(lab.addr, 135) and _port_open(lab.addr, 389), "samba RPC/LDAP")
        try:
            yield {"conf": conf, "addr": lab.addr, "process": samba, "sandbox": sandbox}
        finally:
            # SIGKILL to every process of samba's mount namespace (a clean stop takes
            # seconds and leaves samba-dcerpcd behind); named in the same netns stays.
            mnt = os.readlink(f"/proc/{samba.pid}/ns/mnt")
            for pid in _sh("ip", "netns", "pids", lab.name, check=False).stdout.split():
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{pid}/ns/mnt") == mnt:
                        os.kill(int(pid), 9)
            samba.wait()
            log.close()
            shutil.rmtree(DC_DIR, ignore_errors=True)


def _port_open(addr, port):
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((addr, port)) == 0


def _wait(check, what, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(RuntimeError):
            if check():
                return
        time.sleep(0.1)
    raise AssertionError(f"{what} did not come up within {timeout} s")


def _dig(ns, rtype, name, *opts, server=BIND_ADDR, check=True):
    """The answer lines of dig +short (raises when empty unless check=False)."""
    out = ns.run("dig", f"@{server}", "+short", "+time=2", "+tries=1", *opts, rtype, name).stdout
    lines = [line for line in out.splitlines() if not line.startswith(";;")]
    if check and not lines:
        raise AssertionError(f"no answer for {name} {rtype} from {server}")
    return lines


def _dig_full(ns, rtype, name, *opts):
    """dig's whole answer (flags, sections) from BIND."""
    return ns.run("dig", f"@{BIND_ADDR}", "+time=2", "+tries=1", *opts, rtype, name).stdout


@pytest.fixture(scope="module")
def bind_tree(tmp_path_factory, lab):
    """A config tree shaped like Debian's /etc/bind, owned by the test, and the rndc key."""
    root = tmp_path_factory.mktemp("bind_ad-root")
    etc = root / "etc" / "bind"
    etc.mkdir(parents=True)
    (root / "var" / "cache" / "bind").mkdir(parents=True)
    secret = base64.b64encode(os.urandom(32)).decode()
    key = etc / "rndc.key"
    key.write_text(f'key "bind-ad-test" {{ algorithm hmac-sha256; secret "{secret}"; }};\n')
    (etc / "db.root").write_text(
        "$TTL 60\n@ IN SOA a.root. hostmaster.root. (1 60 60 60 60)\n@ IN NS a.root.\n"
        f"a.root. IN A {BIND_ADDR}\n"
        # The world's delegation of the AD domain (to the DC, which is at lab.addr):
        # BIND's own zone overrides it; a forward zone needs it, as on the Internet.
        f"{DOMAIN}. IN NS dc1.{DOMAIN}.\ndc1.{DOMAIN}. IN A {lab.addr}\n"
    )
    (etc / "named.conf").write_text(
        f'include "{etc}/named.conf.options";\n'
        f'include "{etc}/named.conf.local";\n'
        f'include "{key}";\n'
        f"controls {{ inet {lab.addr} port 953 allow {{ {lab.host_addr}; }} "
        '    keys { "bind-ad-test"; }; };\n'
        f'zone "." {{ type primary; file "{etc}/db.root"; }};\n'
    )
    # What a fresh bind9 package ships: empty options and no local zones.
    (etc / "named.conf.options").write_text(
        f'options {{ directory "{root}/var/cache/bind"; listen-on {{ {BIND_ADDR}; }}; '
        "listen-on-v6 { none; }; };\n"
    )
    (etc / "named.conf.local").write_text("")
    before = {p: p.read_bytes() for p in etc.rglob("*") if p.is_file()}
    return {"root": root, "etc": etc, "key": key, "before": before}


def _start_named(lab, bind_tree, log):
    with open(log, "a") as out:
        proc = lab.popen(
            ["unshare", "-m", "sh", "-c",
             "mount -t tmpfs tmpfs /run/named 2>/dev/null || "
             "{ mkdir -p /run/named && mount -t tmpfs tmpfs /run/named; }; "
             f"exec named -g -c {bind_tree['etc']}/named.conf"],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    _wait(lambda: _dig(lab, "SOA", ".", check=False), "named")
    return proc


@pytest.fixture(scope="module")
def named(lab, bind_tree, tmp_path_factory):
    log = tmp_path_factory.mktemp("bind_ad-namedlog") / "named.log"
    state = {"process": _start_named(lab, bind_tree, log), "log": log}
    # A test that stops named starts it again with this.
    state["restart"] = lambda: state.update(process=_start_named(lab, bind_tree, log))
    yield state
    assert state["process"].poll() is None, f"named died: {log.read_text()[-2000:]}"


def _pillar(lab, bind_tree, dc_addr, **extra):
    etc = bind_tree["etc"]
    pillar = {
        "domain": DOMAIN,
        "dcs": [{"name": "dc1", "ipv4": dc_addr}],
        "nameservers": [{"name": "ns1", "ipv4": BIND_ADDR}],
        "clients": ["127.0.0.0/8"],
        "listen_on": [BIND_ADDR],
        "listen_on_v6": ["none"],
        # Global forwarding to a dead address: the AD delegations must not use it.
        "forwarders": [DEAD_FORWARDER],
        "forward": "only",
        "max_cache_ttl": 2,
        "records": [{"name": "printer", "type": "A", "data": "192.0.2.7"}],
        "config_dir": str(etc),
        "zone_dir": str(etc / "zones"),
        "cache_dir": str(bind_tree["root"] / "var" / "cache" / "bind"),
        "rndc": ["rndc", "-s", lab.addr, "-p", "953", "-k", str(bind_tree["key"])],
        "state_dir": str(bind_tree["root"] / "var" / "lib" / "labsalt" / "bind_ad"),
    }
    pillar.update(extra)
    return {"bind_ad": pillar}


def _apply(modules, pillar, test=False, sls="bind_ad.config.file"):
    """state.sls through the real loaders: the state dict, or the list of render errors."""
    return modules.state.sls(sls, pillar=pillar, test=test).raw


@pytest.fixture(scope="module")
def applied(loaders, lab, bind_tree, named, dc):
    """The formula applied once (first apply on a fresh named, as on a new host)."""
    return _apply(loaders.modules, _pillar(lab, bind_tree, dc["addr"]))


# --------------------------------------------------------------------------- tests


def _written(ret):
    """Paths the configured state wrote (or would write)."""
    return {p for k, v in results(ret).items() if "configured" in k for p in v["changes"]}


def _told(ret):
    """What named was told (reconfig, reload) by the reloaded state."""
    return {c for k, v in results(ret).items() if "reloaded" in k for c in v["changes"]}


def test_first_apply_changes_and_reloads(applied, bind_tree):
    assert_ok(applied)
    etc = bind_tree["etc"]
    assert _written(applied) == {
        f"{etc}/named.conf.options",
        f"{etc}/named.conf.local",
        f"{etc}/named.conf.labsalt-ad",
        f"{etc}/named.conf.labsalt-ad-options",
        f"{etc}/zones/db.{DOMAIN}",
    }
    assert "reconfig" in _told(applied), "named was not told about the new zone"
    # The site's files got one line each; the options it already had stay its own.
    options = (etc / "named.conf.options").read_text()
    assert options.replace(
        f'\n\tinclude "{etc}/named.conf.labsalt-ad-options"; /* labsalt bind_ad */', ""
    ) == bind_ad_site_options(bind_tree)
    fragment = (etc / "named.conf.labsalt-ad-options").read_text()
    assert "validate-except" in fragment and "allow-recursion { 127.0.0.0/8; }" in fragment
    assert "listen-on" not in fragment and "directory" not in fragment  # the site's already


def bind_ad_site_options(bind_tree):
    return bind_tree["before"][bind_tree["etc"] / "named.conf.options"].decode()


def test_ad_lookups_resolve_to_the_dc_through_bind(applied, lab, dc):
    # Windows-style: below _msdcs, served by the DC, reached through BIND's delegation.
    assert _dig(lab, "SRV", f"_ldap._tcp.dc._msdcs.{DOMAIN}") == [f"0 100 389 dc1.{DOMAIN}."]
    # Unix-style SRV names in the domain itself, through the CNAMEs.
    for name, port in (("_ldap._tcp", 389), ("_kerberos._tcp", 88), ("_kerberos._udp", 88),
                       ("_gc._tcp", 3268)):  # fmt: skip
        answer = _dig(lab, "SRV", f"{name}.{DOMAIN}")
        assert answer[-1] == f"0 100 {port} dc1.{DOMAIN}.", (name, answer)
    assert _dig(lab, "SRV", f"_kpasswd._udp.{DOMAIN}") == [f"0 100 464 dc1.{DOMAIN}."]
    assert _dig(lab, "SRV", f"_ldap._tcp.Default-First-Site-Name._sites.{DOMAIN}") == [
        f"0 100 389 dc1.{DOMAIN}."
    ]
    assert _dig(lab, "A", f"dc1.{DOMAIN}") == [dc["addr"]]
    # A name outside the AD subtrees is BIND's own (authoritative) answer.
    full = _dig_full(lab, "A", f"printer.{DOMAIN}", "+norec")
    assert re.search(r"flags:[^;]* aa", full) and "192.0.2.7" in full


def test_no_open_resolver(applied, lab):
    # From an address that is not a client, BIND answers its own zone but does not
    # recurse into the delegated subtree.
    out = lab.run(
        "dig", f"@{BIND_ADDR}", "-b", lab.addr, "+time=2", "+tries=1",
        "SRV", f"_ldap._tcp.dc._msdcs.{DOMAIN}",
    ).stdout  # fmt: skip
    assert "ANSWER: 0" in out and not re.search(r"flags:[^;]* ra", out), out


def test_kinit_finds_the_kdc_through_bind(applied, lab, sandbox, tmp_path):
    ccache = tmp_path / "ccache"
    proc = in_namespace(
        lab, sandbox,
        f"KRB5_CONFIG={sandbox}/krb5.conf KRB5CCNAME=FILE:{ccache} "
        f"KRB5_TRACE=/dev/stderr kinit administrator@{REALM}",
        input=ADMIN_PASS + "\n", check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    # The trace shows the KDC was found by the SRV lookup (krb5.conf names no KDC).
    assert f"Sending DNS SRV query for _kerberos._udp.{REALM}." in proc.stderr
    assert f'SRV answer: 0 100 88 "dc1.{DOMAIN}."' in proc.stderr
    klist = lab.run("klist", "-c", f"FILE:{ccache}").stdout
    assert f"krbtgt/{REALM}@{REALM}" in klist


def test_samba_side_and_samba_dnsupdate(applied, modules, lab, bind_tree, dc):
    sandbox = dc["sandbox"]
    pillar = _pillar(lab, bind_tree, dc["addr"], samba={"conf": str(dc["conf"])})
    original = dc["conf"].read_text()
    ret = _apply(modules, pillar, sls="bind_ad.samba.dnsupdate")
    assert changed(assert_ok(ret)), ret
    command = lab.run(
        "testparm", "-s", "--parameter-name=dns update command", dc["conf"], check=False
    ).stdout.strip()
    assert command == "/usr/sbin/samba_dnsupdate --use-samba-tool"
    assert_no_changes(_apply(modules, pillar, sls="bind_ad.samba.dnsupdate"))
    # The DC's registration run, as samba starts it, with BIND as its only resolver.
    proc = in_namespace(
        lab, sandbox, f"{command} --verbose -s {shlex.quote(str(dc['conf']))}", check=False
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    # Every name the DC registers was found, as registered, through BIND.
    # (The second wording is printed when it also rebuilds its cache.)
    assert re.search(
        r"No DNS updates needed|\b0 DNS updates and 0 DNS deletes needed", proc.stdout
    ), proc.stdout[-3000:]
    # Only that one line changed; clean puts the DC's own value back, byte for byte.
    changed_lines = set(dc["conf"].read_text().splitlines()) ^ set(original.splitlines())
    assert changed_lines == {f"\tdns update command = {command}"}, changed_lines
    assert changed(assert_ok(_apply(modules, pillar, sls="bind_ad.samba.clean")))
    assert dc["conf"].read_text() == original


def test_second_apply_changes_nothing(applied, modules, lab, bind_tree, dc):
    assert_no_changes(_apply(modules, _pillar(lab, bind_tree, dc["addr"])))


def test_test_mode_predicts_and_touches_nothing(applied, modules, lab, bind_tree, dc):
    zone = bind_tree["etc"] / "zones" / f"db.{DOMAIN}"
    before = zone.read_text()
    pillar = _pillar(lab, bind_tree, dc["addr"], ttl={"srv": 1800})
    ret = _apply(modules, pillar, test=True)
    states = assert_ok(ret)
    predicted = {p for k, v in states.items() if v["result"] is None for p in v["changes"]}
    assert predicted == {str(zone), "reload"}, states
    assert zone.read_text() == before


def test_broken_zone_is_never_installed(applied, modules, lab, bind_tree, dc):
    zone = bind_tree["etc"] / "zones" / f"db.{DOMAIN}"
    before = zone.read_text()
    # A CNAME next to other data at the same name: only named-checkzone can tell.
    bad = [
        {"name": "printer", "type": "A", "data": "192.0.2.7"},
        {"name": "printer", "type": "CNAME", "data": "dc1"},
    ]
    ret = _apply(modules, _pillar(lab, bind_tree, dc["addr"], records=bad))
    bad_states = failed(ret)
    assert bad_states, ret
    assert any("CNAME and other data" in v["comment"] for v in bad_states.values()), bad_states
    assert not changed(ret)
    assert zone.read_text() == before
    assert _dig(lab, "A", f"printer.{DOMAIN}") == ["192.0.2.7"]


def test_adding_and_removing_a_dc(applied, modules, lab, bind_tree, dc):
    zone = bind_tree["etc"] / "zones" / f"db.{DOMAIN}"
    serial = _dig(lab, "SOA", DOMAIN)[0].split()[2]
    two = [{"name": "dc1", "ipv4": dc["addr"]}, {"name": "dc2", "ipv4": "192.0.2.12"}]
    ret = _apply(modules, _pillar(lab, bind_tree, dc["addr"], dcs=two))
    assert _told(assert_ok(ret)) == {"reload"}
    referral = _dig_full(lab, "NS", f"_msdcs.{DOMAIN}", "+norec")
    assert f"dc2.{DOMAIN}." in referral, referral  # NS
    assert _dig(lab, "A", f"dc2.{DOMAIN}", "+norec") == ["192.0.2.12"]  # its glue
    assert f"0 100 464 dc2.{DOMAIN}." in _dig(lab, "SRV", f"_kpasswd._tcp.{DOMAIN}", "+norec")
    new_serial = _dig(lab, "SOA", DOMAIN)[0].split()[2]
    assert int(new_serial) > int(serial)
    # Back to one DC: dc2 is gone from the delegation, glue and _kpasswd.
    assert_ok(_apply(modules, _pillar(lab, bind_tree, dc["addr"])))
    assert "dc2" not in _dig_full(lab, "NS", f"_msdcs.{DOMAIN}", "+norec")
    assert _dig(lab, "SRV", f"_kpasswd._tcp.{DOMAIN}", "+norec") == [f"0 100 464 dc1.{DOMAIN}."]
    assert "dc2" not in zone.read_text()
    assert _dig(lab, "A", f"dc2.{DOMAIN}", "+norec", check=False) == []
    assert int(_dig(lab, "SOA", DOMAIN)[0].split()[2]) > int(new_serial)


def test_a_failed_reload_is_retried_until_named_serves_the_file(
    applied, modules, lab, bind_tree, dc
):
    zone = bind_tree["etc"] / "zones" / f"db.{DOMAIN}"
    records = [
        {"name": "printer", "type": "A", "data": "192.0.2.7"},
        {"name": "scanner", "type": "A", "data": "192.0.2.8"},
    ]
    # rndc fails once (nothing listens on that port): the new zone file is written...
    broken = ["rndc", "-s", lab.addr, "-p", "954", "-k", str(bind_tree["key"])]
    ret = _apply(modules, _pillar(lab, bind_tree, dc["addr"], records=records, rndc=broken))
    assert [k for k in failed(ret) if "reloaded" in k], ret
    assert "scanner" in zone.read_text()
    # ...but named still serves the old zone.
    assert _dig(lab, "A", f"scanner.{DOMAIN}", "+norec", check=False) == []
    # The next run reloads (before the fix it reported 0 changes and named kept the old zone).
    ret = _apply(modules, _pillar(lab, bind_tree, dc["addr"], records=records))
    assert _told(assert_ok(ret)) == {"reload"}, ret
    assert _dig(lab, "A", f"scanner.{DOMAIN}", "+norec") == ["192.0.2.8"]
    assert_no_changes(_apply(modules, _pillar(lab, bind_tree, dc["addr"], records=records)))
    assert_ok(_apply(modules, _pillar(lab, bind_tree, dc["addr"])))
    assert _dig(lab, "A", f"scanner.{DOMAIN}", "+norec", check=False) == []


def test_a_failed_reconfig_is_retried(applied, modules, lab, bind_tree, dc):
    broken = ["rndc", "-s", lab.addr, "-p", "954", "-k", str(bind_tree["key"])]
    ret = _apply(modules, _pillar(lab, bind_tree, dc["addr"], max_cache_ttl=3, rndc=broken))
    assert [k for k in failed(ret) if "reloaded" in k], ret
    assert "max-cache-ttl 3;" in (bind_tree["etc"] / "named.conf.labsalt-ad-options").read_text()
    # The options file is unchanged on the next run, yet named is told now.
    ret = _apply(modules, _pillar(lab, bind_tree, dc["addr"], max_cache_ttl=3))
    assert _told(assert_ok(ret)) == {"reconfig"}, ret
    assert_no_changes(_apply(modules, _pillar(lab, bind_tree, dc["addr"], max_cache_ttl=3)))
    assert _told(assert_ok(_apply(modules, _pillar(lab, bind_tree, dc["addr"])))) == {"reconfig"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"dcs": [{"name": "dc1"}]}, "dc1.ad.labsalt.test): has no address"),
        ({"dcs": [{"name": "dc9.elsewhere.test", "ipv4": "192.0.2.9"}]}, "must lie inside"),
        (
            {"dcs": [{"name": "dc1", "ipv4": "192.0.2.1"}, {"name": "DC1", "ipv4": "192.0.2.2"}]},
            "listed twice",
        ),
        ({"domain": "LABSALT"}, "is not a DNS domain name"),
        ({"domain": "ad labsalt.test"}, "bind_ad:domain"),
    ],
)
@pytest.mark.usefixtures("applied")
def test_bad_input_is_one_clear_error(modules, lab, bind_tree, change, message):
    etc = bind_tree["etc"]
    before = {p: p.read_text() for p in etc.rglob("*") if p.is_file()}
    dc_addr = lab.addr  # the DC's address, without needing the DC
    ret = _apply(modules, _pillar(lab, bind_tree, dc_addr, **change))
    assert isinstance(ret, list), ret  # the SLS failed to render: no state ran
    assert message in "\n".join(ret), ret
    assert {p: p.read_text() for p in etc.rglob("*") if p.is_file()} == before


def test_forward_mode_sends_the_domain_to_the_dcs(applied, modules, lab, bind_tree, dc):
    ret = _apply(modules, _pillar(lab, bind_tree, dc["addr"], mode="forward"))
    assert "reconfig" in _told(assert_ok(ret))
    local = (bind_tree["etc"] / "named.conf.labsalt-ad").read_text()
    assert "type forward;" in local and dc["addr"] in local
    # Now the DC answers the whole domain: the real SRV records, not BIND's CNAMEs,
    # and BIND's own names are gone.
    full = _dig_full(lab, "SRV", f"_ldap._tcp.{DOMAIN}")
    assert f"0 100 389 dc1.{DOMAIN}." in full and "CNAME" not in full, full
    assert _dig(lab, "A", f"printer.{DOMAIN}", check=False) == []
    # Back to authoritative: the zone file on disk was left alone, so only named.conf changes.
    ret = _apply(modules, _pillar(lab, bind_tree, dc["addr"]))
    assert [p for p in _written(assert_ok(ret)) if "db." in p] == []
    assert _dig(lab, "A", f"printer.{DOMAIN}") == ["192.0.2.7"]


def test_delegating_tcp_and_udp_instead_of_cnames(applied, modules, lab, bind_tree, dc):
    ret = _apply(modules, _pillar(lab, bind_tree, dc["addr"], srv_names="delegate"))
    assert_ok(ret)
    zone = (bind_tree["etc"] / "zones" / f"db.{DOMAIN}").read_text()
    assert "CNAME" not in zone and "_kpasswd" not in zone
    # The DC answers the SRV names itself, _kpasswd included.
    full = _dig_full(lab, "SRV", f"_kerberos._udp.{DOMAIN}")
    assert f"0 100 88 dc1.{DOMAIN}." in full and "CNAME" not in full, full
    assert _dig(lab, "SRV", f"_kpasswd._udp.{DOMAIN}") == [f"0 100 464 dc1.{DOMAIN}."]
    assert_ok(_apply(modules, _pillar(lab, bind_tree, dc["addr"])))
    assert "CNAME" in _dig_full(lab, "SRV", f"_kerberos._udp.{DOMAIN}", "+norec")


@contextlib.contextmanager
def inside(ns):
    """This thread in ``ns``'s network namespace: Salt's loaders run here, and the
    commands they start (dig) and the sockets they open (DC probes) live in the
    namespace with named and the DC, as on a host."""
    libc = ctypes.CDLL(None, use_errno=True)
    clone_newnet = 0x40000000
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(ns.path, os.O_RDONLY)
    try:
        if libc.setns(target, clone_newnet) != 0:
            raise OSError(ctypes.get_errno(), "setns into the test namespace")
        yield
    finally:
        if libc.setns(own, clone_newnet) != 0:
            raise OSError(ctypes.get_errno(), "setns back")
        os.close(own)
        os.close(target)


def _verify(modules, lab, pillar, test=False):
    """bind_ad.verify applied inside the namespace: the verified state's result."""
    with inside(lab):
        ret = _apply(modules, pillar, test=test, sls="bind_ad.verify")
    (state,) = [v for k, v in results(ret).items() if "verified" in k]
    return state


def _ttls(lab, rtype, name, section):
    """TTLs of the records in one section of BIND's answer (no recursion)."""
    out = _dig_full(lab, rtype, name, "+norec")
    lines = out.split(f";; {section} SECTION:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    return {(line.split()[0], int(line.split()[1])) for line in lines}


@pytest.mark.usefixtures("applied")
def test_zone_sends_no_notify_and_ttls_are_3600(modules, lab, bind_tree, dc, named):
    statement = (bind_tree["etc"] / "named.conf.labsalt-ad").read_text()
    assert "    notify explicit;\n" in statement, statement
    # The served TTLs: the referral's NS and the CNAMEs at 3600 by default...
    assert _ttls(lab, "NS", f"_msdcs.{DOMAIN}", "AUTHORITY") == {(f"_msdcs.{DOMAIN}.", 3600)}
    assert _ttls(lab, "CNAME", f"_ldap._tcp.{DOMAIN}", "ANSWER") == {
        (f"_ldap._tcp.{DOMAIN}.", 3600)
    }
    # notify yes (BIND's default, what the issue is about) notifies the DCs for a
    # new serial: the log says so, after some delay.
    log = named["log"]
    ttl = {"delegation": 7200, "cname": 600}
    assert_ok(_apply(modules, _pillar(lab, bind_tree, dc["addr"], ttl=ttl, notify="yes")))
    assert "    notify yes;\n" in (bind_tree["etc"] / "named.conf.labsalt-ad").read_text()
    loud = _dig(lab, "SOA", DOMAIN)[0].split()[2]
    started = time.monotonic()
    _wait(lambda: f"sending notifies (serial {loud})" in log.read_text(), "NOTIFY", 20)
    delay = time.monotonic() - started
    # Back to the default (explicit) with a new serial: no NOTIFY for it, waiting
    # twice as long as the one above took; the TTLs served are bind_ad:ttl's.
    ttl["cname"] = 900
    assert_ok(_apply(modules, _pillar(lab, bind_tree, dc["addr"], ttl=ttl)))
    assert "    notify explicit;\n" in (bind_tree["etc"] / "named.conf.labsalt-ad").read_text()
    quiet = _dig(lab, "SOA", DOMAIN)[0].split()[2]
    assert quiet != loud
    assert _ttls(lab, "NS", f"_msdcs.{DOMAIN}", "AUTHORITY") == {(f"_msdcs.{DOMAIN}.", 7200)}
    assert _ttls(lab, "CNAME", f"_kerberos._udp.{DOMAIN}", "ANSWER") == {
        (f"_kerberos._udp.{DOMAIN}.", 900)
    }
    time.sleep(max(3.0, 2 * delay))
    assert f"sending notifies (serial {quiet})" not in log.read_text()
    # notify: no (YAML's boolean) is accepted too; back to the defaults.
    assert_ok(_apply(modules, _pillar(lab, bind_tree, dc["addr"], notify=False)))
    assert "    notify no;\n" in (bind_tree["etc"] / "named.conf.labsalt-ad").read_text()
    assert_ok(_apply(modules, _pillar(lab, bind_tree, dc["addr"])))
    assert _ttls(lab, "NS", f"_msdcs.{DOMAIN}", "AUTHORITY") == {(f"_msdcs.{DOMAIN}.", 3600)}


def test_verify_passes_through_the_running_named(applied, modules, lab, bind_tree, dc):
    state = _verify(modules, lab, _pillar(lab, bind_tree, dc["addr"]))
    assert state["result"] is True, state
    assert not state["changes"] and not state.get("warnings"), state
    comment = state["comment"]
    assert comment.startswith(f"named at {BIND_ADDR}#53 answers: "), comment
    # The DC answered on 53, so the lookups through the delegation were made too.
    assert "_ldap._tcp.dc._msdcs and _kerberos._udp SRV through the DCs" in comment


def test_verify_in_test_mode_only_says_what_it_would_check(applied, modules, lab, bind_tree, dc):
    state = _verify(modules, lab, _pillar(lab, bind_tree, dc["addr"]), test=True)
    assert state["result"] is None and not state["changes"], state
    assert state["comment"].startswith(f"would check after the run: named answers on {BIND_ADDR}")


def test_verify_names_an_unreachable_dc_in_a_warning(applied, modules, lab, bind_tree, dc):
    # dc2's address is on the namespace's loopback, where nothing listens.
    two = [{"name": "dc1", "ipv4": dc["addr"]}, {"name": "dc2", "ipv4": "127.0.0.98"}]
    pillar = _pillar(lab, bind_tree, dc["addr"], dcs=two)
    assert_ok(_apply(modules, pillar))
    try:
        state = _verify(modules, lab, pillar)
        assert state["result"] is True, state
        assert state["warnings"] == [
            f"DC dc2.{DOMAIN} does not answer on 127.0.0.98 port 53, 127.0.0.98 port 88 (TCP)"
        ], state
        assert f"warning: DC dc2.{DOMAIN} does not answer" in state["comment"]
        # dc1 still answers: the lookups through the delegation were checked.
        assert "through the DCs" in state["comment"]
    finally:
        assert_ok(_apply(modules, _pillar(lab, bind_tree, dc["addr"])))


def test_verify_fails_with_one_line_when_a_record_is_missing(applied, modules, lab, bind_tree, dc):
    zone = bind_tree["etc"] / "zones" / f"db.{DOMAIN}"
    pillar = _pillar(lab, bind_tree, dc["addr"])
    rndc = pillar["bind_ad"]["rndc"]
    broken = "".join(ln for ln in zone.read_text().splitlines(True) if "_kpasswd._udp" not in ln)
    zone.write_text(broken)
    modules.bind_ad.rndc(rndc, "reload", DOMAIN)
    _wait(lambda: not _dig(lab, "SRV", f"_kpasswd._udp.{DOMAIN}", "+norec", check=False),
          "the zone without _kpasswd._udp")  # fmt: skip
    state = _verify(modules, lab, pillar)
    assert state["result"] is False, state
    assert state["comment"] == (
        f"bind_ad verify: _kpasswd._udp.{DOMAIN} SRV: named at {BIND_ADDR}#53 answers NXDOMAIN, "
        f"expected SRV 0 100 464 dc1.{DOMAIN}."
    ), state
    assert zone.read_text() == broken  # verify undoes nothing
    # The next run writes the zone again, and then it verifies.
    assert_ok(_apply(modules, pillar))
    assert _verify(modules, lab, pillar)["result"] is True


@pytest.mark.usefixtures("applied")
def test_verify_fails_with_one_line_when_named_is_stopped(modules, lab, bind_tree, dc, named):
    pillar = _pillar(lab, bind_tree, dc["addr"])
    named["process"].terminate()
    named["process"].wait(timeout=30)
    try:
        state = _verify(modules, lab, pillar)
        assert state["result"] is False, state
        comment = state["comment"]
        assert "\n" not in comment, comment
        assert comment.startswith(
            f"bind_ad verify: named at {BIND_ADDR}#53 does not answer {DOMAIN} SOA: "
        ), comment
        # Turned off in pillar, the same run reports nothing wrong and queries nothing.
        off = _pillar(lab, bind_tree, dc["addr"], verify={"enabled": False})
        state = _verify(modules, lab, off)
        assert state["result"] is True and "bind_ad:verify:enabled is false" in state["comment"]
    finally:
        named["restart"]()
    assert _verify(modules, lab, pillar)["result"] is True


def test_signed_zone_keeps_the_delegations_working(applied, modules, lab, bind_tree, dc):
    # Last in this module: once signed, the zone stays signed for this named.
    ret = _apply(modules, _pillar(lab, bind_tree, dc["addr"], dnssec_policy="default"))
    assert_ok(ret)
    _wait(lambda: "RRSIG" in _dig_full(lab, "A", f"printer.{DOMAIN}", "+dnssec", "+norec"),
          "the signed zone")  # fmt: skip
    # The delegation has no DS (insecure), and lookups below it still resolve.
    assert _dig(lab, "DS", f"_msdcs.{DOMAIN}", "+norec", check=False) == []
    assert _dig(lab, "SRV", f"_ldap._tcp.dc._msdcs.{DOMAIN}") == [f"0 100 389 dc1.{DOMAIN}."]
    assert _dig(lab, "SRV", f"_kerberos._udp.{DOMAIN}")[-1] == f"0 100 88 dc1.{DOMAIN}."


def test_clean_gives_the_site_files_back(applied, modules, lab, bind_tree, dc):
    # After the signed zone too: what BIND wrote next to the zone file goes as well.
    pillar = _pillar(lab, bind_tree, dc["addr"], dnssec_policy="default")
    ret = _apply(modules, pillar, sls="bind_ad.config.clean")
    assert changed(assert_ok(ret)), ret
    etc = bind_tree["etc"]
    now = {p: p.read_bytes() for p in etc.rglob("*") if p.is_file()}
    assert now == bind_tree["before"]
    assert not (etc / "zones").exists()  # the formula created it
    # named was told: the AD zone is gone, the root zone (the site's) is still served.
    assert _dig(lab, "A", f"printer.{DOMAIN}", "+norec", check=False) == []
    assert _dig(lab, "SOA", ".", "+norec")
    assert_no_changes(_apply(modules, pillar, sls="bind_ad.config.clean"))
