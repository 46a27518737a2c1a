"""
CPU and memory topology of a Linux machine, read from sysfs: packages, NUMA
nodes, L3 groups, cores with their SMT siblings; and what follows from it for
HTCondor slots and MPI binding.

Only ``/sys/devices/system/{cpu,node}`` and ``/proc/meminfo`` are read.  Every
function takes ``root=`` so that it can read a snapshot of another machine
(hwloc's ``hwloc-gather-topology`` tarballs, or a tree written by
``topology.write_snapshot``) instead of ``/``.

CPU sets are handled as sorted lists of ints and written in the kernel's
cpulist syntax (``0-7,16-23``).  Only online CPUs are counted; offline CPUs
are reported separately.
"""

import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET

from salt.exceptions import CommandExecutionError, SaltInvocationError

__virtualname__ = "topology"

POLICIES = ("numa", "l3", "single")


def __virtual__():
    if not os.path.isdir("/sys/devices/system/cpu"):
        return False, "topology: /sys/devices/system/cpu is missing (not Linux, or no sysfs)"
    return __virtualname__


# --------------------------------------------------------------------------- cpulists


def parse_cpulist(text):
    """
    Parse a cpulist into a sorted list of CPU numbers: the kernel's syntax
    (``0-7,16-23``, and ``0-15:2/4``: 2 CPUs of every group of 4) and
    taskset's stride (``0-7:2``: every second CPU).  An empty string is the
    empty set.  The one cpulist parser of the suite: the topology grain and
    ``labsalt topology`` load it from this module through Salt's loader.

    CLI Example:

    .. code-block:: bash

        salt-call topology.parse_cpulist 0-3,8
    """
    if isinstance(text, bool):
        raise SaltInvocationError(f"{text!r} is not a cpulist (expected e.g. 0-7,16-23)")
    if isinstance(text, int):
        return [text]
    if isinstance(text, (list, tuple, set, frozenset)):
        return sorted({int(c) for c in text})
    cpus = set()
    for item in str(text).replace("\x00", "").strip().split(","):
        part = item.strip()
        if not part:
            continue
        match = re.fullmatch(r"(\d+)(?:-(\d+)(?::(\d+)(?:/(\d+))?)?)?", part)
        if not match:
            raise SaltInvocationError(f"'{text}' is not a cpulist (expected e.g. 0-7,16-23)")
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) else first
        if last < first:
            raise SaltInvocationError(f"'{text}' is not a cpulist: range {part} runs backwards")
        if match.group(4):  # used/group
            used, group = int(match.group(3)), int(match.group(4))
            if not 0 < used <= group:
                raise SaltInvocationError(
                    f"'{text}' is not a cpulist: {part} needs 0 < used <= group"
                )
            cpus.update(c for c in range(first, last + 1) if (c - first) % group < used)
        elif match.group(3):  # stride
            stride = int(match.group(3))
            if stride < 1:
                raise SaltInvocationError(f"'{text}' is not a cpulist: stride 0 in {part}")
            cpus.update(range(first, last + 1, stride))
        else:
            cpus.update(range(first, last + 1))
    return sorted(cpus)


def format_cpulist(cpus):
    """
    Write CPU numbers in the kernel's cpulist syntax, sorted, with ranges.

    CLI Example:

    .. code-block:: bash

        salt-call topology.format_cpulist '[0, 1, 2, 3, 16, 17]'
    """
    ordered = sorted(set(cpus))
    parts = []
    start = prev = None
    for cpu in ordered:
        if prev is not None and cpu == prev + 1:
            prev = cpu
            continue
        if start is not None:
            parts.append(f"{start}-{prev}" if prev > start else str(start))
        start = prev = cpu
    if start is not None:
        parts.append(f"{start}-{prev}" if prev > start else str(start))
    return ",".join(parts)


def parse_cpumask(text):
    """
    The kernel's hex CPU mask (``ffff,00000000``: 32-bit words, most
    significant first) as a sorted list of CPU numbers.

    CLI Example:

    .. code-block:: bash

        salt-call topology.parse_cpumask ff,00000000
    """
    words = text.replace("\x00", "").strip().split(",")
    cpus = []
    for position, word in enumerate(reversed(words)):
        value = int(word or "0", 16)
        while value:
            lowest = value & -value
            cpus.append(position * 32 + lowest.bit_length() - 1)
            value ^= lowest
    return sorted(cpus)


