"""No-op second highstate of each role (bare host, converged) vs test.ping, masterless and salt-ssh.

Every role of formulas/top.sls gets a throw-away host started with the base image
only and its site data (tests/support/roles.py, the same lab as
tests/e2e/test_bare_hosts.py); all are converged with two highstates in one
``labsalt ssh`` call each.  Then, one host at a time, with the others idle:

- masterless: on the host, ``salt-call --local`` with labsalt's config (the
  checkout's formulas, modules and pillar copied to /srv/labsalt, the Salt that
  salt-ssh shipped to the host): ``state.apply`` (the no-op highstate) against
  ``test.ping``, median of ``--runs``;
- salt-ssh: ``labsalt ssh ROSTER HOST apply`` against ``labsalt ssh ROSTER HOST
  --call test.ping`` from this machine.

Ratios compare within one row (same host, same run); target <= 2x masterless.
A role that did not converge is reported as such, not measured.
"""

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import yaml

from bench._util import REPO, table
from tests.support import hosts, roles

HOST_ROOT = "/srv/labsalt"
HOST_CONF = "/srv/labsalt-conf"


def _minion_config(name):
    """labsalt's masterless config (labsalt/config.py) with the host's paths."""
    from labsalt.config import write_config  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="labsalt-bench-conf-") as tmp:
        saved = os.environ.get("LABSALT_CONFIG_DIR")
        os.environ["LABSALT_CONFIG_DIR"] = tmp
        try:
            conf = write_config(REPO, REPO / "pillar.example", minion_id=name)
        finally:
            if saved is None:
                os.environ.pop("LABSALT_CONFIG_DIR")
            else:
                os.environ["LABSALT_CONFIG_DIR"] = saved
        data = yaml.safe_load((conf / "minion").read_text())

    def move(value):
        """Every path of this machine's config, as the host's (recursively)."""
        if isinstance(value, dict):
            return {k: move(v) for k, v in value.items()}
        if isinstance(value, list):
            return [move(v) for v in value]
        if isinstance(value, str) and value.startswith(tmp):
            return HOST_CONF + value[len(tmp) :]
        if isinstance(value, str) and value.startswith(str(REPO)):
            return HOST_ROOT + value[len(str(REPO)) :]
        return value

    data = move(data)
    data["pillar_roots"] = {"base": [f"{HOST_ROOT}/pillar"]}
    return yaml.safe_dump(data)


def install_masterless(host, pillar_dir):
    """The checkout and the lab's pillar on the host; returns the salt-call command."""
    sources = [REPO / "formulas", *sorted(REPO.glob("_*"))]  # _modules, _states, ...
    host.copy([s for s in sources if s.is_dir() and s.name != "__pycache__"], HOST_ROOT)
    host.copy([pillar_dir], HOST_ROOT)
    host.put(f"{HOST_CONF}/minion", _minion_config(host.name))
    links = " && ".join(
        f"ln -sfn {HOST_ROOT}/{d} {HOST_CONF}/extroot/{d}"
        for d in ("_modules", "_states", "_grains")
    )
    host.run(
        "sh", "-c", f"mkdir -p {HOST_CONF}/extroot {HOST_CONF}/log {HOST_CONF}/empty && {links}"
    )
    found = host.run("sh", "-c", "ls -d /var/tmp/.root_*_salt/salt-call | head -1").stdout.strip()
    if not found:
        raise RuntimeError(f"{host.name}: no Salt shipped by salt-ssh under /var/tmp")
    return ["python3", found, "-c", HOST_CONF, "--local", "--retcode-passthrough"]


def _timed_in_host(host, cmd):
    start = time.perf_counter()
    proc = host.run(*cmd, check=False, timeout=900)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} on {host.name} exited {proc.returncode}: "
                           f"{proc.stdout[-1500:]}{proc.stderr[-1500:]}")  # fmt: skip
    return took, proc.stdout


