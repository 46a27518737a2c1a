"""
vbox_egress applied for real, entirely inside a network namespace of its own.

Salt (``labsalt apply``), the nftables/iptables rules, the wrapper and the
clients all run in one namespace (entered with ``nsenter --net`` so the host's
/sys/fs/cgroup mounts stay visible, which ``ip netns exec`` would hide), so the
rules never touch this machine's own firewall.  Servers listen on two addresses
inside it: the namespace's veth address (allowed on one port) and 127.0.0.2
(not allowed).  The cgroup has a unique name and is removed afterwards.
"""

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support import netns
from tests.support.states import assert_no_changes, assert_ok, changed

LABSALT = Path(sys.executable).parent / "labsalt"
ALLOWED_PORT, OTHER_PORT, INBOUND_PORT = 8080, 8081, 8090

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="cgroups, namespaces and nft need root"),
]

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


def _in_ns(ns, *cmd, check=True, **kwargs):
    """Run in the namespace's network stack but this machine's mounts (cgroup fs)."""
    return netns.sh("nsenter", f"--net={ns.path}", "--", *map(str, cmd), check=check, **kwargs)


@pytest.fixture(scope="module")
def ns():
    with netns.namespace("vbox") as space:
        for addr, port in (
            (space.addr, ALLOWED_PORT),
            (space.addr, OTHER_PORT),
            ("127.0.0.2", ALLOWED_PORT),
        ):
            space.popen([sys.executable, "-c", SERVER, addr, port])
        _in_ns(space, sys.executable, "-c", "import time; time.sleep(0.5)")
        yield space


@pytest.fixture(scope="module")
def setup(ns, tmp_path_factory):
    """Pillar tree, unique cgroup and table names; the cgroup is removed at the end."""
    root = tmp_path_factory.mktemp("vbox-egress")
    tag = f"lt-vbox-{os.getpid()}"
    params = {
        "cgroup": tag,
        "mode": "cgroup2",
        "table": f"lt_vbox_{os.getpid()}",
        "wrapper": str(root / "bin" / "vbox-egress-run"),
        "state_dir": str(root / "state"),
        "allow": [{"address": ns.addr, "ports": [ALLOWED_PORT]}],
    }
    pillar = root / "pillar"
    pillar.mkdir()
    (pillar / "top.sls").write_text("base:\n  '*':\n    - vbox_egress\n")
    (pillar / "vbox_egress.sls").write_text(json.dumps({"vbox_egress": params}))
    yield {"root": root, "pillar": pillar, "params": params}
    for base in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup"):
        leftover = Path(base) / tag
        if leftover.is_dir():
            leftover.rmdir()


def _apply(ns, setup, state="vbox_egress", test=False, pillar_data=None):
    cmd = [LABSALT, "apply", state, "--pillar", setup["pillar"], "--out", "json", "-q"]
    if test:
        cmd.append("--test")
    if pillar_data:
        cmd += ["--pillar-data", json.dumps(pillar_data)]
    env = {**os.environ, "XDG_CACHE_HOME": str(setup["root"] / "cache")}
    proc = _in_ns(ns, *cmd, check=False, env=env)
    try:
        return json.loads(proc.stdout)["local"]
    except (json.JSONDecodeError, KeyError):
        raise AssertionError(f"labsalt apply failed: {proc.stdout}\n{proc.stderr}") from None


def _connect(ns, setup, addr, port, wrapped):
    cmd = [sys.executable, "-c", CLIENT, addr, port]
    if wrapped:
        cmd = [setup["params"]["wrapper"], *cmd]
    proc = _in_ns(ns, *cmd, check=False)
    return proc.stdout.strip() or proc.stderr.strip()


def _table(ns, setup):
    proc = _in_ns(ns, "nft", "list", "table", "inet", setup["params"]["table"], check=False)
    return proc.stdout if proc.returncode == 0 else None


