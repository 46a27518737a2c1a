"""No-op `labsalt apply` against `salt-call --local test.ping`, as a ratio (same run)."""

import argparse
import tempfile
from pathlib import Path

import yaml

from bench._util import BIN, REPO, median_time, table, timed

SUITE = REPO / "tests" / "harness_suite"


def workstation_formulas():
    top = yaml.safe_load((REPO / "formulas" / "top.sls").read_text())["base"]
    return [f for f in top.get("I@labsalt:roles:workstation", []) if isinstance(f, str)]


def main(argv):
    parser = argparse.ArgumentParser(prog="python -m bench apply")
    parser.add_argument("--runs", type=int, default=5, help="runs per command (median)")
    args, _ = parser.parse_known_args(argv)
    with tempfile.TemporaryDirectory(prefix="labsalt-bench-") as scratch:
        tmp = Path(scratch)
        # A converged state: the probe formula's config, pointed into a temp dir.
        pillar = tmp / "pillar"
        pillar.mkdir()
        (pillar / "top.sls").write_text("base:\n  '*':\n    - probe\n")
        probe = {"docroot": str(tmp / "srv"), "unit_dir": str(tmp / "units")}
        (pillar / "probe.sls").write_text(yaml.safe_dump({"probe": probe}))
        env = {"LABSALT_ROOT": str(SUITE), "LABSALT_CONFIG_DIR": str(tmp / "conf")}
        labsalt = [BIN / "labsalt"]
        apply = [*labsalt, "apply", "probe.config.file", "--pillar", pillar, "-q"]
        timed(apply, env)  # converge once; later runs are no-ops
        conf = tmp / "conf"
        ping = [BIN / "salt-call", "-c", conf, "--local", "test.ping"]
        timed(ping, env)  # warm caches
        reference = median_time(ping, args.runs, env)
        rows = [["salt-call --local test.ping (reference)", f"{reference:.2f}", "1.00"]]
        noop = median_time(apply, args.runs, env)
        rows.append(
            ["labsalt apply (no-op, probe config)", f"{noop:.2f}", f"{noop / reference:.2f}"]
        )
        mapdata = [*labsalt, "mapdata", "probe", "--pillar", pillar]
        took = median_time(mapdata, args.runs, env)
        rows.append(["labsalt mapdata probe", f"{took:.2f}", f"{took / reference:.2f}"])
    if workstation_formulas():
        # The workstation role of pillar.example in test mode: all the work of a
        # highstate (render, compare) without changing this machine.
        work = [*labsalt, "apply", "--test", "-q"]
        with tempfile.TemporaryDirectory(prefix="labsalt-bench-") as tmp:
            env = {"LABSALT_CONFIG_DIR": tmp}
            timed(work, env)
            ping = [BIN / "salt-call", "-c", tmp, "--local", "test.ping"]
            reference = median_time(ping, args.runs, env)
            took = median_time(work, args.runs, env)
        rows.append(["salt-call --local test.ping (repo config)", f"{reference:.2f}", "1.00"])
        rows.append(
            ["labsalt apply --test (workstation role)", f"{took:.2f}", f"{took / reference:.2f}"]
        )
    table(["command", "median s", "ratio"], rows)
    return 0
