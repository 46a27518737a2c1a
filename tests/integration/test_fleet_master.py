"""
Fleet through a salt-master: one master (pytest-salt-factories) serves labsalt's
trees to four minions; ``saltutil.sync_all`` brings the custom modules and
grains; each minion gets its own pillar override; grains target the run.
The probe formula's paths point into a temporary directory per minion.
"""

import concurrent.futures

import pytest
import yaml

from labsalt.config import write_config
from tests.support.sysfs_snapshot import THREADRIPPER_1950X, THREADRIPPER_2990WX, write_snapshot

MINIONS = {"ws1": "a", "ws2": "a", "ws3": "b", "ws4": "b"}  # minion id -> lab room grain


@pytest.fixture(scope="module")
def paths(tmp_path_factory, repo):
    base = tmp_path_factory.mktemp("fleet-master")
    pillar = base / "pillar"
    (pillar / "hosts").mkdir(parents=True)
    top = {"base": {"*": ["probe"], **{m: [f"hosts.{m}"] for m in MINIONS}}}
    (pillar / "top.sls").write_text(yaml.safe_dump(top))
    (pillar / "probe.sls").write_text(yaml.safe_dump({"probe": {"greeting": "lab default"}}))
    snapshots = {
        name: str(write_snapshot(machine, base / "topology" / name))
        for name, machine in (("1950x", THREADRIPPER_1950X), ("2990wx", THREADRIPPER_2990WX))
    }
    condor = {
        "ws1": {"topology_root": snapshots["1950x"], "slots": {"policy": "numa"}},
        "ws2": {"topology_root": snapshots["1950x"], "slots": {"reserve_cores": 2}},
        "ws3": {"topology_root": snapshots["2990wx"], "slots": {"policy": "numa"}},
        "ws4": {"topology_root": snapshots["1950x"], "slots": {"policy": "single"}},
    }
    for minion in MINIONS:
        override = {"docroot": str(base / minion / "srv"), "unit_dir": str(base / minion / "u")}
        if minion == "ws3":
            override["greeting"] = "ws3 has its own greeting"
        data = {"probe": override, "htcondor": condor[minion]}
        (pillar / "hosts" / f"{minion}.sls").write_text(yaml.safe_dump(data))
    return {"base": base, "pillar": pillar, "suite": repo / "tests" / "harness_suite"}


@pytest.fixture(scope="module")
def master(salt_factories, paths, repo):
    # What `labsalt config` writes for a master, plus the probe formula's tree.
    conf = write_config(repo, paths["pillar"])
    labsalt_master = yaml.safe_load((conf / "master").read_text())
    overrides = {k: labsalt_master[k] for k in ("file_roots", "pillar_roots")}
    overrides["file_roots"]["base"].insert(0, str(paths["suite"] / "formulas"))
    factory = salt_factories.salt_master_daemon("fleet-master", overrides=overrides)
    with factory.started():
        yield factory


@pytest.fixture(scope="module")
def minions(master):
    factories = [
        master.salt_minion_daemon(m, overrides={"grains": {"lab_room": room}})
        for m, room in MINIONS.items()
    ]
    # Four minions start and stop side by side: fewer seconds of CI time.
    in_parallel([f.start for f in factories])
    try:
        yield factories
    finally:
        in_parallel([f.terminate for f in factories])


def in_parallel(calls):
    with concurrent.futures.ThreadPoolExecutor(len(calls)) as pool:
        for future in [pool.submit(call) for call in calls]:
            future.result()


@pytest.fixture(scope="module")
def salt(master, minions):
    cli = master.salt_cli(timeout=180)
    synced = cli.run("saltutil.sync_all", minion_tgt="ws*")
    assert synced.returncode == 0, synced
    assert all("modules.labsalt" in synced.data[m]["modules"] for m in MINIONS), synced.data
    return cli


def slot_context(high):
    """The slot plan handed to the slots.conf template in a rendered htcondor config."""
    for state in high.values():
        for args in state.values():
            for arg in args if isinstance(args, list) else []:
                if isinstance(arg, dict) and "slots" in arg.get("context", {}):
                    return arg["context"]["slots"]
    raise AssertionError(f"no slot plan in {sorted(high)}")


def ids(ret):
    return sorted(ret.data) if isinstance(ret.data, dict) else []


def test_grain_targeting_selects_the_room(salt):
    assert ids(salt.run("test.ping", "-G", minion_tgt="lab_room:b")) == ["ws3", "ws4"]
    assert ids(salt.run("test.ping", "-C", minion_tgt="G@lab_room:a and ws2")) == ["ws2"]


def test_topology_grains_from_sync_all_target_minions(salt):
    # _grains/topology.py reached the minions by sync_all; all four run on this
    # machine, so all four have its NUMA node count.
    nodes = salt.run("grains.get", "numa_nodes", minion_tgt="ws1").data
    assert isinstance(nodes, int) and nodes >= 1
    assert ids(salt.run("test.ping", "-G", minion_tgt=f"numa_nodes:{nodes}")) == sorted(MINIONS)
    assert ids(salt.run("test.ping", "-G", minion_tgt=f"numa_nodes:{nodes + 7}")) == []
    both = salt.run("test.ping", "-C", minion_tgt=f"G@numa_nodes:{nodes} and G@lab_room:b")
    assert ids(both) == ["ws3", "ws4"]


def test_workstation_slot_plans_follow_each_minions_pillar_and_topology(salt):
    # The HTCondor part of the workstation role, rendered on every minion with its
    # own pillar (policy, reserved cores) and its own topology snapshot.  Rendered,
    # not applied: the four minions share this machine.
    ret = salt.run("state.show_sls", "htcondor.config.file", minion_tgt="ws*")
    assert ret.returncode == 0, ret
    plans = {
        minion: [slot["cores"] for slot in slot_context(high)] for minion, high in ret.data.items()
    }
    assert plans == {
        "ws1": [8, 8],  # 1950X, numa: one slot per die
        "ws2": [6, 8],  # the same with two cores kept for the person at the desk
        "ws3": [8, 8, 8, 8],  # 2990WX: four dies with CPUs
        "ws4": [16],  # single: the whole machine in one slot
    }


def test_one_run_applies_per_minion_pillar(salt, paths):
    ret = salt.run("state.apply", "probe.config.file", "-G", minion_tgt="lab_room:*")
    assert ret.returncode == 0, ret
    assert ids(ret) == sorted(MINIONS)
    for minion, states in ret.data.items():
        assert all(s["result"] is True for s in states.values()), (minion, states)
        index = paths["base"] / minion / "srv" / "index.html"
        expected = "ws3 has its own greeting" if minion == "ws3" else "lab default"
        assert index.read_text() == expected + "\n"
    again = salt.run("state.apply", "probe.config.file", "-G", minion_tgt="lab_room:*")
    for minion, states in again.data.items():
        assert not any(s["changes"] for s in states.values()), minion


def test_parameters_are_merged_per_minion(salt):
    ret = salt.run("labsalt.mapdata", "probe", minion_tgt="ws*")
    greetings = {minion: data["greeting"] for minion, data in ret.data.items()}
    assert greetings == {
        "ws1": "lab default",
        "ws2": "lab default",
        "ws3": "ws3 has its own greeting",
        "ws4": "lab default",
    }