def test_apply_filters_only_wrapped_processes(ns, setup):
    cgroup_dir = Path("/sys/fs/cgroup/unified") / setup["params"]["cgroup"]
    if not Path("/sys/fs/cgroup/unified/cgroup.procs").exists():
        cgroup_dir = Path("/sys/fs/cgroup") / setup["params"]["cgroup"]

    predicted = assert_ok(_apply(ns, setup, test=True))
    assert any("vbox-egress-filter" in key for key in changed(predicted))
    assert not cgroup_dir.exists() and _table(ns, setup) is None, "test=True changed something"

    assert changed(assert_ok(_apply(ns, setup)))
    assert cgroup_dir.is_dir()
    assert _table(ns, setup) is not None
    host_tables = netns.sh("nft", "list", "tables").stdout
    assert setup["params"]["table"] not in host_tables, "rules leaked out of the namespace"

    # Through the wrapper: only the allowed address and port.
    assert _connect(ns, setup, ns.addr, ALLOWED_PORT, wrapped=True) == "reached"
    assert _connect(ns, setup, "127.0.0.2", ALLOWED_PORT, wrapped=True) == "ConnectionRefusedError"
    assert _connect(ns, setup, ns.addr, OTHER_PORT, wrapped=True) == "ConnectionRefusedError"
    # The same client without the wrapper reaches everything.
    assert _connect(ns, setup, ns.addr, ALLOWED_PORT, wrapped=False) == "reached"
    assert _connect(ns, setup, "127.0.0.2", ALLOWED_PORT, wrapped=False) == "reached"
    assert _connect(ns, setup, ns.addr, OTHER_PORT, wrapped=False) == "reached"
    assert cgroup_dir.is_dir() and not (cgroup_dir / "cgroup.procs").read_text().strip()


def test_reapply_changes_nothing_and_keeps_one_copy(ns, setup):
    before = _table(ns, setup)
    assert_no_changes(_apply(ns, setup))
    after = _table(ns, setup)
    assert after == before
    assert after.count("socket cgroupv2") == 1
    assert after.count(f"tcp dport {ALLOWED_PORT} accept") == 1


