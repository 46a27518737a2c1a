"""
coturn for real: the formula's config and firewall states render through
``labsalt apply`` (paths pointed into a temp dir), the real turnserver runs with
that config in a network namespace with the rendered nftables table loaded, and
Debian's turnutils_uclient, authenticating with the shared secret, gets a relay
and passes data to a turnutils_peer.  A wrong secret is refused, and so is a
relay to a denied private range.

The server's own address (its listening address in the namespace, inside the
denied 198.18.0.0/15) is allowed exactly: a client relays to a peer on it and
two clients relay to each other's relayed address (coturn/coturn#584), while
the rest of the range stays denied.  The verify step (``coturn.verify``) passes
against the live server, and fails with one line when the server runs with
another secret than the pillar's and when turnserver is stopped.
"""

import contextlib
import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.support import netns

SECRET = "it-TurnSecret-4711-abcdef"
PEER_PORT = 3480

pytestmark = [
    pytest.mark.skipif(
        not (
            shutil.which("turnserver") and shutil.which("turnutils_uclient") and shutil.which("nft")
        ),
        reason="coturn / nftables not installed (scripts/install-deps bbb)",
    ),
    # labsalt's generated Salt config (and Salt's logs) in a temp dir, not ~/.cache
    pytest.mark.usefixtures("private_salt_config"),
]


def labsalt(*args, check=True):
    proc = subprocess.run(
        [sys.executable, "-m", "labsalt", *args], capture_output=True, text=True, check=False
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"labsalt {' '.join(args)}: {proc.stdout}\n{proc.stderr}")
    return proc


def apply(pillar_dir, *states, test=False):
    args = ["apply", *states, "--pillar", str(pillar_dir), "--out", "json", "-q"]
    proc = labsalt(*args, *(["--test"] if test else []), check=False)
    return proc, json.loads(proc.stdout)["local"] if proc.stdout.startswith("{") else proc.stdout


