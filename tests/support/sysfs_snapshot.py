"""
Write a Linux sysfs snapshot (``sys/devices/system/{cpu,node}``, ``proc/meminfo``,
``proc/cpuinfo``) for a machine described by its known layout, in the same shape
as hwloc's test tarballs, so that ``topology.discover`` and Debian's
``lstopo --input DIR`` can both read it.

Used for machines the hwloc corpus does not have: the lab notebook's AMD
Threadripper 1950X (one package, two dies = two NUMA nodes, two 4-core CCX per
die each with its own 8 MB L3, SMT 2), its 12-core sibling 1920X (one core
disabled per CCX, so core ids are not consecutive) and the 2990WX (four dies,
two of them without memory).  The tests check that Debian's hwloc reads these
snapshots exactly as ``discover`` does.
"""

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class AmdZen:
    """Linux's view of a Zen 1 / Zen+ part: CPUs numbered thread 0 of every core, then thread 1."""

    name: str
    model: str
    dies: int  # NUMA nodes (one per die in "Channel" memory interleave mode)
    ccx_per_die: int = 2
    cores_per_ccx: int = 4  # enabled cores
    ccx_slots: int = 4  # core positions per CCX (core ids count disabled ones too)
    smt: int = 2
    die_memory_kb: list = field(default_factory=list)  # per die; 0 = no local memory
    l3_kb: int = 8192  # 0: sysfs gives no L3 cache (as in many VMs)
    distance_near: int = 10
    distance_far: int = 16

    @property
    def cores(self):
        """(die, ccx, core_id) of every enabled core, in Linux's CPU order."""
        out = []
        for die in range(self.dies):
            for ccx in range(self.ccx_per_die):
                base = (die * self.ccx_per_die + ccx) * self.ccx_slots
                out += [(die, ccx, base + i) for i in range(self.cores_per_ccx)]
        return out

    def cpus_of_core(self, index):
        return [index + thread * len(self.cores) for thread in range(self.smt)]


THREADRIPPER_1950X = AmdZen(
    "threadripper-1950x",
    "AMD Ryzen Threadripper 1950X 16-Core Processor",
    dies=2,
    die_memory_kb=[16370604, 16512232],
)
THREADRIPPER_1920X = AmdZen(
    "threadripper-1920x",
    "AMD Ryzen Threadripper 1920X 12-Core Processor",
    dies=2,
    cores_per_ccx=3,
    die_memory_kb=[16370604, 16512232],
)
THREADRIPPER_2990WX = AmdZen(
    "threadripper-2990wx",
    "AMD Ryzen Threadripper 2990WX 32-Core Processor",
    dies=4,
    die_memory_kb=[32891648, 0, 33013412, 0],
)
MACHINES = {m.name: m for m in (THREADRIPPER_1950X, THREADRIPPER_1920X, THREADRIPPER_2990WX)}
# Small machines for the openmpi formula's policy choice: two NUMA nodes of one
# core each, with and without L3 information.
TWO_NODES = AmdZen(
    "two-nodes", "two NUMA nodes", dies=2, ccx_per_die=1, cores_per_ccx=1, ccx_slots=1,
    smt=1, die_memory_kb=[1048576, 1048576],
)  # fmt: skip
TWO_NODES_NO_L3 = AmdZen(
    "two-nodes-no-l3", "two NUMA nodes, no L3", dies=2, ccx_per_die=1, cores_per_ccx=1,
    ccx_slots=1, smt=1, die_memory_kb=[1048576, 1048576], l3_kb=0,
)  # fmt: skip


def _cpulist(cpus):
    cpus = sorted(cpus)
    parts, start = [], 0
    for i in range(1, len(cpus) + 1):
        if i == len(cpus) or cpus[i] != cpus[i - 1] + 1:
            a, b = cpus[start], cpus[i - 1]
            parts.append(f"{a}-{b}" if b > a else str(a))
            start = i
    return ",".join(parts)


