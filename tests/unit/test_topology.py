"""
topology.discover on real machines: hwloc's corpus of sysfs snapshots (47 machines,
Debian's hwloc source package), each held against Debian's lstopo run on the same
tree and against the expected output hwloc's own test suite ships; this machine's
live /sys against lstopo; the Threadripper snapshots against lstopo; grains against
discover; cpulists; the slot plan.  Only the tests that run lstopo need hwloc
installed (``needs_lstopo``); the pure ones (cpulists, binding_domain, slot
plans) always run.
"""

import importlib.util
import shutil

import pytest
from salt.exceptions import CommandExecutionError, SaltInvocationError

from labsalt.loader import ext_dir
from tests.support import hwloc_corpus, sysfs_snapshot
from tests.support.hwloc_corpus import CURATED

needs_lstopo = pytest.mark.skipif(
    not shutil.which("lstopo-no-graphics"),
    reason="Debian's hwloc (lstopo-no-graphics) is not installed: scripts/install-deps topology",
)


def _load(kind, name):
    spec = importlib.util.spec_from_file_location(
        f"labsalt_test_{kind}_{name}", ext_dir(kind) / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


topology = _load("modules", "topology")
grains = _load("grains", "topology")


def _minion_opts():
    """What Salt's grain loader gives a grain: minion options; the modules where labsalt's are."""
    import salt.config  # noqa: PLC0415

    opts = salt.config.minion_config(None)
    opts["module_dirs"] = [str(ext_dir("modules"))]
    # not the machine-wide /var/cache/salt/minion/extmods, searched first
    opts["extension_modules"] = str(ext_dir("modules") / "__no_extmods__")
    return opts


grains.__opts__ = _minion_opts()


@pytest.fixture(scope="session")
def corpus():
    return hwloc_corpus.corpus()


@pytest.fixture(scope="session")
def threadrippers(tmp_path_factory):
    base = tmp_path_factory.mktemp("threadrippers")
    return {
        name: sysfs_snapshot.write_snapshot(machine, base / name)
        for name, machine in sysfs_snapshot.MACHINES.items()
    }


def objects_of(topo):
    """discover()'s result in hwloc_corpus's shape."""

    def cpus(text):
        return frozenset(topology.parse_cpulist(text))

    return {
        "PU": set(cpus(topo["cpus_online"])),
        "Core": {cpus(c["cpus"]) for c in topo["cores"]},
        "L3Cache": {cpus(g["cpus"]) for g in topo["l3_groups"]},
        "Package": {(p["id"], cpus(p["cpus"])) for p in topo["packages"]},
        "NUMANode": {n["id"]: (cpus(n["cpus"]), n["memory_kb"]) for n in topo["numa_nodes"]},
    }


def differences(mine, ref, skip=()):
    """What discover() reports differently from hwloc, one line each."""
    out = []
    if mine["PU"] != ref["PU"]:
        out.append(f"online CPUs {sorted(mine['PU'])} != hwloc's {sorted(ref['PU'])}")
    # hwloc makes no Core objects without core information (s390): then nothing to compare.
    if "Core" not in skip and ref["Core"] and mine["Core"] != ref["Core"]:
        out.append(f"cores differ: {len(mine['Core'])} vs hwloc's {len(ref['Core'])}")
    if "L3Cache" not in skip and mine["L3Cache"] != ref["L3Cache"]:
        out.append(
            f"L3 groups differ: {sorted(map(sorted, mine['L3Cache']))} vs "
            f"hwloc's {sorted(map(sorted, ref['L3Cache']))}"
        )
    if "Package" not in skip and ref["Package"]:
        if {c for _, c in mine["Package"]} != {c for _, c in ref["Package"]}:
            out.append("package CPU sets differ")
        # hwloc's os_index is -1 where the kernel does not know the package id.
        known = {(i, c) for i, c in ref["Package"] if i >= 0}
        if known - mine["Package"]:
            out.append(f"package ids differ: hwloc has {sorted(known - mine['Package'])}")
    for nid, (cpus, memory) in ref["NUMANode"].items():
        if nid not in mine["NUMANode"]:
            out.append(f"NUMA node {nid} missing")
            continue
        my_cpus, my_memory = mine["NUMANode"][nid]
        # A CPU-less node has no CPUs of its own; hwloc gives it its parent's locality.
        if my_cpus and my_cpus != cpus:
            out.append(f"NUMA node {nid}: CPUs {sorted(my_cpus)} vs hwloc's {sorted(cpus)}")
        if my_memory != memory:
            out.append(f"NUMA node {nid}: {my_memory} kB vs hwloc's {memory} kB")
    extra = set(mine["NUMANode"]) - set(ref["NUMANode"])
    if extra and "NUMANode-extra" not in skip:
        out.append(f"NUMA nodes {sorted(extra)} not in hwloc")
    return out


# Where discover() and hwloc legitimately differ on a snapshot, and why.
EXCEPTIONS = {
    "40intel64-4n10c+pci-conflicts": (
        {"Package", "L3Cache"},
        "hwloc's conflict test: CPU 3's core_siblings mask is corrupt; hwloc drops that "
        "package, discover groups its CPUs by physical_package_id",
    ),
    "64intel64-fakeKNL-A2A-cache": (
        {"L3Cache"},
        "hwloc takes the KNL MCDRAM cache from hwloc-dump-hwdata files, not from sysfs",
    ),
    "64intel64-fakeKNL-SNC4-hybrid": (
        {"L3Cache"},
        "hwloc takes the KNL MCDRAM cache from hwloc-dump-hwdata files, not from sysfs",
    ),
    "8em64t-2s2ca2c-buggynuma": (
        {"NUMANode-extra"},
        "every node claims every CPU (firmware bug): hwloc drops nodes 1-7, discover keeps "
        "their memory as memory-only nodes and reports a warning",
    ),
    "fakeheterocpunuma": (
        {"NUMANode-extra"},
        "overlapping node CPU sets, which hwloc accepts only with a debug variable",
    ),
    "nvidiagpunumanodes": (
        {"NUMANode-extra"},
        "GPU memory nodes 250-255: hwloc hides them unless HWLOC_KEEP_NVIDIA_GPU_NUMA_NODES=1",
    ),
}


def _machines(corpus_dir):
    return sorted(p.name for p in (corpus_dir / "snapshots").iterdir() if p.is_dir())


# hwloc 2.9.0's tests/hwloc/linux/*.tar.bz2 (Debian 12's source package): the
# machines the README and the modules' docstrings count.
CORPUS_MACHINES = 47


def test_corpus_is_the_one_counted(corpus):
    machines = _machines(corpus)
    assert len(machines) == CORPUS_MACHINES, machines
    assert set(CURATED) <= set(machines)


@pytest.mark.parametrize("machine", sorted(CURATED))
def test_discover_matches_hwloc_expected_output(corpus, machine):
    expected = hwloc_corpus.output_objects(corpus / "linux" / f"{machine}.output")
    mine = objects_of(topology.discover(str(corpus / "snapshots" / machine)))
    assert differences(mine, expected) == [], CURATED[machine]


@needs_lstopo
def test_discover_matches_debian_lstopo_on_every_snapshot(corpus):
    failures = {}
    for machine in _machines(corpus):
        root = corpus / "snapshots" / machine
        skip, _ = EXCEPTIONS.get(machine, (set(), ""))
        found = differences(
            objects_of(topology.discover(str(root))), hwloc_corpus.lstopo_objects(root), skip
        )
        if found:
            failures[machine] = found
    assert failures == {}


@needs_lstopo
@pytest.mark.parametrize("machine", sorted(EXCEPTIONS))
def test_exceptions_are_still_needed(corpus, machine):
    """An exception that no longer makes a difference must be removed."""
    root = corpus / "snapshots" / machine
    found = differences(objects_of(topology.discover(str(root))), hwloc_corpus.lstopo_objects(root))
    assert found, f"{machine} now agrees with hwloc: drop it from EXCEPTIONS"


@needs_lstopo
def test_discover_matches_lstopo_on_this_machine():
    mine = objects_of(topology.discover("/"))
    assert differences(mine, hwloc_corpus.lstopo_objects("/")) == []


@needs_lstopo
def test_threadripper_snapshots_read_alike_by_hwloc(threadrippers):
    for name, root in threadrippers.items():
        mine = objects_of(topology.discover(str(root)))
        assert differences(mine, hwloc_corpus.lstopo_objects(root)) == [], name


def test_threadripper_1950x_layout(threadrippers):
    topo = topology.discover(str(threadrippers["threadripper-1950x"]))
    assert [(n["id"], n["cpus"], n["cores"]) for n in topo["numa_nodes"]] == [
        (0, "0-7,16-23", 8),
        (1, "8-15,24-31", 8),
    ]
    assert [g["cpus"] for g in topo["l3_groups"]] == [
        "0-3,16-19",
        "4-7,20-23",
        "8-11,24-27",
        "12-15,28-31",
    ]
    assert topo["packages"][0]["cpus"] == "0-31"
    assert topo["numa_nodes"][0]["distances"] == {"0": 10, "1": 16}
    assert topo["summary"]["smt"] == 2
    assert topo["summary"]["mpi_binding"]["domain"] == "numa"


def test_threadripper_1920x_has_non_consecutive_core_ids(threadrippers):
    topo = topology.discover(str(threadrippers["threadripper-1920x"]))
    assert [c["id"] for c in topo["cores"]][:6] == [0, 1, 2, 4, 5, 6]
    assert [n["cores"] for n in topo["numa_nodes"]] == [6, 6]


# --------------------------------------------------------------------------- slot plans


def test_slot_plan_1950x_is_the_lab_notebooks(threadrippers):
    plan = topology.slot_plan("numa", root=str(threadrippers["threadripper-1950x"]))
    assert [(s["cores"], set(topology.parse_cpulist(s["cpus"]))) for s in plan] == [
        (8, set(range(8)) | set(range(16, 24))),
        (8, set(range(8, 16)) | set(range(24, 32))),
    ]
    assert plan[0]["affinity"] == "0,1,2,3,4,5,6,7,16,17,18,19,20,21,22,23"
    assert plan[1]["affinity"] == "8,9,10,11,12,13,14,15,24,25,26,27,28,29,30,31"
    assert [s["memory_mb"] for s in plan] == [16370604 // 1024, 16512232 // 1024]


def test_slot_plan_l3_and_single(threadrippers):
    root = str(threadrippers["threadripper-1950x"])
    l3 = topology.slot_plan("l3", root=root)
    assert [s["cpus"] for s in l3] == ["0-3,16-19", "4-7,20-23", "8-11,24-27", "12-15,28-31"]
    assert sum(s["memory_mb"] for s in l3) <= 32882836 // 1024
    single = topology.slot_plan("single", root=root)
    assert single == [
        {
            "id": 1,
            "cores": 16,
            "cpus": "0-31",
            "memory_mb": 16370604 // 1024 + 16512232 // 1024,
            "nodes": [0, 1],
            "slot_type": "cpus=100%, memory=100%",
            "affinity": None,
        }
    ]


def test_slot_plan_overrides(threadrippers):
    root = str(threadrippers["threadripper-1950x"])
    plan = topology.slot_plan("numa", reserve_cores=2, memory_cap_mb=4096, root=root)
    assert [(s["cores"], s["cpus"], s["memory_mb"]) for s in plan] == [
        (6, "2-7,18-23", 4096),
        (8, "8-15,24-31", 4096),
    ]
    plan = topology.slot_plan("numa", exclude_nodes=[0], root=root)
    assert [s["cpus"] for s in plan] == ["8-15,24-31"]


def test_slot_plan_memoryless_dies_get_an_even_share(threadrippers):
    plan = topology.slot_plan("numa", root=str(threadrippers["threadripper-2990wx"]))
    total = 32891648 // 1024 + 33013412 // 1024
    assert [s["cores"] for s in plan] == [8, 8, 8, 8]
    assert [s["memory_mb"] for s in plan] == [total // 4] * 4


@pytest.mark.parametrize("machine", sorted(CURATED))
def test_slot_plan_partitions_the_machine(corpus, machine):
    """Every policy: slots are disjoint, hold whole cores, and cover every online CPU."""
    root = str(corpus / "snapshots" / machine)
    topo = topology.discover(root)
    online = set(topology.parse_cpulist(topo["cpus_online"]))
    cores = [frozenset(topology.parse_cpulist(c["cpus"])) for c in topo["cores"]]
    for policy in ("numa", "l3", "single"):
        if policy == "l3" and not topo["l3_groups"]:
            with pytest.raises(SaltInvocationError, match="L3 cache information"):
                topology.slot_plan(policy, topo=topo)
            continue
        plan = topology.slot_plan(policy, topo=topo)
        sets = [set(topology.parse_cpulist(s["cpus"])) for s in plan]
        groups = {"numa": topo["numa_nodes"], "l3": topo["l3_groups"]}.get(policy)
        # CPUs of no NUMA node (offline-cpu0-node0: node 0 is gone) are in no numa slot.
        covered = (
            {c for g in groups for c in topology.parse_cpulist(g["cpus"])} if groups else online
        )
        assert set().union(*sets) == online & covered, policy
        assert sum(map(len, sets)) == len(set().union(*sets)), f"{policy}: slots overlap"
        for slot, cpus in zip(plan, sets, strict=True):
            inside = [core for core in cores if core <= cpus]
            assert len(inside) == slot["cores"], policy
            assert set().union(*inside) == cpus, f"{policy}: a slot splits a core"
            assert slot["memory_mb"] > 0 or topo["summary"]["memory_kb"] == 0


# --------------------------------------------------------------------------- bad input


def test_bad_input_is_one_clear_error(tmp_path, threadrippers):
    root = str(threadrippers["threadripper-1950x"])
    with pytest.raises(SaltInvocationError, match="'numaa' is not one of numa, l3, single"):
        topology.slot_plan("numaa", root=root)
    with pytest.raises(SaltInvocationError, match="16 reserved but this machine has only 16"):
        topology.slot_plan("numa", reserve_cores=16, root=root)
    with pytest.raises(SaltInvocationError, match=r"NUMA node\(s\) \[7\] do not exist"):
        topology.slot_plan("numa", exclude_nodes=[7], root=root)
    with pytest.raises(CommandExecutionError, match="is not a sysfs tree"):
        topology.discover(str(tmp_path))
    with pytest.raises(CommandExecutionError, match="does not exist"):
        topology.discover(str(tmp_path / "nowhere"))
    with pytest.raises(SaltInvocationError, match="not a cpulist"):
        topology.parse_cpulist("0-3,x")


# --------------------------------------------------------------------------- cpulists, grains


@pytest.mark.parametrize(
    ("text", "cpus"),
    [
        ("", []),
        ("0", [0]),
        ("0-3,8", [0, 1, 2, 3, 8]),
        ("0-7,16-23", [*range(8), *range(16, 24)]),
        ("0-15:2/4", [0, 1, 4, 5, 8, 9, 12, 13]),
        ("0-7:2", [0, 2, 4, 6]),  # taskset's stride
        ("1-9:4,16", [1, 5, 9, 16]),
    ],
)
def test_cpulist_round_trip(text, cpus):
    assert topology.parse_cpulist(text) == cpus
    # the grain parses through the same module (Salt's loader), strides included
    assert grains._cpulist(text) == set(cpus)
    if ":" not in text:
        assert topology.format_cpulist(cpus) == text
        assert grains._format(cpus) == text


@pytest.mark.parametrize("text", ["0-7:0", "0-7:3/2", "0-7:0/4", "7-0", "0-3:", "x"])
def test_cpulist_refused(text):
    with pytest.raises(SaltInvocationError, match="is not a cpulist"):
        topology.parse_cpulist(text)


def test_cpumask_read_by_the_module():
    assert topology.parse_cpumask("00000001,80000003") == [0, 1, 31, 32]
    assert grains._cpumask("00000001,80000003") == {0, 1, 31, 32}


def test_cpumask_parser_matches_the_kernel_lists(corpus):
    """Every snapshot with both forms: the mask and the list of a node say the same."""
    checked = 0
    for node in (corpus / "snapshots").glob("*/sys/devices/system/node/node*"):
        if (node / "cpumap").is_file() and (node / "cpulist").is_file():
            online = set(
                topology.parse_cpulist(topology.discover(str(node.parents[4]))["cpus_online"])
            )
            mask = set(topology.parse_cpumask((node / "cpumap").read_text().strip("\0\n")))
            listed = set(topology.parse_cpulist((node / "cpulist").read_text().strip("\0\n")))
            assert mask & online == listed & online, node
            checked += 1
    assert checked > 50


def test_grains_agree_with_discover(corpus, threadrippers):
    roots = [corpus / "snapshots" / m for m in _machines(corpus)] + list(threadrippers.values())
    for root in roots:
        topo = topology.discover(str(root))
        found = grains._topology_grains(str(root))
        assert found["numa_nodes"] == len(topo["numa_nodes"]), root
        assert found["numa"] == {
            str(n["id"]): {"cpus": n["cpus"], "memory_kb": n["memory_kb"]}
            for n in topo["numa_nodes"]
        }, root
        assert found["l3"] == [g["cpus"] for g in topo["l3_groups"]], root


def test_no_grains_without_sysfs(tmp_path):
    assert grains._topology_grains(str(tmp_path)) == {}


@pytest.mark.parametrize(
    ("numa", "l3", "ompi_major", "patched", "domain"),
    [
        (2, 4, None, False, "numa"),  # the hardware's answer (labsalt topology)
        (2, 4, 5, False, "numa"),  # OpenMPI 5 binds singletons to NUMA correctly
        (2, 4, 4, True, "numa"),  # OpenMPI 4 with the singleton patch
        (2, 4, 4, False, "l3cache"),  # the lab notebook's 2022 fallback
        (2, 0, 4, False, "socket"),  # ... without L3 information
        (1, 2, 4, False, "l3cache"),  # one node, several L3 groups (CCXes)
        (1, 1, 4, False, "core"),
        (1, 0, None, False, "core"),  # a VM without cache information
        (1, 1, 4, True, "numa"),  # the patch is enabled to bind to NUMA: it asks for numa
    ],
)
def test_binding_domain_is_the_one_mpi_chooser(numa, l3, ompi_major, patched, domain):
    chosen, reason = topology.binding_domain(numa, l3, ompi_major, patched)
    assert chosen == domain
    assert reason