def start_turnserver(ns, tmp):
    """The real turnserver with ``tmp``'s rendered config in ``ns``; returns once it listens."""
    log = tmp / "turnserver.log"
    server = ns.popen(
        # -v logs each allocation; pid file and user db stay in the temp dir
        ["turnserver", "-c", tmp / "turnserver.conf", "--log-file", "stdout", "-v"]
        + ["--pidfile", tmp / "turnserver.pid", "--db", tmp / "turndb"],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 20
    while ":3478 " not in ns.run("ss", "-lnu").stdout:
        assert server.poll() is None, log.read_text() if log.exists() else "no log"
        assert time.monotonic() < deadline, "turnserver does not listen on 3478/udp"
        time.sleep(0.1)
    return log


def write_pillar(path, coturn):
    path.mkdir(exist_ok=True)
    (path / "top.sls").write_text("base:\n  '*':\n    - coturn\n")
    (path / "coturn.sls").write_text(yaml.safe_dump({"coturn": coturn}))
    return path


@pytest.fixture(scope="module")
def turn(scratch):
    """The TURN namespace, its rendered config, the running turnserver and a peer."""
    tmp = scratch("coturn")
    with netns.namespace("turn") as ns:
        pillar = {
            "realm": "turn.lab.test",
            "static_auth_secret": SECRET,
            "listening_ips": [ns.addr],
            "config_file": str(tmp / "turnserver.conf"),
            "checker": str(tmp / "turnserver-check"),
            "state_dir": str(tmp / "state"),
            "min_port": 50000,
            "max_port": 50100,
            # the peer on this machine's end of the veth: an exception to the
            # denied 198.18.0.0/15 (like a lab media server would be)
            "allowed_peer_ips": [ns.host_addr],
            "firewall": {"rules_file": str(tmp / "coturn.nft"), "table": "lt_coturn"},
        }
        pillar_dir = write_pillar(tmp / "pillar", pillar)
        proc, ret = apply(pillar_dir, "coturn.config.file", "coturn.firewall.rules")
        assert proc.returncode == 0, ret
        ns.run("nft", "-f", tmp / "coturn.nft")
        log = start_turnserver(ns, tmp)
        peer = subprocess.Popen(
            ["turnutils_peer", "-L", ns.host_addr, "-p", str(PEER_PORT)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            yield {"ns": ns, "tmp": tmp, "pillar_dir": pillar_dir, "ret": ret, "log": log}
        finally:
            peer.terminate()
            peer.wait()


def uclient(ns, secret, peer, *extra):
    """turnutils_uclient from this machine through the TURN server to ``peer``."""
    cmd = ["turnutils_uclient", "-u", "bbb", "-W", secret, "-e", peer, "-r", str(PEER_PORT)]
    cmd += ["-n", "10", "-l", "120", "-L", ns.host_addr, *extra, ns.addr]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)


def totals(out):
    """(sent, received) messages over all of uclient's sessions."""
    found = re.findall(r"start_mclient: tot_send_msgs=(\d+), tot_recv_msgs=(\d+)", out)
    return tuple(int(n) for n in found[-1]) if found else (0, 0)


def test_relay_allocated_and_data_passes(turn):
    ns = turn["ns"]
    proc = uclient(ns, SECRET, ns.host_addr)
    out = proc.stdout + proc.stderr
    sent, received = totals(out)
    assert sent == received == 20, out  # two sessions of 10 messages, echoed by the peer
    assert "Total lost packets 0 (0.000000%)" in out, out
    log = turn["log"].read_text()
    assert "ALLOCATE processed, success" in log, log[-2000:]


def test_relay_over_tcp_allocated(turn):
    ns = turn["ns"]
    proc = uclient(ns, SECRET, ns.host_addr, "-t")
    out = proc.stdout + proc.stderr
    assert totals(out)[1] > 0, out
    assert "Total lost packets 0 (0.000000%)" in out, out


def test_wrong_secret_refused(turn):
    ns = turn["ns"]
    proc = uclient(ns, "not-the-secret-0000", ns.host_addr)
    out = proc.stdout + proc.stderr
    assert "Cannot complete Allocation" in out, out
    assert totals(out) == (0, 0), out
    assert "check_stun_auth" in turn["log"].read_text()


@pytest.mark.parametrize("peer", ["10.255.255.1", "198.19.255.250", "127.0.0.1"])
def test_relay_to_denied_range_refused(turn, peer):
    proc = uclient(turn["ns"], SECRET, peer)
    out = proc.stdout + proc.stderr
    assert "403" in out and "Forbidden IP" in out, out


def test_firewall_drops_other_ports(turn):
    """Only SSH and the TURN ports pass the rendered table: a listener elsewhere is cut off."""
    ns = turn["ns"]
    listener = ns.popen(["python3", "-m", "http.server", "--bind", ns.addr, "8089"])
    try:
        time.sleep(0.5)
        probe = subprocess.run(
            ["python3", "-c", f"import socket; socket.create_connection(('{ns.addr}', 8089), 2)"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert probe.returncode != 0 and "timed out" in probe.stderr, probe.stderr
    finally:
        listener.terminate()
    table = ns.run("nft", "list", "table", "inet", "lt_coturn").stdout
    assert "policy drop" in table
    assert "tcp dport 22 accept" in table
    assert "udp dport 50000-50100 accept" in table


def test_config_is_idempotent_and_secret_never_shown(turn):
    proc, ret = apply(turn["pillar_dir"], "coturn.config.file", "coturn.firewall.rules")
    assert proc.returncode == 0
    assert not [k for k, v in ret.items() if v["changes"]], ret
    assert SECRET not in json.dumps(turn["ret"]) + json.dumps(ret) + proc.stderr
    proc, ret = apply(turn["pillar_dir"], "coturn.config.file", test=True)
    assert all(v["result"] is True for v in ret.values()), ret
    conf = (turn["tmp"] / "turnserver.conf").read_text()
    assert f"static-auth-secret={SECRET}" in conf
    assert "denied-peer-ip=10.0.0.0-10.255.255.255" in conf


def test_missing_secret_refused_before_anything(scratch):
    tmp_path = scratch("nosecret")
    target = tmp_path / "turnserver.conf"
    pillar_dir = write_pillar(
        tmp_path / "pillar",
        {"realm": "turn.lab.test", "config_file": str(target), "checker": str(tmp_path / "c")},
    )
    proc, _ = apply(pillar_dir, "coturn")
    # The CLI's pre-check refuses before Salt renders: one line on stderr, exit 2.
    assert proc.returncode == 2, proc
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("labsalt: coturn:static_auth_secret: "), lines
    assert not target.exists() and not (tmp_path / "c").exists()


def test_broken_config_leaves_live_file(turn, scratch):
    """A value the schema accepts but turnserver cannot use fails the checker; live file stays."""
    tmp_path = scratch("broken")
    live = turn["tmp"] / "turnserver.conf"
    before = live.read_text()
    pillar = yaml.safe_load((turn["pillar_dir"] / "coturn.sls").read_text())["coturn"]
    pillar["tls"] = {"cert": str(tmp_path / "no-cert.pem"), "pkey": str(tmp_path / "no-key.pem")}
    proc, ret = apply(write_pillar(tmp_path / "p", pillar), "coturn.config.file")
    assert proc.returncode != 0
    assert "no-cert.pem does not exist" in json.dumps(ret)
    assert live.read_text() == before
    assert SECRET not in json.dumps(ret)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("denied_peer_ips", ["10.0.0.0-10.255.255.999"], "coturn:denied_peer_ips:0: "),
        (
            "external_ip",
            "198.51.100.7\nallowed-peer-ip=10.0.0.0-10.255.255.255",
            "coturn:external_ip: ",
        ),
        ("external_ip", "1.2.3.300", "coturn:external_ip: '1.2.3.300' is not an IP address"),
        ("min_port", 60000, "coturn:min_port: 60000 is above coturn:max_port 50100"),
    ],
)
def test_bad_value_refused_before_anything(turn, scratch, key, value, message):
    """The schema refuses it with one line naming the key; the live file stays."""
    tmp_path = scratch("refused")
    live = turn["tmp"] / "turnserver.conf"
    before = live.read_text()
    pillar = yaml.safe_load((turn["pillar_dir"] / "coturn.sls").read_text())["coturn"]
    pillar[key] = value
    proc, ret = apply(write_pillar(tmp_path / "p", pillar), "coturn.config.file")
    assert proc.returncode != 0
    assert message in json.dumps(ret) + proc.stderr
    assert live.read_text() == before
    assert "allowed-peer-ip=10.0.0.0" not in live.read_text()


# --------------------------------------------------------------------------- own address (issue 18)


def state(ret, state_id):
    found = [v for v in ret.values() if v["__id__"] == state_id]
    assert len(found) == 1, ret
    return found[0]


@contextlib.contextmanager
def peer_on(ns, addr):
    """A turnutils_peer (UDP echo) inside ``ns`` on ``addr``, once it listens."""
    proc = ns.popen(["turnutils_peer", "-L", addr, "-p", str(PEER_PORT)])
    deadline = time.monotonic() + 10
    while f"{addr}:{PEER_PORT} " not in ns.run("ss", "-lnu").stdout:
        assert proc.poll() is None, "turnutils_peer exited"
        assert time.monotonic() < deadline, "turnutils_peer does not listen"
        time.sleep(0.1)
    try:
        yield
    finally:
        proc.terminate()
        proc.wait()


def test_own_address_in_denied_range_is_allowed_exactly(turn):
    """The listening (relay) address lies in the denied 198.18.0.0/15: one exception, said so."""
    ns = turn["ns"]
    conf = (turn["tmp"] / "turnserver.conf").read_text()
    assert f"\nallowed-peer-ip={ns.addr}\n" in conf
    assert "denied-peer-ip=198.18.0.0-198.19.255.255" in conf
    comment = state(turn["ret"], "coturn-own-addresses")["comment"]
    assert f"allowed-peer-ip for the server's own address {ns.addr} " in comment
    assert "in denied 198.18.0.0-198.19.255.255" in comment and "coturn/coturn#584" in comment


def test_client_relays_to_the_servers_own_address(turn):
    ns = turn["ns"]
    with peer_on(ns, ns.addr):
        proc = uclient(ns, SECRET, ns.addr)
    out = proc.stdout + proc.stderr
    assert totals(out) == (20, 20), out
    assert "Forbidden IP" not in out, out


def test_clients_relay_to_each_other_through_the_server(turn):
    """coturn#584: client to client, each sending to the other's relayed (the server's) address."""
    ns = turn["ns"]
    proc = uclient(ns, SECRET, ns.addr, "-y")
    out = proc.stdout + proc.stderr
    assert "Forbidden IP" not in out, out
    sent, received = totals(out)
    assert sent == received > 0, out


def test_rest_of_the_range_around_the_own_address_stays_denied(turn):
    ns = turn["ns"]
    own = ipaddress.ip_address(ns.addr)
    neighbour = str(own + 1 if str(own + 1) != ns.host_addr else own - 1)
    # the host's end of the link is allowed by the fixture's pillar: never a probe
    far = [a for a in ("198.18.0.1", "198.19.0.1", "198.19.255.250") if a != ns.host_addr]
    for peer in (neighbour, *far[:2]):
        proc = uclient(ns, SECRET, peer)
        out = proc.stdout + proc.stderr
        assert "403" in out and "Forbidden IP" in out, (peer, out)


# --------------------------------------------------------------------------- verify (issue 18)


def secret_free(proc, ret, config_dir=None):
    shown = json.dumps(ret) + proc.stdout + proc.stderr
    if config_dir:  # Salt's own log of the run
        logs = [p for p in config_dir.rglob("*log*") if p.is_file()]
        assert logs, f"no Salt log under {config_dir}"
        shown += "".join(p.read_text(errors="replace") for p in logs)
    return SECRET not in shown


def test_verify_passes_on_the_live_server(turn):
    log_before = turn["log"].read_text().count("ALLOCATE processed, success")
    proc, ret = apply(turn["pillar_dir"], "coturn.verify")
    verified = state(ret, "coturn-verified")
    assert proc.returncode == 0 and verified["result"] is True, verified
    assert verified["changes"] == {}
    assert f"got a relay ({turn['ns'].addr}:50" in verified["comment"]
    # a documentation range is denied by default: probed there, never a lab host
    assert (
        "a peer in a denied range (192.0.2.1, 192.0.2.0-192.0.2.255) is refused"
        in (verified["comment"])
    )
    log = turn["log"].read_text()
    assert log.count("ALLOCATE processed, success") > log_before
    assert "CHANNEL_BIND processed, error 403: Forbidden IP" in log
    assert secret_free(proc, ret, Path(os.environ["LABSALT_CONFIG_DIR"]))


def test_verify_runs_nothing_in_test_mode(turn):
    before = turn["log"].read_text().count("ALLOCATE")
    proc, ret = apply(turn["pillar_dir"], "coturn.verify", test=True)
    verified = state(ret, "coturn-verified")
    assert verified["result"] is True and verified["changes"] == {}, verified
    assert verified["comment"].startswith("would check after the run: turnutils_uclient ")
    assert turn["log"].read_text().count("ALLOCATE") == before


def test_verify_fails_when_the_server_has_another_secret(turn, scratch):
    """The pillar's secret and the running server's differ: one line, nothing undone."""
    live = turn["tmp"] / "turnserver.conf"
    before = live.read_text()
    pillar = yaml.safe_load((turn["pillar_dir"] / "coturn.sls").read_text())["coturn"]
    pillar["static_auth_secret"] = "another-Secret-of-the-pillar-99"
    proc, ret = apply(write_pillar(scratch("othersecret") / "p", pillar), "coturn.verify")
    verified = state(ret, "coturn-verified")
    assert proc.returncode != 0 and verified["result"] is False, verified
    assert "\n" not in verified["comment"]
    assert verified["comment"] == (
        f"coturn verify: the TURN server at {turn['ns'].addr}:3478/udp refuses credentials "
        "made from the pillar's static_auth_secret (Cannot complete Allocation): does it "
        "run with another secret?"
    )
    assert live.read_text() == before
    assert "another-Secret-of-the-pillar-99" not in json.dumps(ret) + proc.stderr
    assert secret_free(proc, ret)


def test_verify_can_be_turned_off(turn, scratch):
    pillar = yaml.safe_load((turn["pillar_dir"] / "coturn.sls").read_text())["coturn"]
    pillar["static_auth_secret"] = "another-Secret-of-the-pillar-99"
    pillar["verify"] = {"enabled": False}
    proc, ret = apply(write_pillar(scratch("verifyoff") / "p", pillar), "coturn.verify")
    verified = state(ret, "coturn-verified")
    assert proc.returncode == 0 and verified["result"] is True, verified
    assert verified["comment"] == "not verified: coturn:verify:enabled is false"


@pytest.fixture
def own_server(scratch):
    """A second TURN server of its own (no firewall), for tests that stop or reconfigure it."""

    @contextlib.contextmanager
    def start(**overrides):
        tmp = scratch("own")
        with netns.namespace("turn") as ns:
            pillar = {
                "realm": "turn.lab.test",
                "static_auth_secret": SECRET,
                "listening_ips": [ns.addr],
                "config_file": str(tmp / "turnserver.conf"),
                "checker": str(tmp / "turnserver-check"),
                "state_dir": str(tmp / "state"),
                "min_port": 50000,
                "max_port": 50100,
                "firewall": {"enabled": False},
                **overrides,
            }
            pillar_dir = write_pillar(tmp / "pillar", pillar)
            proc, ret = apply(pillar_dir, "coturn.config.file")
            assert proc.returncode == 0, ret
            yield ns, pillar_dir, ret, start_turnserver(ns, tmp)

    return start


def test_verify_fails_when_coturn_is_stopped(own_server):
    with own_server() as (ns, pillar_dir, _, _):
        proc, ret = apply(pillar_dir, "coturn.verify")
        assert state(ret, "coturn-verified")["result"] is True, ret
        for server in ns.procs:
            server.terminate()
            server.wait()
        proc, ret = apply(pillar_dir, "coturn.verify")
    verified = state(ret, "coturn-verified")
    assert proc.returncode != 0 and verified["result"] is False, verified
    assert verified["comment"] == (
        f"coturn verify: no TURN server answers at {ns.addr}:3478/udp (connection refused): "
        "is coturn running?"
    )
    assert secret_free(proc, ret)


def test_own_address_stays_denied_when_not_allowed(own_server):
    """allow_own_addresses: false keeps the own address denied, and the state says what breaks."""
    with own_server(allow_own_addresses=False) as (ns, pillar_dir, ret, _):
        conf = (pillar_dir.parent / "turnserver.conf").read_text()
        assert "allowed-peer-ip" not in conf
        comment = state(ret, "coturn-own-addresses")["comment"]
        assert comment == (
            f"coturn:allow_own_addresses is false: the server's own address {ns.addr} "
            "(in denied 198.18.0.0-198.19.255.255) stays denied, so clients relaying to each "
            "other through this server fail"
        )
        proc = uclient(ns, SECRET, ns.addr, "-y")
        out = proc.stdout + proc.stderr
        assert "403" in out and "Forbidden IP" in out, out
