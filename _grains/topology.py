"""
NUMA and L3 grains, read cheaply from sysfs (a few small files per node and per CPU):

    numa_nodes: 2                               # NUMA nodes with CPUs or memory (int, to target)
    numa:       {"0": {"cpus": "0-7,16-23", "memory_kb": 16370604}, "1": {...}}
    l3:         ["0-3,16-19", "4-7,20-23", ...]  # CPUs sharing each L3 cache

``salt -G 'numa_nodes:2'`` targets the two-node machines.  On a host without
Linux sysfs there are no such grains (and no traceback).  The full picture
(cores, packages, distances) is ``topology.discover``; the tests check that
both agree on real machines' snapshots.
"""

import logging
import os
import re

from salt.exceptions import SaltInvocationError

log = logging.getLogger(__name__)


def __virtual__():
    if not os.path.isdir("/sys/devices/system/cpu"):
        return False, "topology grains: no /sys/devices/system/cpu (not Linux, or no sysfs)"
    return "topology"


def _read(path):
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            return handle.read().replace("\x00", "").strip()
    except OSError:
        return None


def _cpu_syntax():
    """
    The suite's one cpulist/cpumask parser and writer: the topology execution
    module's, loaded by Salt's loader (a grain cannot call ``__salt__``).  The
    module ships with the grains wherever they go (salt-ssh's extension
    modules, ``saltutil.sync_all``), so the target has it too.
    """
    global _SYNTAX  # noqa: PLW0603  (loaded once per process)
    if _SYNTAX is None:
        import salt.loader  # noqa: PLC0415  (only when grains are computed)

        funcs = salt.loader.raw_mod(__opts__, "topology", None)
        if "topology.parse_cpulist" not in funcs:
            raise OSError("the topology execution module is not where Salt's loader looks")
        _SYNTAX = (
            lambda text: set(funcs["topology.parse_cpulist"](text)),
            lambda text: set(funcs["topology.parse_cpumask"](text)),
            funcs["topology.format_cpulist"],
        )
    return _SYNTAX


_SYNTAX = None


def _cpulist(text):
    return _cpu_syntax()[0](text or "")


def _cpumask(text):
    return _cpu_syntax()[1](text or "0")


def _format(cpus):
    return _cpu_syntax()[2](cpus)


def _numbered(directory, prefix):
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    return sorted(int(n[len(prefix) :]) for n in names if re.fullmatch(rf"{prefix}\d+", n))


def _cpu_set(directory, list_name, mask_name):
    text = _read(os.path.join(directory, mask_name))
    if text is not None:
        return _cpumask(text)
    text = _read(os.path.join(directory, list_name))
    return _cpulist(text) if text is not None else None


def _core(cpu_dir, cpu, online):
    """The CPU's SMT siblings with the same core_id (AMD Bulldozer modules are two cores)."""
    topo = os.path.join(cpu_dir, f"cpu{cpu}", "topology")
    siblings = (_cpu_set(topo, "thread_siblings_list", "thread_siblings") or {cpu}) & online
    core_id = _read(os.path.join(topo, "core_id"))
    return {
        c
        for c in siblings
        if _read(os.path.join(cpu_dir, f"cpu{c}", "topology", "core_id")) == core_id
    } | {cpu}


def _memtotal_kb(path):
    match = re.search(r"MemTotal:\s+(\d+)\s*kB", _read(path) or "")
    return int(match.group(1)) if match else 0


def _topology_grains(root="/"):
    """The grains for the machine whose sysfs is under ``root`` (tests pass a snapshot)."""
    system = os.path.join(root, "sys", "devices", "system")
    cpu_dir = os.path.join(system, "cpu")
    cpu_ids = set(_numbered(cpu_dir, "cpu"))
    if not cpu_ids:
        return {}
    online_text = _read(os.path.join(cpu_dir, "online"))
    if online_text is not None:
        online = _cpulist(online_text)
    else:
        online = {c for c in cpu_ids if _read(os.path.join(cpu_dir, f"cpu{c}", "online")) != "0"}
    online = {
        c for c in online & cpu_ids if os.path.isdir(os.path.join(cpu_dir, f"cpu{c}", "topology"))
    }

    numa = {}
    claimed = set()  # a CPU two nodes claim (firmware bug) counts in the first only
    node_dir = os.path.join(system, "node")
    for nid in _numbered(node_dir, "node"):
        ndir = os.path.join(node_dir, f"node{nid}")
        cpus = _cpu_set(ndir, "cpulist", "cpumap")
        if cpus is None:
            cpus = set(_numbered(ndir, "cpu"))
        cpus = cpus & online - claimed
        claimed |= cpus
        numa[str(nid)] = {
            "cpus": _format(cpus),
            "memory_kb": _memtotal_kb(os.path.join(ndir, "meminfo")),
        }
    if not numa:
        numa["0"] = {
            "cpus": _format(online),
            "memory_kb": _memtotal_kb(os.path.join(root, "proc", "meminfo")),
        }

    l3 = set()
    covered = set()  # CPUs of an L3 group already read share its cache: skip them
    for cpu in sorted(online):
        if cpu in covered:
            continue
        cache = os.path.join(cpu_dir, f"cpu{cpu}", "cache")
        for index in reversed(_numbered(cache, "index")):
            idx = os.path.join(cache, f"index{index}")
            if _read(os.path.join(idx, "level")) != "3":
                continue
            if _read(os.path.join(idx, "type")) not in ("Unified", "Data", None):
                continue
            shared = (_cpu_set(idx, "shared_cpu_list", "shared_cpu_map") or {cpu}) & online
            group = frozenset(shared | _core(cpu_dir, cpu, online))
            l3.add(group)
            covered |= group
            break
    return {
        "numa_nodes": len(numa),
        "numa": numa,
        "l3": [_format(group) for group in sorted(l3, key=min)],
    }


def topology():
    """Salt grain function: ``numa_nodes``, ``numa`` and ``l3`` of this machine."""
    try:
        return _topology_grains("/")
    except (OSError, ValueError, SaltInvocationError) as exc:
        # unexpected sysfs content: no grain, one log line
        log.warning("topology grains not set: %s", exc)
        return {}
