"""
Every role converges on a bare host in one highstate (issue 14, items 2 and 3).

Hosts start with the base image only: systemd, sshd, python3 (what a fresh cloud
VM has; tests/support/hosts.py BASE_PACKAGES), nothing pre-installed for any
formula.  Each role gets its own host (tests/support/roles.py: pillar.example plus
the site data the role's own e2e test prepares); all hosts are worked on in one
``labsalt ssh`` call per step, as a fleet would be:

1. ``--test`` highstate: renders and predicts with 0 failed states;
2. highstate: 0 failed states;
3. highstate again: 0 changes.

Before that, on one more bare host, every formula is rendered with its example
pillar (``state.show_sls``): no render-time call may need a package the
highstate installs (CONTRIBUTING.md, "No render-time dependency on what the
highstate installs").

HTCondor's upstream repository is unreachable here; the workstation host gets a
signed apt repository of our own with a stand-in ``condor`` package
(tests/support/aptrepo.py; README "What the bare-host test proves").
"""

import contextlib
from pathlib import Path

import pytest

from tests.support import roles
from tests.support.states import changed, failed, results

ROLES = sorted(roles.roles())
MARKER = "/run/labsalt-before-test-mode"
# Where formulas write (files, packages, records); salt-ssh's own thin is in /var/tmp.
WATCHED = ("/etc", "/usr", "/srv", "/opt", "/var/lib/dpkg", "/var/lib/labsalt", "/root")
FORMULAS = roles.formulas()


@pytest.fixture(scope="module")
def lab(host_factory, tmp_path_factory):
    lab = roles.RoleLab(host_factory, tmp_path_factory.mktemp("bare-roles"))
    try:
        lab.start(ROLES)
        lab.runs = {}
        for host in lab.hosts.values():
            host.run("touch", MARKER)
        lab.runs["predict"] = lab.apply(test=True)
        lab.written = {name: _written_since_marker(host) for name, host in lab.hosts.items()}
        for step in ("first", "second"):
            lab.runs[step] = lab.apply()
        yield lab
    finally:
        lab.close()


def _written_since_marker(host):
    """Files the formulas could have written, changed since MARKER (test mode must write none)."""
    dirs = [d for d in WATCHED if host.path(d).exists()]
    found = host.run("find", *dirs, "-xdev", "-newer", MARKER, check=False).stdout.split()
    return sorted(found)


def _states(ret, step, name):
    """The host's state return, or a failure naming the step and what salt-ssh said."""
    try:
        states = results(ret)
    except AssertionError as exc:
        pytest.fail(f"{name}: {step}: {exc}")
    if not isinstance(states, dict) or not all(
        isinstance(v, dict) and "result" in v for v in states.values()
    ):
        pytest.fail(f"{name}: {step}: not a state return: {str(states)[:3000]}")
    return states


def _failures(states):
    def short(comment):
        comment = str(comment)
        if "Traceback (most recent call last)" in comment:  # the exception, not the stack
            lines = [line for line in comment.splitlines() if line.strip()]
            return f"{lines[0][:200]} ... {lines[-1][:400]}"
        return comment[:600]

    return "\n".join(f"  {k}: {short(v.get('comment'))}" for k, v in failed(states).items())


@pytest.mark.parametrize("role", ROLES)
def test_role_converges_on_bare_host(lab, role):
    if role in lab.notes:
        pytest.skip(lab.notes[role])
    (predicted, _), (first, took), (second, _) = (
        lab.runs[s] for s in ("predict", "first", "second")
    )
    problems = []
    states = _states(predicted[role], "test=True highstate", role)
    if failed(states):
        problems.append(f"test=True highstate failed:\n{_failures(states)}")
    formulas = {v["__sls__"].split(".")[0] for v in states.values()}
    assert formulas == set(roles.roles()[role]), f"{role} applies {sorted(formulas)}"
    if not changed(states):
        problems.append("test=True predicted no change on a bare host")
    if lab.written[role]:
        problems.append(f"test=True wrote: {', '.join(lab.written[role][:20])}")
    states = _states(first[role], "first highstate", role)
    if failed(states):
        problems.append(f"first highstate failed:\n{_failures(states)}")
    states = _states(second[role], "second highstate", role)
    moved = changed(states)
    if failed(states) or moved:
        problems.append(
            f"second highstate: {len(failed(states))} failed, changes in:\n"
            + "\n".join(f"  {k}: {str(v['changes'])[:800]}" for k, v in sorted(moved.items()))
            + ("\n" + _failures(states) if failed(states) else "")
        )
    assert not problems, f"{role}:\n" + "\n".join(problems)


def test_workstation_installs_condor_from_the_signed_test_repository(lab):
    """The formula's repository, key, pin and install path ran against the test repository."""
    if "workstation" in lab.notes:
        pytest.skip(lab.notes["workstation"])
    host = lab.hosts["workstation"]
    policy = host.run("apt-cache", "policy", "condor").stdout
    assert lab.repo.url in policy, policy
    assert host.run("systemctl", "is-active", "condor").stdout.strip() == "active"
    assert any("/pool/main/c/condor/" in r for r in lab.repo.requests), lab.repo.requests
    assert any("InRelease" in r for r in lab.repo.requests), lab.repo.requests
    slots = host.run("condor_config_val", "NUM_SLOTS").stdout.strip()
    assert slots.isdigit() and int(slots) >= 1
    # The throw-away signing key left nothing running here (gpg-agent) nor on disk.
    assert not lab.repo.gnupghome.exists()
    for proc in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            assert str(lab.repo.gnupghome) not in (proc / "cmdline").read_text(errors="replace")


@pytest.fixture(scope="module")
def render_host(host_factory):
    return host_factory.start("render")


def test_every_formula_renders_on_a_bare_host(render_host, tmp_path_factory):
    """state.show_sls of every formula, example pillar, host with the base image only."""
    lab = roles.RoleLab(render_host.factory, tmp_path_factory.mktemp("render"))
    lab.hosts["render"] = render_host
    lab.site["render"] = {"labsalt": {"roles": sorted(roles.roles()), "skip": []}}
    lab.write_pillar()
    # Site data, not packages: installer trees and firmware images pillar.example names.
    lab.seed_example_site(render_host)
    lab.roster = render_host.factory.roster([render_host], name="render-roster")
    returns, _ = lab.ssh(["render"], call=["state.show_sls", ",".join(FORMULAS)])
    ret = returns["render"]
    if not isinstance(ret, dict):
        errors = [" ".join(str(e).split())[:400] for e in ret]
        pytest.fail("render errors on a bare host:\n" + "\n".join(errors), pytrace=False)
    rendered = {v["__sls__"].split(".")[0] for v in ret.values() if isinstance(v, dict)}
    assert rendered == set(FORMULAS), sorted(set(FORMULAS) - rendered)
    # Nothing was installed to render: the host still has only the base image.
    dpkg = render_host.run("dpkg-query", "-W", "-f", "${Package}\\n").stdout.split()
    assert not {"hwloc", "condor", "samba", "bind9", "coturn"} & set(dpkg)