def _timed_ssh(lab, host, call=False):
    """``labsalt ssh ROSTER HOST apply`` (the highstate), or ``--call test.ping``."""
    pillar = ["--pillar", str(lab.pillar_dir)]
    args = [*pillar, "--call", "test.ping"] if call else ["apply", *pillar]
    start = time.perf_counter()
    proc = lab.factory.ssh(lab.roster, host.name, *args, check=False)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"labsalt ssh {host.name} {' '.join(args)} exited {proc.returncode}: "
                           f"{proc.stderr[-1500:]}")  # fmt: skip
    return took, proc.stdout


def _median(fn, runs):
    return statistics.median(fn()[0] for _ in range(runs))


def _converged(ret):
    return isinstance(ret, dict) and all(
        isinstance(v, dict) and v.get("result") is True and not v.get("changes")
        for v in ret.values()
    )


def main(argv):
    parser = argparse.ArgumentParser(prog="python -m bench roles")
    parser.add_argument("--runs", type=int, default=3, help="runs per command (median)")
    parser.add_argument("--roles", help=f"comma-separated (default all: {sorted(roles.roles())})")
    args, _ = parser.parse_known_args(argv)
    reason = hosts.unavailable()
    if reason:
        print(f"skipped: {reason}")
        return 0
    names = args.roles.split(",") if args.roles else sorted(roles.roles())
    factory = hosts.HostFactory()
    rows, notes = [], []
    with tempfile.TemporaryDirectory(prefix="labsalt-bench-roles-") as scratch:
        lab = roles.RoleLab(factory, Path(scratch))
        try:
            lab.start(names)
            first, took = lab.apply()
            notes.append(f"first highstate of all {len(names)} hosts at once: {took:.0f} s")
            second, _ = lab.apply()
            for name in names:
                host = lab.hosts[name]
                if not _converged(second[name]):
                    rows.append([name, "not converged", "", "", "", "", "", ""])
                    continue
                try:
                    call = install_masterless(host, lab.pillar_dir)
                    _timed_in_host(host, [*call, "state.apply"])  # warm the minion cache
                    ping = _median(
                        lambda c=call, h=host: _timed_in_host(h, [*c, "test.ping"]), args.runs
                    )
                    noop = _median(
                        lambda c=call, h=host: _timed_in_host(h, [*c, "state.apply"]), args.runs
                    )
                    _, out = _timed_in_host(host, [*call, "--out", "json", "state.apply"])
                    states = next(iter(yaml.safe_load(out).values()))
                    count = len(states)
                    durations = sorted(
                        ((v.get("duration", 0), v["__id__"]) for v in states.values()), reverse=True
                    )
                    slowest = ", ".join(f"{i} {d / 1000:.2f}s" for d, i in durations[:3])
                    notes.append(
                        f"{name}: states {sum(d for d, _ in durations) / 1000:.2f} s of the no-op "
                        f"({noop:.2f} s); slowest: {slowest}"
                    )
                    ssh_ping = _median(lambda h=host: _timed_ssh(lab, h, call=True), args.runs)
                    ssh_noop = _median(lambda h=host: _timed_ssh(lab, h), args.runs)
                    rows.append([
                        name, count,
                        f"{ping:.2f}", f"{noop:.2f}", f"{noop / ping:.2f}",
                        f"{ssh_ping:.2f}", f"{ssh_noop:.2f}", f"{ssh_noop / ssh_ping:.2f}",
                    ])  # fmt: skip
                except RuntimeError as exc:  # one role's failure is a row, not the end
                    rows.append([name, "error", "", "", "", "", "", ""])
                    notes.append(f"{name}: {str(exc).splitlines()[0][:300]}")
        finally:
            lab.close()
            factory.stop_all()
    print(f"no-op highstate per role, median of {args.runs} (ratio: to test.ping, same host)")
    header = ["role", "states", "ping s", "no-op s", "ratio", "ssh ping s", "ssh no-op s", "ratio"]
    table(header, rows)
    for note in notes:
        print(note)
    return 0
