"""
vbox_egress in its systemd mode, applied over salt-ssh to a booted Debian 12 host.

The host runs systemd as PID 1 (this machine does not), so ``mode: auto`` picks
the systemd mode: the default cgroup ``labsalt-vbox`` becomes the slice
``labsalt-vbox.slice``, which systemd nests in ``labsalt.slice``, and the
wrapper starts commands in a ``systemd-run --scope`` inside it.  Two TCP servers
run in the host as transient services on 127.0.0.2 and 127.0.0.3 (loopback of the
host's own network namespace); the pillar allows only the first.

Both cgroup layouts systemd boots with: ``unified`` (cgroup2 at /sys/fs/cgroup,
every current distribution) and ``hybrid`` (cgroup2 at /sys/fs/cgroup/unified;
what systemd-nspawn gives a container on this machine by default).  On the
hybrid host only what depends on the layout runs (apply, the connections,
re-apply, clean), to keep the module near 90 s.
"""

import json
import os

import pytest

from tests.support.states import assert_no_changes, assert_ok, changed, failed

SLICE = "labsalt-vbox.slice"
TABLE = "labsalt_vbox_egress"
WRAPPER = "/usr/local/bin/vbox-egress-run"
ALLOWED, OTHER, PORT = "127.0.0.2", "127.0.0.3", 8080
PILLAR = {
    "vbox_egress": {
        "cgroup": "labsalt-vbox",
        "mode": "auto",
        "allow": [{"address": ALLOWED, "ports": [PORT]}],
    }
}

SERVER = """
import socket, sys
srv = socket.create_server((sys.argv[1], int(sys.argv[2])))
while True:
    conn, _ = srv.accept()
    conn.sendall(b"hello\\n")
    conn.close()
"""

# Prints its own cgroup, then what became of the connection.
CLIENT = """
import socket, sys
print(open("/proc/self/cgroup").read().splitlines()[-1].split(":", 2)[2])
try:
    with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5) as conn:
        print("reached" if conn.recv(16) == b"hello\\n" else "garbled")
except OSError as exc:
    print(type(exc).__name__)
"""


@pytest.fixture(scope="module", params=["unified", "hybrid"])
def layout(request):
    """The cgroup layout and where the slice's cgroup is, as nft names it."""
    where = "labsalt.slice/labsalt-vbox.slice"
    return request.param, where if request.param == "unified" else f"unified/{where}"


@pytest.fixture(scope="module")
def host(host_factory, layout):
    # systemd-nspawn reads this when it starts the container (hosts.py passes our env).
    saved = os.environ.get("SYSTEMD_NSPAWN_UNIFIED_HIERARCHY")
    # Unset, it follows this machine's hybrid layout ("0" would be cgroup v1 only).
    os.environ.pop("SYSTEMD_NSPAWN_UNIFIED_HIERARCHY", None)
    if layout[0] == "unified":
        os.environ["SYSTEMD_NSPAWN_UNIFIED_HIERARCHY"] = "1"
    try:
        host = host_factory.start(f"vbox-{layout[0]}", packages=["nftables", "iptables"])
    finally:
        os.environ.pop("SYSTEMD_NSPAWN_UNIFIED_HIERARCHY", None)
        if saved is not None:
            os.environ["SYSTEMD_NSPAWN_UNIFIED_HIERARCHY"] = saved
    mounted = host.run("awk", '$3 == "cgroup2" {print $2}', "/proc/self/mounts").stdout.split()
    assert mounted == ["/sys/fs/cgroup" if layout[0] == "unified" else "/sys/fs/cgroup/unified"]
    for addr in (ALLOWED, OTHER):
        unit = f"vbox-egress-test-server-{addr.rsplit('.', 1)[1]}"
        host.run("systemd-run", f"--unit={unit}", "python3", "-c", SERVER, addr, PORT)
    _wait(host, f"ss -Hltn | grep -q '{OTHER}:{PORT}'")
    yield host
    host_factory.stop(host)


def _wait(host, check):
    """Until the shell ``check`` succeeds in the host (5 s at most)."""
    host.run("sh", "-c", f"for i in $(seq 50); do {check} && exit; sleep 0.1; done; exit 1")


