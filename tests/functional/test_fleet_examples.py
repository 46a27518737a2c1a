"""
The fleet examples (examples/fleet) load with Salt's own loaders: the salt-cloud
provider/profiles/map for an OpenStack cloud, the salt-ssh roster, and the fleet
pillar that makes roles and per-host differences data.  No cloud is reachable
here, so the cloud files are checked as far as Salt's config loader goes.
"""

import re

import pytest
import salt.cloud
import salt.config
import salt.pillar
import salt.roster
import yaml

from tests.conftest import REPO

FLEET = REPO / "examples" / "fleet"
HOSTS = ["ws01", "ws02", "ws03", "ws04", "turn01"]


@pytest.fixture(scope="module")
def cloud_opts():
    return salt.config.cloud_config(str(FLEET / "cloud" / "cloud"))


def test_cloud_provider_is_an_openstack_provider(cloud_opts):
    assert list(cloud_opts["providers"]) == ["bwcloud"]
    provider = cloud_opts["providers"]["bwcloud"]["openstack"]
    assert provider["driver"] == "openstack"
    # The keys the OpenStack driver requires (cloud + region_name, credentials in clouds.yaml).
    configured = salt.config.is_provider_configured(
        cloud_opts, "bwcloud:openstack", ("cloud", "region_name")
    )
    assert configured and configured["cloud"] == "bwcloud"
    assert "password" not in str(provider)


def test_cloud_profiles_resolve(cloud_opts):
    profiles = cloud_opts["profiles"]
    assert set(profiles) == {"lab-workstation", "lab-turn"}
    for profile in profiles.values():
        assert profile["provider"] == "bwcloud:openstack"
        assert profile["image"] == "Debian 12"
        assert profile["deploy"] is False  # no salt-minion: labsalt uses salt-ssh
    assert profiles["lab-turn"]["size"] == "m1.small"  # extends lab-workstation, overrides size


def test_cloud_map_names_the_roster_hosts(cloud_opts):
    opts = dict(cloud_opts, map=str(FLEET / "cloud" / "lab.map"))
    mapped = salt.cloud.Map(opts).read()
    assert set(mapped) == {"lab-workstation", "lab-turn"}
    vms = [vm for profile in mapped.values() for vm in profile]
    assert sorted(vms) == sorted(HOSTS)


def test_roster_loads_with_salt_ssh_flat_roster(tmp_path):
    opts = salt.config.master_config(None)
    opts.update(roster_file=str(FLEET / "roster"), cachedir=str(tmp_path))
    targets = salt.roster.Roster(opts, "flat").targets("*", "glob")
    assert sorted(targets) == sorted(HOSTS)
    for entry in targets.values():
        assert entry["user"] == "debian" and entry["sudo"] is True


def fleet_pillar(host, tmp_path):
    """The pillar Salt compiles for ``host`` from examples/fleet/pillar."""
    opts = salt.config.minion_config(None)
    opts.update(
        id=host,
        file_client="local",
        pillar_roots={"base": [str(FLEET / "pillar")]},
        cachedir=str(tmp_path),
        saltenv="base",
        pillarenv=None,
    )
    grains = {"id": host, "os_family": "Debian"}
    pillar = salt.pillar.get_pillar(opts, grains, host, saltenv="base").compile_pillar()
    assert "_errors" not in pillar, pillar.get("_errors")
    return pillar


@pytest.mark.parametrize(
    ("host", "roles"),
    [
        ("ws01", ["workstation"]),
        ("ws03", ["workstation", "nas"]),
        ("ws04", ["workstation", "emu"]),
        ("turn01", ["turn"]),
    ],
)
def test_fleet_pillar_gives_each_host_its_roles(host, roles, tmp_path):
    assert fleet_pillar(host, tmp_path)["labsalt"]["roles"] == roles


@pytest.mark.parametrize("host", HOSTS)
def test_per_host_overrides_pass_the_formulas_schemas(host, tmp_path, modules):
    # Each formula's part of the host's pillar is what labsalt.mapdata merges
    # and checks; an override with a typo or a wrong value fails here.
    pillar = fleet_pillar(host, tmp_path)
    for formula, data in pillar.items():
        schema_file = REPO / "formulas" / formula / "parameters" / "schema.yaml"
        if formula == "labsalt" or not schema_file.is_file():
            continue
        schema = yaml.safe_load(schema_file.read_text())
        assert modules.labsalt.check_schema(data, schema, formula) == [], (host, formula)


def test_a_host_can_skip_one_formula_of_its_role(tmp_path, modules):
    pillar = fleet_pillar("ws04", tmp_path)
    assert pillar["labsalt"]["skip"] == ["htcondor"]
    ret = modules.state.show_highstate(pillar={"labsalt": pillar["labsalt"]})
    formulas = {chunk["__sls__"].split(".")[0] for chunk in ret.values()}
    assert {"openmpi", "ppc64_emulation"} <= formulas
    assert "htcondor" not in formulas


def test_overrides_reach_only_their_host(tmp_path):
    assert fleet_pillar("ws02", tmp_path)["htcondor"]["slots"] == {"reserve_cores": 2}
    ws03 = fleet_pillar("ws03", tmp_path)
    assert ws03["htcondor"]["slots"] == {"policy": "l3", "memory_cap_mb": 16384}
    assert ws03["spindown"]["disks"][0]["spindown_time"] == 241
    assert "htcondor" not in fleet_pillar("ws01", tmp_path)


def test_every_role_in_the_fleet_is_one_formulas_top_knows():
    top = yaml.safe_load((REPO / "formulas" / "top.sls").read_text())["base"]
    known = {m.group(1) for key in top if (m := re.match(r"I@labsalt:roles:(\w+)", key))}
    used = set()
    for path in (FLEET / "pillar").rglob("*.sls"):
        data = yaml.safe_load(path.read_text()) or {}
        used.update(data.get("labsalt", {}).get("roles", []))
    assert used <= known, f"roles without a formulas/top.sls entry: {used - known}"
