"""Converge 1, 2, 4 and 8 fresh hosts in one `labsalt ssh` call: time, ratio to one host, CPU."""

import argparse
import statistics

from bench._util import BIN, REPO, table, timed
from tests.support import hosts

SUITE = REPO / "tests" / "harness_suite"


def converge(factory, names, max_procs):
    """Start fresh hosts, converge them all with one labsalt ssh call, stop them."""
    started = factory.start_many(names)
    try:
        roster = factory.roster(started)
        cmd = [BIN / "labsalt", "ssh", roster, "*", "apply", "probe"]
        cmd += ["--pillar", SUITE / "pillar.example", "--ignore-host-keys", "-q"]
        cmd += ["--max-procs", str(max_procs)]
        wall, cpu = timed(cmd, {"LABSALT_ROOT": str(SUITE)})
        return wall, cpu, sum(host.cpu_seconds() for host in started)
    finally:
        for host in started:
            factory.stop(host)


def noop_vs_ping(factory, runs=3):
    """On one converged host: a no-op re-apply against test.ping, both over salt-ssh."""
    (host,) = factory.start_many(["noop"])
    try:
        env = {"LABSALT_ROOT": str(SUITE)}
        base = [BIN / "labsalt", "ssh", host.roster, host.name]
        opts = ["--pillar", SUITE / "pillar.example", "--ignore-host-keys", "-q"]
        apply = [*base, "apply", "probe", *opts]
        ping = [*base, *opts, "--call", "test.ping"]
        timed(apply, env)  # converge
        timed(ping, env)
        ping_s = statistics.median(timed(ping, env)[0] for _ in range(runs))
        noop_s = statistics.median(timed(apply, env)[0] for _ in range(runs))
    finally:
        factory.stop(host)
    return ping_s, noop_s


def main(argv):
    parser = argparse.ArgumentParser(prog="python -m bench fleet")
    parser.add_argument("--sizes", default="1,2,4,8", help="fleet sizes (default 1,2,4,8)")
    parser.add_argument("--max-procs", type=int, default=8, help="salt-ssh --max-procs")
    args, _ = parser.parse_known_args(argv)
    sizes = [int(n) for n in args.sizes.split(",")]
    reason = hosts.unavailable()
    if reason:
        print(f"skipped: {reason}")
        return 0
    factory = hosts.HostFactory(root=SUITE)
    try:
        # Warm-up: builds salt-ssh's thin and fills the apt proxy's cache, so every
        # size measures the same work (package from cache, formula, service).
        converge(factory, ["warmup"], 1)
        rows, one = [], None
        for n in sizes:
            names = [f"fleet{i}" for i in range(n)]
            wall, cpu, host_cpu = converge(factory, names, args.max_procs)
            one = one or wall  # the first size (1 by default) is the reference
            ratio = f"{wall / one:.2f}"
            rows.append([n, f"{wall:.1f}", ratio, f"{cpu / n:.1f}", f"{host_cpu / n:.1f}"])
        ping_s, noop_s = noop_vs_ping(factory)
    finally:
        factory.stop_all()
    print("one converged host over salt-ssh (median of 3):")
    table(
        ["command", "s", "ratio"],
        [
            ["labsalt ssh HOST --call test.ping (reference)", f"{ping_s:.1f}", "1.00"],
            ["labsalt ssh HOST apply probe (no-op)", f"{noop_s:.1f}", f"{noop_s / ping_s:.2f}"],
        ],
    )
    print("\nprobe formula (package from the apt cache, config with check_cmd, service)")
    print("(the hosts share this machine's CPUs with the master; on a real fleet they do not)")
    header = ["hosts", "wall s", "ratio to 1 host", "master CPU s/host", "host CPU s/host"]
    table(header, rows)
    return 0
