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

MINIONS = {"ws1": "a", "ws2": "a", "ws3": "b", "ws4": "b"}  # minion id -> lab room grain


@pytest.fixture(scope="module")
def paths(tmp_path_factory, repo):
    base = tmp_path_factory.mktemp("fleet-master")
    pillar = base / "pillar"
    (pillar / "hosts").mkdir(parents=True)
    top = {"base": {"*": ["probe"], **{m: [f"hosts.{m}"] for m in MINIONS}}}
    (pillar / "top.sls").write_text(yaml.safe_dump(top))
    (pillar / "probe.sls").write_text(yaml.safe_dump({"probe": {"greeting": "lab default"}}))
    for minion in MINIONS:
        override = {"docroot": str(base / minion / "srv"), "unit_dir": str(base / minion / "u")}
        if minion == "ws3":
            override["greeting"] = "ws3 has its own greeting"
        (pillar / "hosts" / f"{minion}.sls").write_text(yaml.safe_dump({"probe": override}))
    return {"base": base, "pillar": pillar, "suite": repo / "tests" / "harness_suite"}


@pytest.fixture(scope="module")
def master(salt_factories, paths):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LABSALT_ROOT", str(paths["suite"]))
        conf = write_config(paths["suite"], paths["pillar"])
    labsalt_master = yaml.safe_load((conf / "master").read_text())
    overrides = {k: labsalt_master[k] for k in ("file_roots", "pillar_roots")}
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


def ids(ret):
    return sorted(ret.data) if isinstance(ret.data, dict) else []


def test_grain_targeting_selects_the_room(salt):
    assert ids(salt.run("test.ping", "-G", minion_tgt="lab_room:b")) == ["ws3", "ws4"]
    assert ids(salt.run("test.ping", "-C", minion_tgt="G@lab_room:a and ws2")) == ["ws2"]


def test_labsalt_grains_are_visible_to_the_master(salt, repo):
    grain_modules = sorted(p.stem for p in (repo / "_grains").glob("*.py"))
    if not grain_modules:
        pytest.skip("no labsalt grain modules in _grains/ yet")
    grains = salt.run("grains.items", minion_tgt="ws1").data
    # Every minion synced the same grain modules, so a grain they all have
    # selects all four (grains of this one machine are the same for all).
    labsalt_keys = sorted(k for k in grains if any(k.startswith(m) for m in grain_modules))
    assert labsalt_keys, f"no grain from {grain_modules} in {sorted(grains)}"
    key = labsalt_keys[0]
    value = grains[key]
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        assert ids(salt.run("test.ping", "-G", minion_tgt=f"{key}:{value}")) == sorted(MINIONS)


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