# --------------------------------------------------------------------------- sysfs reading


def _read(path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        data = os.read(fd, 1 << 16)
    except OSError:
        return None
    finally:
        os.close(fd)
    return data.decode("ascii", "replace").replace("\x00", "").strip()


def _read_set(directory, list_names, mask_names):
    """
    A CPU set from the first mask file present (every kernel has them; hwloc
    reads them too), else from the first ``*_list`` file.
    """
    for name in mask_names:
        text = _read(f"{directory}/{name}")
        if text is not None:
            return set(parse_cpumask(text))
    for name in list_names:
        text = _read(os.path.join(directory, name))
        if text is not None:
            return set(parse_cpulist(text))
    return None


def _present(directory, mask_names, list_names):
    """The first mask and list file names that exist in ``directory`` (else none)."""
    masks = [n for n in mask_names if os.path.exists(os.path.join(directory, n))][:1]
    lists = [n for n in list_names if os.path.exists(os.path.join(directory, n))][:1]
    return lists, masks


def _numbered(directory, prefix):
    """Sorted numbers N of entries ``<prefix>N`` in a directory."""
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    pattern = re.compile(rf"{prefix}(\d+)")
    return sorted(int(m.group(1)) for m in map(pattern.fullmatch, names) if m)


def _sysdir(root, *parts):
    return "/".join((root.rstrip("/"), "sys/devices/system", *parts))


def _online_cpus(root, cpu_ids):
    """
    Online CPUs: the global ``online`` list, else each CPU's ``online`` flag (a
    kernel without CPU hotplug has neither: then every CPU is online).
    """
    text = _read(_sysdir(root, "cpu", "online"))
    if text is not None:
        return sorted(set(parse_cpulist(text)) & cpu_ids)
    ordered = sorted(cpu_ids)
    hotplug = any(
        os.path.exists(_sysdir(root, "cpu", f"cpu{cpu}", "online")) for cpu in ordered[1:2]
    )
    if not hotplug:
        return ordered
    # CPU 0 usually has no flag: it cannot go offline.
    return [c for c in ordered if _read(_sysdir(root, "cpu", f"cpu{c}", "online")) != "0"]


def _with_topology(root, cpus, package_files):
    """
    ``cpus`` without those that have no topology/ directory, and the package
    masks read on the way ({cpu: set}); a stat only where a mask is missing.
    """
    known = set()
    kept = []
    masks = {}
    for cpu in cpus:
        if cpu in known:
            kept.append(cpu)
            continue
        topo = _sysdir(root, "cpu", f"cpu{cpu}", "topology")
        siblings = _read_set(topo, *package_files)
        if siblings is not None:
            masks[cpu] = siblings
            known.update(siblings)
            known.add(cpu)
            kept.append(cpu)
        elif os.path.isdir(topo):
            kept.append(cpu)
    return kept, masks


def _has_topology(root, cpu):
    return os.path.isdir(_sysdir(root, "cpu", f"cpu{cpu}", "topology"))


def _size_kb(text):
    if not text:
        return None
    match = re.fullmatch(r"(\d+)\s*([KMG]?)", text.strip())
    if not match:
        return None
    return int(match.group(1)) * {"": 1 / 1024, "K": 1, "M": 1024, "G": 1024**2}[match.group(2)]


def _meminfo_kb(path, key="MemTotal"):
    text = _read(path)
    if not text:
        return None
    match = re.search(rf"{key}:\s+(\d+)\s*kB", text)
    return int(match.group(1)) if match else None


def _l3_sets(root, online, core_of):
    """
    Distinct L3 cache CPU sets, with sizes.  A cache is shared at least by the
    SMT threads of its core (some kernels list only the CPU itself; hwloc
    widens those too).  CPUs of a group already found are not read again.
    """
    groups = {}
    covered = set()
    online_set = set(online)
    for cpu in online:
        if cpu in covered:
            continue
        cache = _sysdir(root, "cpu", f"cpu{cpu}", "cache")
        # L3 is index3 on x86, ARM and POWER; other layouts are searched.
        idx = os.path.join(cache, "index3")
        if _read(os.path.join(idx, "level")) != "3":
            idx = _find_level3(cache)
            if idx is None:
                continue
        shared = _read_set(idx, ["shared_cpu_list"], ["shared_cpu_map"]) or {cpu}
        key = frozenset(shared & online_set | core_of[cpu])
        groups.setdefault(key, _size_kb(_read(os.path.join(idx, "size"))))
        covered |= key
    return groups


def _find_level3(cache):
    """The cache/indexN directory of a level 3 data or unified cache, or None."""
    try:
        names = os.listdir(cache)
    except OSError:
        return None
    for name in sorted(names, reverse=True):
        idx = os.path.join(cache, name)
        if (
            name.startswith("index")
            and _read(os.path.join(idx, "level")) == "3"
            and _read(os.path.join(idx, "type")) in ("Unified", "Data", None)
        ):
            return idx
    return None


def _check_root(root):
    if not os.path.isdir(root):
        raise CommandExecutionError(f"topology root {root} does not exist")
    if not os.path.isdir(_sysdir(root, "cpu")):
        raise CommandExecutionError(
            f"{root} is not a sysfs tree: {_sysdir(root, 'cpu')} is missing "
            "(give a machine's / or a snapshot holding sys/devices/system/cpu)"
        )


# --------------------------------------------------------------------------- discovery


def discover(root="/"):
    """
    Return the machine's topology as plain data:

    ``packages``, ``numa_nodes`` (``id``, ``cpus``, ``memory_kb``, ``distances``,
    ``cores``, ``l3_groups``), ``l3_groups`` (``id``, ``cpus``, ``size_kb``,
    ``numa_nodes``), ``cores`` (``package``, ``id``, ``cpus`` with the SMT
    siblings), ``cpus_online``, ``cpus_offline`` and a ``summary`` of the counts.
    CPU sets are cpulist strings.  ``root`` is a directory holding ``sys/`` (and
    optionally ``proc/``) of the machine to describe.

    CLI Example:

    .. code-block:: bash

        salt-call topology.discover
        salt-call topology.discover root=/srv/snapshots/threadripper-1950x
    """
    _check_root(root)
    cpu_ids = set(_numbered(_sysdir(root, "cpu"), "cpu"))
    online = _online_cpus(root, cpu_ids)
    if not online:
        raise CommandExecutionError(f"{root}: no online CPU in sysfs")
    # Which files this kernel has (newer names first), looked up once, not per CPU.
    first = _sysdir(root, "cpu", f"cpu{online[0]}", "topology")
    core_files = _present(first, ["core_cpus", "thread_siblings"], ["thread_siblings_list"])
    package_files = _present(first, ["package_cpus", "core_siblings"], ["core_siblings_list"])
    # A CPU without topology/ is not usable (hwloc counts it as offline too).  CPUs
    # named in another CPU's package mask have it; only the others are checked.
    online, package_masks = _with_topology(root, online, package_files)
    if not online:
        raise CommandExecutionError(f"{root}: no online CPU with topology information in sysfs")
    online_set = set(online)
    topo_dir = {c: _sysdir(root, "cpu", f"cpu{c}", "topology") for c in online}

    def _int_file(cpu, name, default):
        text = _read(f"{topo_dir[cpu]}/{name}")
        try:
            return int(text)
        except (TypeError, ValueError):
            return default

    # Cores: CPUs sharing core_cpus (thread_siblings in older kernels) and core_id.
    # AMD Bulldozer lists both integer cores of a module as siblings, with two
    # core ids: they are two cores (as hwloc counts them).
    core_of = {}
    core_ids = {}
    for cpu in online:
        if cpu in core_of:
            continue
        siblings = _read_set(topo_dir[cpu], *core_files)
        siblings = (siblings or {cpu}) & online_set | {cpu}
        if len(siblings) > 1:
            # SMT threads share their core's id; if a second sibling has another
            # id, every sibling's id decides.
            core_id = core_ids.setdefault(cpu, _int_file(cpu, "core_id", None))
            other = min(siblings - {cpu})
            if core_ids.setdefault(other, _int_file(other, "core_id", None)) != core_id:
                siblings = {
                    c
                    for c in siblings
                    if core_ids.setdefault(c, _int_file(c, "core_id", None)) == core_id
                }
        members = frozenset(siblings | {cpu})
        for member in members:
            core_of.setdefault(member, members)

    # Packages: CPUs sharing package_cpus (core_siblings in older kernels), as
    # hwloc groups them; one mask read per package.  A mask that overlaps a
    # package already found is corrupt: such CPUs are grouped by
    # physical_package_id instead.
    package_of = {}
    conflicting = []
    for cpu in online:
        if cpu in package_of:
            continue
        siblings = package_masks.get(cpu) or _read_set(topo_dir[cpu], *package_files)
        members = frozenset((siblings or online_set) & online_set | {cpu})
        if any(other in package_of for other in members):
            conflicting.append(cpu)
            package_of[cpu] = None
            continue
        for member in members:
            package_of[member] = members
    by_id = {}
    for cpu in conflicting:
        by_id.setdefault(_int_file(cpu, "physical_package_id", -1), set()).add(cpu)
    for members in by_id.values():
        for member in members:
            package_of[member] = frozenset(members)
    packages = []
    package_id_of = {}
    for number, members in enumerate(sorted(set(package_of.values()), key=min)):
        pid = _int_file(min(members), "physical_package_id", -1)
        pid = number if pid < 0 else pid  # -1: the kernel does not know (s390, POWER)
        package_id_of[members] = pid
        packages.append({"id": pid, "cpus": sorted(members)})

    def _core_id(cpu, default):
        value = core_ids[cpu] if cpu in core_ids else _int_file(cpu, "core_id", None)
        return default if value is None else value

    core_sets = sorted(set(core_of.values()), key=min)
    cores = [
        {
            "id": _core_id(min(members), number),
            "package": package_id_of[package_of[min(members)]],
            "cpus": sorted(members),
        }
        for number, members in enumerate(core_sets)
    ]

    # NUMA nodes (a kernel without NUMA has no node/ directory: one node holds everything).
    node_ids = _numbered(_sysdir(root, "node"), "node")
    numa = bool(node_ids)
    nodes = []
    if numa:
        for nid in node_ids:
            ndir = _sysdir(root, "node", f"node{nid}")
            cpus = _read_set(ndir, ["cpulist"], ["cpumap"])
            if cpus is None:  # very old kernels: cpuN links only
                cpus = set(_numbered(ndir, "cpu"))
            memory = _meminfo_kb(os.path.join(ndir, "meminfo"))
            distance = (_read(os.path.join(ndir, "distance")) or "").split()
            nodes.append(
                {
                    "id": nid,
                    "cpus": sorted(cpus & online_set),
                    "memory_kb": memory or 0,
                    "distance_row": [int(d) for d in distance if d.isdigit()],
                }
            )
    else:
        memory = _meminfo_kb(os.path.join(root, "proc", "meminfo"))
        nodes.append({"id": 0, "cpus": online, "memory_kb": memory or 0, "distance_row": [10]})
    # A CPU claimed by several nodes (a BIOS bug) belongs to the first of them.
    warnings = []
    claimed = set()
    for node in nodes:
        overlap = set(node["cpus"]) & claimed
        if overlap:
            warnings.append(
                f"NUMA node {node['id']} claims CPUs {format_cpulist(overlap)} that an earlier "
                "node holds (firmware bug?); they are counted in the earlier node only"
            )
            node["cpus"] = [c for c in node["cpus"] if c not in overlap]
        claimed.update(node["cpus"])
    for node in nodes:
        row = node.pop("distance_row")
        node["distances"] = (
            {str(other["id"]): d for other, d in zip(nodes, row, strict=True)}
            if len(row) == len(nodes)
            else {}
        )
    node_of = {cpu: node["id"] for node in nodes for cpu in node["cpus"]}

    l3_sets = _l3_sets(root, online, core_of)
    l3_groups = []
    for number, members in enumerate(sorted(l3_sets, key=min)):
        l3_groups.append(
            {
                "id": number,
                "cpus": sorted(members),
                "size_kb": l3_sets[members],
                "numa_nodes": sorted({node_of[c] for c in members if c in node_of}),
            }
        )

    leaders = [core["cpus"][0] for core in cores]
    for node in nodes:
        members = set(node["cpus"])
        node["cores"] = sum(1 for leader in leaders if leader in members)
        node["l3_groups"] = [g["id"] for g in l3_groups if members & set(g["cpus"])]
    for package in packages:
        members = set(package["cpus"])
        package["cores"] = sum(1 for core in cores if core["package"] == package["id"])
        package["numa_nodes"] = [n["id"] for n in nodes if members & set(n["cpus"])]

    present = sorted(cpu_ids)
    total_memory = sum(n["memory_kb"] for n in nodes)
    result = {
        "root": root,
        "numa": numa,
        "cpus_online": format_cpulist(online),
        "cpus_offline": format_cpulist(set(present) - online_set),
        "packages": [{**p, "cpus": format_cpulist(p["cpus"])} for p in packages],
        "numa_nodes": [{**n, "cpus": format_cpulist(n["cpus"])} for n in nodes],
        "l3_groups": [{**g, "cpus": format_cpulist(g["cpus"])} for g in l3_groups],
        "cores": [{**c, "cpus": format_cpulist(c["cpus"])} for c in cores],
        "warnings": warnings,
        "summary": {
            "packages": len(packages),
            "numa_nodes": len(nodes),
            "numa_nodes_with_cpus": sum(1 for n in nodes if n["cpus"]),
            "l3_groups": len(l3_groups),
            "cores": len(cores),
            "cpus": len(online),
            "cpus_offline": len(set(present) - online_set),
            "smt": max(len(c["cpus"]) for c in cores),
            "memory_kb": total_memory,
        },
    }
    result["summary"]["mpi_binding"] = mpi_binding_policy(result)
    return result


def binding_domain(numa_nodes, l3_groups, ompi_major=None, singleton_patched=False):
    """
    The MPI binding domain, and why, for a machine with ``numa_nodes`` NUMA
    nodes holding CPUs and ``l3_groups`` L3 cache groups: ``numa`` with several
    NUMA nodes (ranks stay on local memory), else ``l3cache`` with several L3
    groups, else ``core``.  OpenMPI 4 (``ompi_major`` below 5) cannot bind a
    singleton to NUMA under hwloc 2 unless the singleton patch is applied, so
    there ``numa`` becomes ``l3cache`` (the lab notebook's 2022 advice), or
    ``socket`` without L3 information; with the patch enabled it is ``numa``.
    This is the one chooser: the openmpi formula and ``labsalt topology`` both
    use it.

    CLI Example:

    .. code-block:: bash

        salt-call topology.binding_domain 2 4 ompi_major=4
    """
    if singleton_patched:
        # The patch exists to bind singletons to NUMA: enabling it asks for that.
        return "numa", "the singleton bind-to-NUMA patch is enabled"
    if numa_nodes > 1:
        if ompi_major is not None and ompi_major < 5:
            if l3_groups:
                return "l3cache", (
                    "OpenMPI 4 singletons cannot bind to NUMA under hwloc 2 without the patch; "
                    "l3cache still pins to more than one core"
                )
            return "socket", "OpenMPI 4 without the singleton patch and no L3 information"
        return "numa", f"{numa_nodes} NUMA nodes: ranks stay on their local memory"
    if l3_groups > 1:
        return "l3cache", f"one NUMA node with {l3_groups} L3 groups"
    return "core", "one NUMA node and one L3 group: each rank on a core"


INTEL_DOMAINS = {"numa": "numa", "l3cache": "cache3", "socket": "socket", "core": "core"}


def intel_pin_domain(domain):
    """
    Intel MPI's ``I_MPI_PIN_DOMAIN`` for an OpenMPI binding ``domain``
    (``l3cache`` is ``cache3`` there), or None for a domain it has no name for.

    CLI Example:

    .. code-block:: bash

        salt-call topology.intel_pin_domain l3cache
    """
    return INTEL_DOMAINS.get(domain)


def mpi_binding_policy(topo=None, root="/", ompi_major=None, singleton_patched=False):
    """
    :py:func:`binding_domain` for this machine (or the snapshot at ``root``),
    with the environment for Open MPI and Intel MPI (the lab notebook's
    /etc/profile.d settings).

    CLI Example:

    .. code-block:: bash

        salt-call topology.mpi_binding_policy
    """
    topo = topo or discover(root)
    nodes_with_cpus = sum(1 for n in topo["numa_nodes"] if n["cpus"])
    domain, reason = binding_domain(
        nodes_with_cpus, len(topo["l3_groups"]), ompi_major, singleton_patched
    )
    return {
        "domain": domain,
        "reason": reason,
        "environment": {
            "OMPI_MCA_hwloc_base_binding_policy": domain,
            "OMPI_MCA_rmaps_base_mapping_policy": domain,
            "I_MPI_PIN_DOMAIN": INTEL_DOMAINS[domain],
        },
    }


# --------------------------------------------------------------------------- HTCondor slots


def _as_int(value, key, minimum=0):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SaltInvocationError(f"htcondor:slots:{key}: {value!r} is not an integer >= {minimum}")
    return value


def slot_plan(
    policy="numa",
    *,
    reserve_cores=0,
    exclude_nodes=None,
    memory_cap_mb=None,
    root="/",
    topo=None,
):
    """
    Return the HTCondor partitionable slots for this machine.

    ``policy``: ``numa`` (one slot per NUMA node that has CPUs; memory = the
    node's memory, or an even share of the machine's when the node has none),
    ``l3`` (one slot per L3 group; memory = its share of the node's), or
    ``single`` (one slot with all of it, the lab notebook's ``cpus=100%``).
    ``reserve_cores``: physical cores (with their SMT siblings) kept for the
    interactive user, taken from the lowest-numbered CPUs.  ``exclude_nodes``:
    NUMA node ids HTCondor must not use.  ``memory_cap_mb``: upper limit of each
    slot's memory.

    Each slot has ``cores`` (physical cores: HTCondor's ``cpus=``), ``cpus``
    (its CPUs including SMT siblings, as a cpulist), ``memory_mb``, ``nodes``,
    and what the config file says: ``slot_type`` (``SLOT_TYPE_<n>``) and
    ``affinity`` (``SLOT<n>_CPU_AFFINITY``: every CPU, comma-separated, since
    HTCondor does not read ranges; None for an unpinned whole-machine slot).

    CLI Example:

    .. code-block:: bash

        salt-call topology.slot_plan numa reserve_cores=2
    """
    if policy not in POLICIES:
        raise SaltInvocationError(
            f"htcondor:slots:policy: {policy!r} is not one of {', '.join(POLICIES)}"
        )
    reserve_cores = _as_int(reserve_cores, "reserve_cores")
    exclude_nodes = [_as_int(n, "exclude_nodes") for n in (exclude_nodes or [])]
    if memory_cap_mb is not None:
        memory_cap_mb = _as_int(memory_cap_mb, "memory_cap_mb", minimum=1)
    topo = topo or discover(root)

    node_ids = {n["id"] for n in topo["numa_nodes"]}
    unknown = sorted(set(exclude_nodes) - node_ids)
    if unknown:
        raise SaltInvocationError(
            f"htcondor:slots:exclude_nodes: NUMA node(s) {unknown} do not exist on this machine "
            f"(nodes: {sorted(node_ids)})"
        )
    cores = [parse_cpulist(c["cpus"]) for c in topo["cores"]]
    excluded_cpus = {
        c for n in topo["numa_nodes"] if n["id"] in exclude_nodes for c in parse_cpulist(n["cpus"])
    }
    usable = [core for core in cores if not set(core) & excluded_cpus]
    if reserve_cores >= len(usable):
        raise SaltInvocationError(
            f"htcondor:slots:reserve_cores: {reserve_cores} reserved but this machine has only "
            f"{len(usable)} physical core(s) available to HTCondor; leave at least one"
        )
    usable.sort(key=min)
    usable = usable[reserve_cores:]
    usable_cpus = {c for core in usable for c in core}

    node_mb = {n["id"]: n["memory_kb"] // 1024 for n in topo["numa_nodes"]}
    node_cores = {}
    for node in topo["numa_nodes"]:
        members = set(parse_cpulist(node["cpus"]))
        node_cores[node["id"]] = [core for core in cores if min(core) in members]

    if policy == "single":
        groups = [(sorted(usable_cpus), sorted(node_ids - set(exclude_nodes)))]
    elif policy == "numa":
        groups = [
            (n["cpus"], [n["id"]]) for n in topo["numa_nodes"] if n["id"] not in exclude_nodes
        ]
    else:
        groups = [(g["cpus"], g["numa_nodes"]) for g in topo["l3_groups"]]
        if not groups:
            raise SaltInvocationError(
                "htcondor:slots:policy: 'l3' needs L3 cache information, which this machine's "
                "sysfs does not give (a VM?); use 'numa' or 'single'"
            )

    slots = []
    for cpus, nodes in groups:
        members = set(parse_cpulist(cpus)) & usable_cpus
        slot_cores = [core for core in usable if min(core) in members]
        if not slot_cores:
            continue
        members = {c for core in slot_cores for c in core}
        slots.append({"cpus": members, "cores": len(slot_cores), "nodes": nodes})

    # Memory: each slot gets its node's memory (shared by the node's slots in
    # proportion to their cores).  When a slot's node has no memory of its own
    # (e.g. a Threadripper 2990WX), every slot gets an even share of the memory
    # of the nodes in use instead, so the slots never add up to more than exists.
    used_nodes = node_ids - set(exclude_nodes)
    for slot in slots:
        memory = 0
        for nid in slot["nodes"]:
            node_total = len(node_cores[nid]) or 1
            in_node = sum(1 for core in node_cores[nid] if set(core) <= slot["cpus"])
            memory += node_mb[nid] * (in_node if policy != "single" else node_total) // node_total
        slot["memory_mb"] = memory
    if any(slot["memory_mb"] == 0 for slot in slots):
        share = sum(node_mb[n] for n in used_nodes) // max(len(slots), 1)
        for slot in slots:
            slot["memory_mb"] = share
    for slot in slots:
        if memory_cap_mb is not None:
            slot["memory_mb"] = min(slot["memory_mb"], memory_cap_mb)
        if slot["memory_mb"] < 1:
            raise SaltInvocationError(
                f"{root}: the NUMA nodes in use report no memory, so HTCondor slots cannot be "
                "given any; check /sys/devices/system/node/node*/meminfo"
            )

    whole_machine = (
        policy == "single" and not reserve_cores and not exclude_nodes and memory_cap_mb is None
    )
    plan = []
    for number, slot in enumerate(slots, start=1):
        if whole_machine:
            # The lab notebook's default: one slot owning everything, no pinning.
            slot_type, affinity = "cpus=100%, memory=100%", None
        else:
            slot_type = f"cpus={slot['cores']}, memory={slot['memory_mb']}"
            # HTCondor splits SLOT<n>_CPU_AFFINITY at commas and reads each item
            # with atoi(): a range such as 0-7 would pin to CPU 0 only.
            affinity = ",".join(str(cpu) for cpu in sorted(slot["cpus"]))
        plan.append(
            {
                "id": number,
                "cores": slot["cores"],
                "cpus": format_cpulist(slot["cpus"]),
                "memory_mb": slot["memory_mb"],
                "nodes": slot["nodes"],
                "slot_type": slot_type,
                "affinity": affinity,
            }
        )
    return plan


# --------------------------------------------------------------------------- hwloc's view

# hwloc 2.x (>= 2.1) enum hwloc_obj_type_t, by the names hwloc's XML uses.
HWLOC_TYPES = {
    "Machine": 0,
    "Package": 1,
    "Core": 2,
    "PU": 3,
    "L1Cache": 4,
    "L2Cache": 5,
    "L3Cache": 6,
    "L4Cache": 7,
    "L5Cache": 8,
    "L1iCache": 9,
    "L2iCache": 10,
    "L3iCache": 11,
    "Group": 12,
    "NUMANode": 13,
    "Bridge": 14,
    "PCIDev": 15,
    "OSDev": 16,
    "Misc": 17,
    "MemCache": 18,
    "Die": 19,
}
_NOT_NORMAL = {"NUMANode", "MemCache", "Bridge", "PCIDev", "OSDev", "Misc"}


def _cpuset(text):
    """hwloc's XML bitmap ('0x0000000f,0xffffffff') as an int; None when empty."""
    if not text:
        return None
    return int("".join(word.strip()[2:].rjust(8, "0") for word in text.split(",")), 16)


def _topology_xml(xml_file=None):
    if xml_file:
        with open(xml_file, encoding="utf-8") as handle:
            return handle.read()
    lstopo = shutil.which("lstopo-no-graphics") or shutil.which("lstopo")
    if not lstopo:
        raise CommandExecutionError(
            "cannot read the topology: lstopo-no-graphics is not installed (package hwloc)"
        )
    proc = subprocess.run(
        [lstopo, "--no-io", "--of", "xml", "-"],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise CommandExecutionError(f"lstopo failed: {proc.stderr.strip()}")
    return proc.stdout


def can_read_topology():
    """
    Whether :py:func:`numa_parent` can read the live topology here (hwloc's
    ``lstopo-no-graphics`` is installed).  The elfpatch state asks in test mode
    (the singleton patch's type):
    on a host where the same highstate installs hwloc, the type is decided when
    the state runs, so test mode predicts the patch without it.

    CLI Example:

    .. code-block:: bash

        salt-call topology.can_read_topology
    """
    return bool(shutil.which("lstopo-no-graphics") or shutil.which("lstopo"))


def numa_parent(xml_file=None):
    """
    The hwloc type of the NUMA nodes' parent in the live topology (what
    ``lstopo-no-graphics --of xml`` reports, honouring ``HWLOC_XMLFILE``), with
    its hwloc enum value.  Refuses when a parent's cpuset differs from its NUMA
    node's, when the parents differ in type, or when an object of the parent's
    type sits below the parent (OpenMPI would bind to that smaller object).

    CLI Example:

    .. code-block:: bash

        salt-call topology.numa_parent
    """
    try:
        root = ET.fromstring(_topology_xml(xml_file))
    except ET.ParseError as exc:
        raise CommandExecutionError(f"cannot parse the hwloc topology XML: {exc}") from exc
    parents = {child: parent for parent in root.iter("object") for child in parent}
    nodes = [obj for obj in root.iter("object") if obj.get("type") == "NUMANode"]
    if not nodes:
        raise CommandExecutionError("the topology has no NUMA node")
    found = []
    for node in nodes:
        parent = parents.get(node)
        while parent is not None and parent.get("type") == "MemCache":
            parent = parents.get(parent)
        if parent is None:
            raise CommandExecutionError(f"NUMA node P#{node.get('os_index')} has no parent")
        ptype = parent.get("type")
        label = f"NUMA node P#{node.get('os_index')}"
        if _cpuset(parent.get("cpuset")) != _cpuset(node.get("cpuset")):
            raise CommandExecutionError(
                f"{label} has cpuset {node.get('cpuset')} but its parent {ptype} has "
                f"{parent.get('cpuset')}: binding to the parent would use other CPUs"
            )
        inner = [
            obj
            for obj in parent.iter("object")
            if obj is not parent and obj.get("type") == ptype and ptype not in _NOT_NORMAL
        ]
        if inner:
            raise CommandExecutionError(
                f"{label}: its parent {ptype} contains another {ptype}, so the first "
                f"{ptype} above a core is not the NUMA node's parent"
            )
        found.append({"node": int(node.get("os_index", -1)), "parent": ptype})
    types = sorted({item["parent"] for item in found})
    if len(types) != 1:
        raise CommandExecutionError(f"NUMA nodes have parents of different types: {types}")
    (ptype,) = types
    if ptype not in HWLOC_TYPES:
        raise CommandExecutionError(f"unknown hwloc object type {ptype!r} above the NUMA nodes")
    return {"type": ptype, "value": HWLOC_TYPES[ptype], "nodes": found}