def _connect(host, addr, wrapped):
    cmd = ["python3", "-c", CLIENT, addr, PORT]
    proc = host.run(*([WRAPPER, *cmd] if wrapped else cmd), check=False)
    assert proc.returncode == 0, proc.stderr
    cgroup, outcome = proc.stdout.split()
    return cgroup, outcome


def _table(host):
    proc = host.run("nft", "list", "table", "inet", TABLE, check=False)
    return proc.stdout if proc.returncode == 0 else None


def _slice(host):
    """(ActiveState, ControlGroup) of the slice."""
    proc = host.run("systemctl", "show", "--property=ActiveState,ControlGroup", SLICE)
    props = dict(line.split("=", 1) for line in proc.stdout.splitlines())
    return props["ActiveState"], props["ControlGroup"]


def test_test_mode_predicts_and_changes_nothing(host, layout):
    predicted = assert_ok(host.apply("vbox_egress", pillar=PILLAR, test=True))
    assert any("vbox-egress-filter" in key for key in changed(predicted))
    assert any("vbox-egress-wrapper" in key for key in changed(predicted))
    assert _slice(host)[0] == "inactive"
    assert _table(host) is None
    assert not host.path(WRAPPER).exists()


def test_wrapped_process_reaches_only_the_allowed_server(host, layout):
    ret = assert_ok(host.apply("vbox_egress", pillar=PILLAR))
    assert any("vbox-egress-filter" in key for key in changed(ret))
    state, cgroup = _slice(host)
    assert (state, cgroup) == ("active", "/labsalt.slice/labsalt-vbox.slice")
    assert f'socket cgroupv2 level 2 "{layout[1]}" jump vm' in _table(host)
    # mode: auto chose systemd: the wrapper starts a scope in the slice.
    assert f"systemd-run --scope --quiet --collect --slice={SLICE}" in (
        host.path(WRAPPER).read_text()
    )

    where, outcome = _connect(host, ALLOWED, wrapped=True)
    assert where.startswith(f"{cgroup}/run-") and where.endswith(".scope"), where
    assert outcome == "reached"
    assert _connect(host, OTHER, wrapped=True)[1] == "ConnectionRefusedError"
    # The same client without the wrapper: outside the slice, reaches both.
    where, outcome = _connect(host, ALLOWED, wrapped=False)
    assert not where.startswith(cgroup) and outcome == "reached"
    assert _connect(host, OTHER, wrapped=False)[1] == "reached"


def test_reapply_and_test_mode_change_nothing(host, layout):
    before = _table(host)
    assert_no_changes(host.apply("vbox_egress", pillar=PILLAR))
    assert_no_changes(host.apply("vbox_egress", pillar=PILLAR, test=True))
    assert _table(host) == before
    assert before.count("socket cgroupv2") == 1
    assert _slice(host)[0] == "active"


def test_clean_refused_while_a_vm_runs_in_the_slice(host, layout):
    """A process in a scope below the slice counts (the slice's own cgroup.procs is empty)."""
    host.run("systemd-run", "--unit=vbox-egress-test-vm", WRAPPER, "sleep", "120")
    _wait(host, f"systemd-cgls --no-pager -u {SLICE} | grep -q 'sleep 120'")
    refused = failed(host.apply("vbox_egress.clean", pillar=PILLAR))
    assert any("still has processes" in state["comment"] for state in refused.values()), refused
    assert _table(host) is not None and _slice(host)[0] == "active"
    host.run("systemctl", "stop", "vbox-egress-test-vm")


def test_clean_removes_rules_and_slice(host, layout):
    ret = assert_ok(host.apply("vbox_egress.clean", pillar=PILLAR))
    assert changed(ret), json.dumps(ret)
    assert _table(host) is None
    assert _slice(host)[0] == "inactive"
    assert not host.path("/sys/fs/cgroup/unified/labsalt.slice").exists()
    assert not host.path("/sys/fs/cgroup/labsalt.slice").exists()
    assert not host.path(WRAPPER).exists()
    assert_no_changes(host.apply("vbox_egress.clean", pillar=PILLAR))
