"""
Run labsalt's benchmarks: ``python -m bench`` runs all, ``python -m bench apply fleet``
the named ones, ``python -m bench --list`` lists them.

Each ``bench/<name>.py`` has a docstring (its first line is the description) and
``main(argv)`` or ``main()`` returning an exit status (None counts as 0).
Benchmarks print times as ratios against a reference measured in the same run,
so numbers from different machines compare.
"""

import argparse
import importlib
import inspect
import os
import pkgutil
import platform
import sys
from pathlib import Path

import bench

REPO = Path(__file__).resolve().parent.parent


def available():
    return sorted(
        m.name for m in pkgutil.iter_modules(bench.__path__) if not m.name.startswith("_")
    )


def machine():
    cpus = len(os.sched_getaffinity(0))
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return f"{platform.node()}: {cpus} CPUs ({model}), Linux {platform.release()}"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default all: {available()})")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args, rest = parser.parse_known_args(argv)
    if args.list:
        for name in available():
            module = importlib.import_module(f"bench.{name}")
            print(f"{name:12} {(module.__doc__ or '').strip().splitlines()[0]}")
        return 0
    unknown = set(args.names) - set(available())
    if unknown:
        parser.error(f"unknown benchmark {', '.join(sorted(unknown))} (have: {available()})")
    print(f"# {machine()}", flush=True)
    status = 0
    for name in args.names or available():
        print(f"\n## {name}", flush=True)
        entry = importlib.import_module(f"bench.{name}").main
        takes_argv = bool(inspect.signature(entry).parameters)
        status |= int((entry(rest) if takes_argv else entry()) or 0)
    return status


if __name__ == "__main__":
    sys.exit(main())
