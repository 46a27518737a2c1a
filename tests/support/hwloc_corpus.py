"""
hwloc's corpus of real machines' sysfs snapshots, and hwloc's view of them.

``corpus()`` runs ``scripts/fetch-test-corpus`` (Debian's hwloc source package,
cached under /var/cache/labsalt-tests/hwloc) and returns the cache directory:
``snapshots/<machine>/`` holds the machine's ``sys/`` and ``proc/``,
``linux/<machine>.output`` lstopo's expected ``lstopo -v`` output from hwloc's
own test suite.

``lstopo_objects(root)`` runs Debian's ``lstopo-no-graphics`` on a snapshot (or
on ``/``) and ``output_objects(path)`` reads a shipped ``.output`` file; both
return the same shape, so a test can hold ``topology.discover`` against each:

    {"PU": {cpu, ...},
     "Core": {frozenset(cpus), ...}, "L3Cache": {frozenset(cpus), ...},
     "Package": {(os_index, frozenset(cpus)), ...},
     "NUMANode": {os_index: (frozenset(cpus), local_memory_kb)}}
"""

import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FETCH = REPO / "scripts" / "fetch-test-corpus"
TYPES = ("PU", "Core", "L3Cache", "Package", "NUMANode")

# Real machines checked against the expected output in hwloc's test suite as well,
# chosen to cover what the slot plan must get right.
CURATED = {
    "64amd64-4s2n4ca2co": "AMD Opteron 6276: 4 packages x 2 NUMA nodes, Bulldozer modules",
    "48amd64-4d2n6c-sparse": "AMD: 4 packages x 2 NUMA nodes, sparse CPU numbering",
    "16amd64-8n2c": "AMD Opteron: 8 NUMA nodes, no cache information",
    "8amd64-4n2c": "AMD Opteron: 4 NUMA nodes x 2 cores",
    "2amd64-2n": "AMD: 2 NUMA nodes, sysfs without /proc",
    "16em64t-4s2c2t": "Intel Xeon: 4 sockets, SMT 2",
    "32intel64-2p8co2t+8ve": "Intel Xeon: 2 sockets x 8 cores, SMT 2, 2 NUMA nodes",
    "96em64t-4n4d3ca2co": "Intel Xeon: 4 NUMA nodes, 16 L3 groups",
    "16em64t-4s2c2t-offlines": "Intel Xeon: 4 sockets, SMT 2, CPUs 2,5,13,14 offline",
    "offline-cpu0-node0": "CPUs 0-3 and 21-23 offline, CPU 0 among them",
    "128ia64-17n4s2c": "Itanium: 17 NUMA nodes, one of them memory-only",
    "128arm-2pa2n8cluster4co": "ARM: 2 packages, 4 NUMA nodes, 128 cores",
    "2arm-2c": "ARM: no NUMA directory, no caches",
    "256ppc-8n8s4t": "POWER: 8 NUMA nodes, SMT 4, package id unknown (-1)",
    "20s390-2g6s4c": "s390: no NUMA directory, package id unknown",
    "256ia64-64n2s2c": "Itanium: 64 NUMA nodes, no cache information",
    "8em64t-4c2t": "Intel Core i7: one package, SMT 2, one L3",
}


def corpus():
    """The cache directory holding ``snapshots/`` and ``linux/`` (fetched once)."""
    done = subprocess.run([str(FETCH)], capture_output=True, text=True, check=False, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"{FETCH} failed:\n{done.stderr}")
    return Path(done.stdout.strip().splitlines()[-1])


def _bitmap(text):
    """hwloc's bitmap syntax: 0x-prefixed 32-bit hex words, most significant first."""
    value = 0
    for word in text.split(","):
        value = value << 32 | int(word.removeprefix("0x") or "0", 16)
    return frozenset(bit for bit in range(value.bit_length()) if value >> bit & 1)


def _empty():
    return {"PU": set(), "Core": set(), "L3Cache": set(), "Package": set(), "NUMANode": {}}


def lstopo_objects(root="/"):
    """Debian's hwloc on ``root``: every CPU, online or not allowed by a cgroup (--disallowed)."""
    cmd = ["lstopo-no-graphics", "--of", "xml", "--disallowed"]
    if str(root) != "/":
        cmd += ["--if", "fsroot", "--input", str(root)]
    xml = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=120).stdout
    found = _empty()
    for obj in ET.fromstring(xml).iter("object"):
        kind = obj.get("type")
        cpus = _bitmap(obj.get("cpuset", "0x0"))
        if kind == "PU":
            found["PU"].add(int(obj.get("os_index")))
        elif kind == "Core":
            found["Core"].add(cpus)
        elif kind == "L3Cache":
            found["L3Cache"].add(cpus)
        elif kind == "Package":
            found["Package"].add((int(obj.get("os_index", "-1")), cpus))
        elif kind == "NUMANode":
            memory = int(obj.get("local_memory", "0")) // 1024
            found["NUMANode"][int(obj.get("os_index"))] = (cpus, memory)
    return found


LINE = re.compile(
    r"^(?P<indent> *)(?P<type>[A-Za-z0-9]+)(?:\([^)]*\))?(?: L#\d+)?(?: \((?P<attrs>.*)\))?$"
)


def output_objects(path):
    """The same objects from lstopo's ``-v`` text output (hwloc's expected ``.output``)."""
    found = _empty()
    stack = []  # (indent, type, attrs, cpus-set collected from PUs below)
    nodes = []  # (attrs, parent entry)

    def close(entry):
        _, kind, attrs, cpus = entry
        pnum = re.search(r"\bP#(\d+)", attrs)
        if kind == "Core":
            found["Core"].add(frozenset(cpus))
        elif kind == "L3Cache":
            found["L3Cache"].add(frozenset(cpus))
        elif kind == "Package" and pnum:
            found["Package"].add((int(pnum.group(1)), frozenset(cpus)))

    for line in Path(path).read_text().splitlines():
        if not line.strip() or line.lstrip().startswith(("depth ", "Special depth")):
            break
        match = LINE.match(line)
        if not match:
            continue
        indent, kind, attrs = len(match["indent"]), match["type"], match["attrs"] or ""
        while stack and stack[-1][0] >= indent:
            close(stack.pop())
        if kind == "NUMANode":
            nodes.append((attrs, stack[-1] if stack else None))
            continue
        entry = (indent, kind, attrs, set())
        if kind == "PU":
            cpu = int(re.search(r"\bP#(\d+)", attrs).group(1))
            found["PU"].add(cpu)
            for parent in stack:
                parent[3].add(cpu)
        stack.append(entry)
    while stack:
        close(stack.pop())
    for attrs, parent in nodes:
        pnum = int(re.search(r"\bP#(\d+)", attrs).group(1))
        local = re.search(r"\blocal=(\d+)KB", attrs)
        cpus = frozenset(parent[3]) if parent else frozenset(found["PU"])
        found["NUMANode"][pnum] = (cpus, int(local.group(1)) if local else 0)
    return found
