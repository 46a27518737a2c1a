"""
Fleet use: eight throw-away hosts converged in one ``labsalt ssh`` call, each
with its own pillar override (data in a pillar tree, not copies of states);
a second run changes nothing anywhere; a host that goes away after the run has
started is named in the summary while the others still converge.
"""

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.support import hosts

SUITE = hosts.REPO / "tests" / "harness_suite"
NAMES = [f"fleet{i}" for i in range(8)]
LABSALT = Path(sys.executable).parent / "labsalt"


def port_of(name):
    return 8100 + NAMES.index(name)


@pytest.fixture(scope="module")
def pillar(tmp_path_factory):
    """A fleet pillar: common data for all, one small override file per host."""
    root = tmp_path_factory.mktemp("fleet-pillar")
    top = ["base:", "  '*':", "    - probe"]
    (root / "hosts").mkdir()
    for name in NAMES:
        top += [f"  '{name}':", f"    - hosts.{name}"]
        (root / "hosts" / f"{name}.sls").write_text(f"probe:\n  port: {port_of(name)}\n")
    (root / "top.sls").write_text("\n".join(top) + "\n")
    (root / "probe.sls").write_text("probe:\n  greeting: hello fleet\n")
    return root


@pytest.fixture(scope="module")
def fleet(host_factory, pillar):
    host_factory.root = SUITE
    host_factory.pillar_dir = pillar
    started = host_factory.start_many(NAMES)
    return started, host_factory.roster(started)


def labsalt_ssh(roster, pillar, *extra):
    cmd = [LABSALT, "ssh", roster, "*", "apply", "probe", "--pillar", pillar]
    cmd += ["--ignore-host-keys", "--max-procs", "8", "--out", "json", *extra]
    return subprocess.Popen(
        [str(c) for c in cmd],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "LABSALT_ROOT": str(SUITE)},
    )


def finish(proc):
    out, err = proc.communicate(timeout=600)
    return proc.returncode, json.loads(out), err


def served(host):
    with urllib.request.urlopen(f"http://{host.addr}:{port_of(host.name)}/", timeout=10) as r:
        return r.read().decode()


@pytest.fixture(scope="module")
def first_run(fleet, pillar):
    _, roster = fleet
    return finish(labsalt_ssh(roster, pillar))


def test_eight_hosts_converge_in_one_call(fleet, first_run):
    started, _ = fleet
    code, returns, err = first_run
    assert code == 0, err
    assert sorted(returns) == NAMES
    for host in started:
        states = returns[host.name]
        assert all(s["result"] is True for s in states.values()), states
        # Each host got its own override and serves on its own port.
        unit = host.path("/etc/systemd/system/labsalt-probe.service").read_text()
        assert f" {port_of(host.name)}\n" in unit
        assert served(host) == "hello fleet\n"
    # Progress per host while running, then the summary.
    assert err.count("] fleet") == 8
    summary = err[err.index("Summary (8 hosts") :]
    for name in NAMES:
        assert f"  {name}  ok           4 states, 4 changed, 0 failed" in summary
    assert summary.rstrip().endswith("8 ok")


def test_second_run_changes_nothing_on_any_host(fleet, pillar, first_run):
    _, roster = fleet
    code, returns, err = finish(labsalt_ssh(roster, pillar))
    assert code == 0, err
    for name, states in returns.items():
        moved = {k: v["changes"] for k, v in states.items() if v["changes"]}
        assert not moved, f"{name} changed again: {moved}"
    assert "8 ok" in err


def test_a_host_lost_mid_run_is_named_and_the_rest_converge(fleet, pillar, first_run):
    started, roster = fleet
    victim = started[5]
    proc = labsalt_ssh(roster, pillar, "--pillar-data", '{"probe": {"greeting": "second wave"}}')
    # The run has started; now the victim's sshd goes away (its address stays
    # routed to its namespace, so nothing leaves this machine).
    victim.run("systemctl", "stop", "ssh")
    try:
        code, returns, err = finish(proc)
    finally:
        victim.run("systemctl", "start", "ssh")
    assert code == 1
    summary = err[err.index("Summary (8 hosts") :]
    assert f"{victim.name}  unreachable  ssh: connect to host {victim.addr} port 22" in summary
    assert "7 ok, 1 unreachable" in summary
    for host in started:
        expected = "hello fleet\n" if host is victim else "second wave\n"
        assert served(host) == expected, host.name
