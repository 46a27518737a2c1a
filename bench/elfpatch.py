"""
elfpatch.status on Debian's libopen-rte.so versus ``sha256sum`` of the same file,
measured in the same run; prints the ratio (target: at most 3x).

status parses the ELF headers (pyelftools), finds the symbol, the pattern and
the referenced table, and hashes the file; sha256sum is the floor for
"read and hash the file" as a user would run it.  The in-process hashlib time
is printed too, as the stricter floor.

    python -m bench.elfpatch [--rounds N] [--library PATH]
"""

import argparse
import hashlib
import importlib.util
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LIBRARY = "/usr/lib/x86_64-linux-gnu/libopen-rte.so.40"
RECIPE = "openmpi-singleton-numa"
TARGET = 3.0


def _module():
    spec = importlib.util.spec_from_file_location("elfpatch_bench", REPO / "_modules/elfpatch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _timed(fun, rounds):
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fun()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(library=LIBRARY, rounds=30):
    """Median seconds of elfpatch.status and of sha256sum, and their ratio."""
    elfpatch = _module()
    elfpatch.status(library, RECIPE)  # warm the page cache and the recipe cache

    def sha256sum():
        subprocess.run(["sha256sum", library], check=True, capture_output=True)

    def hashlib_sha256():
        hashlib.sha256(Path(library).read_bytes()).hexdigest()

    reference = _timed(sha256sum, rounds)
    in_process = _timed(hashlib_sha256, rounds)
    status = _timed(lambda: elfpatch.status(library, RECIPE), rounds)
    return {
        "status": status,
        "sha256sum": reference,
        "hashlib": in_process,
        "ratio": status / reference,
        "ratio_hashlib": status / in_process,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.elfpatch", description=__doc__)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--library", default=LIBRARY)
    args = parser.parse_args(argv)
    if not Path(args.library).exists():
        print(f"bench.elfpatch: {args.library} does not exist (install libopenmpi3)")
        return 2
    result = measure(args.library, args.rounds)
    verdict = "ok" if result["ratio"] <= TARGET else "SLOW"
    print(
        f"elfpatch.status / sha256sum: {result['ratio']:.2f}x "
        f"(status {result['status'] * 1000:.1f} ms, sha256sum {result['sha256sum'] * 1000:.1f} ms, "
        f"median of {args.rounds}; target <= {TARGET:g}x) {verdict}"
    )
    print(
        f"  in-process hashlib.sha256 of the file: {result['hashlib'] * 1000:.1f} ms "
        f"(status is {result['ratio_hashlib']:.2f}x that)"
    )
    return 0 if verdict == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