def _cpumask(cpus, ncpus):
    value = sum(1 << c for c in cpus)
    words = max(1, (ncpus + 31) // 32)
    return ",".join(f"{(value >> (32 * w)) & 0xFFFFFFFF:08x}" for w in reversed(range(words)))


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


def write_snapshot(machine, dest):
    """Write ``machine``'s sysfs/proc snapshot under ``dest`` and return ``dest``."""
    dest = Path(dest)
    cores = machine.cores
    ncpus = len(cores) * machine.smt
    allcpus = range(ncpus)
    system = dest / "sys" / "devices" / "system"
    cpu_dir = system / "cpu"

    def cpus_where(pred):
        return [c for i, core in enumerate(cores) if pred(core) for c in machine.cpus_of_core(i)]

    for name in ("online", "possible", "present"):
        _write(cpu_dir / name, _cpulist(allcpus))
    for index, (die, ccx, core_id) in enumerate(cores):
        siblings = machine.cpus_of_core(index)
        ccx_cpus = cpus_where(lambda c, d=die, x=ccx: c[0] == d and c[1] == x)
        for thread, cpu in enumerate(siblings):
            base = cpu_dir / f"cpu{cpu}"
            if cpu:
                _write(base / "online", "1")
            topo = base / "topology"
            _write(topo / "physical_package_id", "0")
            _write(topo / "die_id", "0")
            _write(topo / "core_id", str(core_id))
            for kind, members in (
                ("thread_siblings", siblings),
                ("core_cpus", siblings),
                ("core_siblings", allcpus),
                ("package_cpus", allcpus),
                ("die_cpus", allcpus),
            ):
                _write(topo / kind, _cpumask(members, ncpus))
                _write(topo / f"{kind}_list", _cpulist(members))
            caches = (
                (1, "Data", "32K", siblings, 8, 64),
                (1, "Instruction", "64K", siblings, 4, 256),
                (2, "Unified", "512K", siblings, 8, 1024),
                (3, "Unified", f"{machine.l3_kb}K", ccx_cpus, 16, 8192),
            )
            if not machine.l3_kb:
                caches = caches[:3]
            for i, (level, kind, size, shared, ways, sets) in enumerate(caches):
                idx = base / "cache" / f"index{i}"
                _write(idx / "level", str(level))
                _write(idx / "type", kind)
                _write(idx / "size", size)
                _write(idx / "ways_of_associativity", str(ways))
                _write(idx / "number_of_sets", str(sets))
                _write(idx / "coherency_line_size", "64")
                _write(idx / "physical_line_partition", "1")
                _write(idx / "shared_cpu_map", _cpumask(shared, ncpus))
                _write(idx / "shared_cpu_list", _cpulist(shared))
            del thread

    node_dir = system / "node"
    dies = range(machine.dies)
    for name in ("online", "possible", "has_cpu"):
        _write(node_dir / name, _cpulist(dies))
    _write(node_dir / "has_memory", _cpulist(d for d in dies if machine.die_memory_kb[d]))
    for die in dies:
        members = cpus_where(lambda c, d=die: c[0] == d)
        ndir = node_dir / f"node{die}"
        _write(ndir / "cpulist", _cpulist(members))
        _write(ndir / "cpumap", _cpumask(members, ncpus))
        distances = [
            machine.distance_near if other == die else machine.distance_far for other in dies
        ]
        _write(ndir / "distance", " ".join(map(str, distances)))
        mem = machine.die_memory_kb[die]
        _write(
            ndir / "meminfo",
            f"Node {die} MemTotal:       {mem} kB\nNode {die} MemFree:        {mem // 2} kB",
        )
        for cpu in members:
            (ndir / f"cpu{cpu}").mkdir(exist_ok=True)
    total = sum(machine.die_memory_kb)
    _write(
        dest / "proc" / "meminfo", f"MemTotal:       {total} kB\nMemFree:        {total // 2} kB"
    )
    cpuinfo = []
    for index, (_, _, core_id) in enumerate(cores):
        for cpu in machine.cpus_of_core(index):
            cpuinfo.append(
                f"processor\t: {cpu}\nvendor_id\t: AuthenticAMD\nmodel name\t: {machine.model}\n"
                f"physical id\t: 0\ncore id\t\t: {core_id}\ncpu cores\t: {len(cores)}\n"
            )
    _write(dest / "proc" / "cpuinfo", "\n".join(sorted(cpuinfo, key=_processor_number)))
    return dest


def _processor_number(block):
    return int(block.split("\n", 1)[0].split(":")[1])
