"""
The fleet path: a real salt-master (pytest-salt-factories) serves labsalt's trees,
as ``labsalt config`` writes them for a master, to a real minion.  The custom
modules reach the minion by ``saltutil.sync_all`` and the probe formula is
applied with the minion's own pillar.  The probe's paths point into a temporary
directory, so this machine is not changed.
"""

import pytest
import yaml

from labsalt.config import write_config
from tests.support.states import assert_no_changes, assert_ok, changed

SUITE_PILLAR_TOP = "base:\n  'mm-probe':\n    - probe\n"


@pytest.fixture(scope="module")
def paths(tmp_path_factory, repo):
    base = tmp_path_factory.mktemp("master")
    pillar = base / "pillar"
    pillar.mkdir()
    (pillar / "top.sls").write_text(SUITE_PILLAR_TOP)
    probe = {
        "greeting": "hello from the master",
        "docroot": str(base / "srv"),
        "unit_dir": str(base / "units"),
        "port": 8282,
    }
    (pillar / "probe.sls").write_text(yaml.safe_dump({"probe": probe}))
    return {"base": base, "pillar": pillar, "suite": repo / "tests" / "harness_suite"}


@pytest.fixture(scope="module")
def master(salt_factories, paths, monkeypatch_module):
    monkeypatch_module.setenv("LABSALT_ROOT", str(paths["suite"]))
    conf = write_config(paths["suite"], paths["pillar"])
    labsalt_master = yaml.safe_load((conf / "master").read_text())
    overrides = {k: labsalt_master[k] for k in ("file_roots", "pillar_roots")}
    factory = salt_factories.salt_master_daemon("mm-master", overrides=overrides)
    with factory.started():
        yield factory


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.fixture(scope="module")
def minion(master):
    factory = master.salt_minion_daemon("mm-probe")
    with factory.started():
        yield factory


@pytest.fixture(scope="module")
def salt_cli(master):
    return master.salt_cli(timeout=120)


@pytest.fixture(scope="module")
def synced(salt_cli, minion):
    ret = salt_cli.run("saltutil.sync_all", minion_tgt=minion.id)
    assert ret.returncode == 0, ret
    return ret.data


def test_sync_all_brings_labsalt_modules_to_the_minion(synced):
    assert "modules.labsalt" in synced["modules"]


def test_mapdata_on_the_minion_reads_formulas_from_the_master(salt_cli, minion, synced, paths):
    ret = salt_cli.run("labsalt.mapdata", "probe", minion_tgt=minion.id)
    assert ret.returncode == 0, ret
    assert ret.data["greeting"] == "hello from the master"
    assert ret.data["package"] == "hello"  # from defaults.yaml on the master
    assert ret.data["docroot"] == str(paths["base"] / "srv")


def test_master_applies_the_formula_with_the_minions_pillar(salt_cli, minion, synced, paths):
    ret = salt_cli.run("state.apply", "probe.config.file", minion_tgt=minion.id)
    assert ret.returncode == 0, ret
    assert_ok(ret.data)
    assert len(changed(ret.data)) == 2
    assert (paths["base"] / "srv/index.html").read_text() == "hello from the master\n"
    unit = (paths["base"] / "units/labsalt-probe.service").read_text()
    assert f"--directory {paths['base'] / 'srv'} 8282" in unit

    again = salt_cli.run("state.apply", "probe.config.file", minion_tgt=minion.id)
    assert_no_changes(again.data)


def test_schema_errors_reach_the_master_as_one_line(salt_cli, minion, synced):
    ret = salt_cli.run(
        "state.apply", "probe.config.file", pillar={"probe": {"port": 0}}, minion_tgt=minion.id
    )
    assert ret.returncode != 0
    assert "probe:port: value 0 is below the minimum 1024" in str(ret.data)