def test_replies_to_inbound_connections_pass(ns, setup):
    """A server in the cgroup (a NAT port forward, VRDE) answers clients it may not call."""
    wrapped = subprocess.Popen(  # noqa: S603
        ["nsenter", f"--net={ns.path}", "--", setup["params"]["wrapper"],
         sys.executable, "-c", SERVER, "127.0.0.2", str(INBOUND_PORT)],
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while _connect(ns, setup, "127.0.0.2", INBOUND_PORT, wrapped=False) != "reached":
            assert wrapped.poll() is None, "wrapped server died"
            assert time.monotonic() < deadline, "the wrapped server's replies are rejected"
            time.sleep(0.2)
        # ...while the same process may still not open a connection to that address.
        assert _connect(ns, setup, "127.0.0.2", INBOUND_PORT, wrapped=True) == (
            "ConnectionRefusedError"
        )
    finally:
        wrapped.terminate()
        wrapped.wait(timeout=5)


def test_bad_destination_is_refused_on_a_host_without_rules(tmp_path):
    """The plan validates on every host, not only where rules exist to compare with."""
    render = _render_module()
    for bad in ("10.0.0.300", "192.0.2.10; touch /tmp/labsalt-pwned"):
        with pytest.raises(Exception, match="vbox_egress:allow:0:address"):
            render.plan(f"lt-fresh-{os.getpid()}", [{"address": bad}], mode="cgroup2")
    assert not Path(f"/sys/fs/cgroup/lt-fresh-{os.getpid()}").exists()


def test_shell_payload_in_pillar_is_one_error_line(ns, setup):
    pwned = setup["root"] / "pwned"
    params = {
        **setup["params"],
        "cgroup": f"lt-fresh-{os.getpid()}",
        "allow": [{"address": f"192.0.2.10; touch {pwned}"}],
    }
    cmd = [LABSALT, "apply", "vbox_egress", "--test", "--pillar", setup["pillar"]]
    cmd += ["--pillar-data", json.dumps({"vbox_egress": params})]
    proc = _in_ns(ns, *cmd, check=False)
    assert proc.returncode != 0
    assert "vbox_egress:allow:0:address" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not pwned.exists()


def test_refusal_is_one_line_not_a_traceback(ns, setup):
    """clean while a process runs in the cgroup: result False, one line."""
    busy = subprocess.Popen(  # noqa: S603
        ["nsenter", f"--net={ns.path}", "--", setup["params"]["wrapper"], "sleep", "60"],
    )  # fmt: skip
    try:
        time.sleep(0.5)
        ret = _apply(ns, setup, state="vbox_egress.clean")
        (state,) = [v for k, v in ret.items() if "vbox-egress-filter-absent" in k]
        assert state["result"] is False
        assert "still has processes" in state["comment"]
        assert "\n" not in state["comment"] and "Traceback" not in state["comment"]
        assert _table(ns, setup) is not None
    finally:
        busy.terminate()
        busy.wait(timeout=5)
    assert changed(assert_ok(_apply(ns, setup)))  # the wrapper comes back


def test_changed_pillar_replaces_rules(ns, setup):
    params = {**setup["params"], "allow": [{"address": "127.0.0.0/8"}]}
    ret = assert_ok(_apply(ns, setup, pillar_data={"vbox_egress": params}))
    assert changed(ret)
    assert _connect(ns, setup, "127.0.0.2", ALLOWED_PORT, wrapped=True) == "reached"
    assert _connect(ns, setup, ns.addr, ALLOWED_PORT, wrapped=True) == "ConnectionRefusedError"
    assert changed(assert_ok(_apply(ns, setup)))
    assert _table(ns, setup).count("socket cgroupv2") == 1


def test_wrapper_refuses_to_run_without_the_filter(ns, setup):
    _in_ns(ns, "nft", "delete", "table", "inet", setup["params"]["table"])
    proc = _in_ns(ns, setup["params"]["wrapper"], "true", check=False)
    assert proc.returncode == 1 and "is not loaded" in proc.stderr
    assert changed(assert_ok(_apply(ns, setup)))


def test_bad_pillar_is_refused_before_anything_changes(ns, setup):
    before = _table(ns, setup)
    params = {**setup["params"], "allow": [{"address": "198.18.0.300", "ports": [ALLOWED_PORT]}]}
    cmd = [LABSALT, "apply", "vbox_egress", "--pillar", setup["pillar"], "--out", "json"]
    cmd += ["--pillar-data", json.dumps({"vbox_egress": params})]
    env = {**os.environ, "XDG_CACHE_HOME": str(setup["root"] / "cache")}
    proc = _in_ns(ns, *cmd, check=False, env=env)
    # The CLI's pre-check refuses before Salt renders: one line on stderr, exit 2.
    assert proc.returncode == 2, proc
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("labsalt: vbox_egress:allow:0:address: '198.18.0.300'"), lines
    assert _table(ns, setup) == before


def test_clean_removes_rules_and_cgroup(ns, setup):
    ret = assert_ok(_apply(ns, setup, state="vbox_egress.clean"))
    assert changed(ret)
    assert _table(ns, setup) is None
    assert not Path(setup["params"]["wrapper"]).exists()
    for base in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup"):
        assert not (Path(base) / setup["params"]["cgroup"]).exists()
    assert_no_changes(_apply(ns, setup, state="vbox_egress.clean"))


@pytest.fixture
def net_cls(ns):
    """A net_cls (cgroup v1) hierarchy for the fallback, when the kernel has it unmounted."""
    with open("/proc/cgroups") as handle:
        rows = {line.split()[0]: line.split() for line in handle if not line.startswith("#")}
    if "net_cls" not in rows:
        pytest.skip("the kernel has no net_cls controller")
    mounts = Path("/proc/self/mounts").read_text()
    if " cgroup " in mounts and "net_cls" in mounts:
        pytest.skip("net_cls is already mounted by the host: not touching its hierarchy")
    where = Path(f"/run/labsalt-tests/netcls-{os.getpid()}")
    where.mkdir(parents=True, exist_ok=True)
    netns.sh("mount", "-t", "cgroup", "-o", "net_cls", "labsalt-test-netcls", str(where))
    try:
        yield where
    finally:
        for child in where.iterdir():
            if child.is_dir():
                child.rmdir()
        netns.sh("umount", str(where))
        where.rmdir()


def test_cgroup_v1_fallback_with_iptables(ns, setup, net_cls):
    params = {**setup["params"], "mode": "cgroup1"}
    data = {"vbox_egress": params}
    assert changed(assert_ok(_apply(ns, setup, pillar_data=data)))
    group = net_cls / params["cgroup"]
    assert int((group / "net_cls.classid").read_text()) == 0x00100001
    chain = _in_ns(ns, "iptables", "-S", params["table"].upper()).stdout
    assert f"-d {ns.addr}/32 -p tcp -m multiport --dports {ALLOWED_PORT} -j ACCEPT" in chain

    assert _connect(ns, setup, ns.addr, ALLOWED_PORT, wrapped=True) == "reached"
    assert _connect(ns, setup, "127.0.0.2", ALLOWED_PORT, wrapped=True) == "ConnectionRefusedError"
    assert _connect(ns, setup, ns.addr, OTHER_PORT, wrapped=True) == "ConnectionRefusedError"
    assert _connect(ns, setup, "127.0.0.2", ALLOWED_PORT, wrapped=False) == "reached"

    assert_no_changes(_apply(ns, setup, pillar_data=data))
    assert _in_ns(ns, "iptables", "-S", "OUTPUT").stdout.count("--cgroup 1048577") == 1
    assert changed(assert_ok(_apply(ns, setup, state="vbox_egress.clean", pillar_data=data)))
    assert not group.exists()
    assert params["table"].upper() not in _in_ns(ns, "iptables", "-S").stdout


def _render_module():
    """_modules/vbox_egress.py as a plain module: rendering needs no Salt loader."""
    path = Path(__file__).parents[2] / "_modules" / "vbox_egress.py"
    spec = importlib.util.spec_from_file_location("vbox_egress_render", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ipv6_and_udp_destinations_are_valid_rules():
    """Rules for every kind of destination load into nft and iptables (scratch netns)."""
    render = _render_module()
    allow = [
        {"address": "2001:db8::/32", "ports": [443, 80]},
        {"address": "192.0.2.53", "protocol": "udp", "ports": [53]},
        {"address": "198.51.100.0/24", "protocol": "any"},
    ]
    text = render.render_nft("lt_vbox_check", {"nft_path": "unified", "level": 1}, allow)
    assert "ip6 daddr 2001:db8::/32" in text and "udp dport { 53 }" in text
    assert "tcp dport { 80, 443 }" in text
    # replies to connections made to the VM come before the rejects
    assert text.index("ct state established,related accept") < text.index("reject")
    netns.sh("unshare", "--net", "nft", "-c", "-f", "-", input=text)
    for family, tool in ((4, "iptables-restore"), (6, "ip6tables-restore")):
        rules = render.render_iptables("LT_VBOX_CHECK", "0x00100001", allow, family)
        assert ("2001:db8::/32" in rules) == (family == 6)
        netns.sh("unshare", "--net", tool, "--test", input=rules)
    with pytest.raises(Exception, match="ports need protocol tcp or udp"):
        render.destinations([{"address": "192.0.2.1", "protocol": "any", "ports": [1]}])


def test_systemd_slice_nesting_and_bad_slice_names():
    """systemd nests slices by dashes; names it cannot take are refused up front."""
    render = _render_module()
    assert render.slice_units("labsalt-vbox") == ["labsalt.slice", "labsalt-vbox.slice"]
    assert render.slice_units("vbox") == ["vbox.slice"]
    for bad in ("-vbox", "vbox-", "lab--vbox"):
        with pytest.raises(Exception, match="not a valid systemd slice name"):
            render.slice_units(bad)
