"""
coturn for real: the formula's config and firewall states render through
``labsalt apply`` (paths pointed into a temp dir), the real turnserver runs with
that config in a network namespace with the rendered nftables table loaded, and
Debian's turnutils_uclient, authenticating with the shared secret, gets a relay
and passes data to a turnutils_peer.  A wrong secret is refused, and so is a
relay to a denied private range.
"""

import json
import re
import shutil
import subprocess
import sys
import time

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
        log = tmp / "turnserver.log"
        server = ns.popen(
            # -v logs each allocation; pid file and user db stay in the temp dir
            ["turnserver", "-c", tmp / "turnserver.conf", "--log-file", "stdout", "-v"]
            + ["--pidfile", tmp / "turnserver.pid", "--db", tmp / "turndb"],
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
        )
        peer = subprocess.Popen(
            ["turnutils_peer", "-L", ns.host_addr, "-p", str(PEER_PORT)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            for _ in range(50):
                if "3478" in ns.run("ss", "-lnu").stdout:
                    break
                time.sleep(0.1)
            assert server.poll() is None, log.read_text() if log.exists() else "no log"
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
