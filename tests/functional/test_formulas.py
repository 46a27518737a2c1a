"""Every formula has the shared layout and renders against the example pillar on this machine."""

import os
import shutil

import pytest
import yaml

from tests.conftest import FORMULAS, REPO

PILLAR_TOP = yaml.safe_load((REPO / "pillar.example" / "top.sls").read_text())


def _ipxe_trees(tmp_path):
    """ipxe refuses to render for installer trees that do not exist: give it the example's."""
    from tests.support import ipxe_tree  # noqa: PLC0415

    return {"ipxe": {"tftp": {"root": str(ipxe_tree.make_root(tmp_path))}}}


# Formulas whose render checks this machine's files get those files, in a temp
# tree, by a pillar override on top of pillar.example.
RENDER_SETUP = {"ipxe": _ipxe_trees}


# What OpenWRT's images start with (see tests/functional/test_eva.py): eva.validate
# refuses files that are missing or lack this magic, so the example's image paths
# get stand-ins of the right shape.
OPENWRT_HEAD = {"kernel": b"\x81\x12\xed\xfe", "filesystem": b"UBI#"}


@pytest.fixture(scope="module")
def pillar_dir(tmp_path_factory):
    """pillar.example, with fritzbox_openwrt's images pointing at stand-ins that exist."""
    root = tmp_path_factory.mktemp("pillar")
    tree = root / "pillar"
    shutil.copytree(REPO / "pillar.example", tree)
    sls = tree / "fritzbox_openwrt.sls"
    data = yaml.safe_load(sls.read_text())
    for role, size in (("kernel", 96 * 1024), ("filesystem", 320 * 1024)):
        image = root / os.path.basename(data["fritzbox_openwrt"][role])
        image.write_bytes(OPENWRT_HEAD[role] + os.urandom(size - len(OPENWRT_HEAD[role])))
        data["fritzbox_openwrt"][role] = str(image)
    sls.write_text(yaml.safe_dump(data))
    return tree


@pytest.mark.parametrize("formula", FORMULAS)
def test_layout(formula):
    root = REPO / "formulas" / formula
    for relpath in (
        "init.sls",
        "clean.sls",
        "README.md",
        "parameters/defaults.yaml",
        "parameters/schema.yaml",
    ):
        assert (root / relpath).is_file(), f"formulas/{formula}/{relpath} is missing"
    assert (REPO / "pillar.example" / f"{formula}.sls").is_file()
    listed = [sls for targets in PILLAR_TOP.values() for slss in targets.values() for sls in slss]
    assert formula in listed, f"pillar.example/top.sls does not list {formula}"


@pytest.mark.parametrize("formula", FORMULAS)
@pytest.mark.parametrize("sls", ["", ".clean"])
def test_renders_with_example_pillar(modules, formula, sls, tmp_path):
    setup = RENDER_SETUP.get(formula)
    pillar = setup(tmp_path) if setup else None
    ret = modules.state.show_sls(formula + sls, pillar=pillar)
    assert isinstance(ret, dict), f"{formula}{sls} failed to render: {ret}"
    assert ret, f"{formula}{sls} rendered no states"


@pytest.mark.parametrize("formula", FORMULAS)
def test_mapdata_matches_its_schema(modules, formula):
    data = modules.labsalt.mapdata(formula)
    assert isinstance(data, dict)
    assert data, f"{formula} has no parameters"


@pytest.mark.parametrize(
    ("labsalt", "present", "absent"),
    [
        ({"roles": ["workstation"], "skip": []}, {"htcondor", "openmpi"}, {"spindown"}),
        ({"roles": ["workstation"], "skip": ["htcondor"]}, {"openmpi"}, {"htcondor"}),
        ({"roles": ["nas", "dns"], "skip": []}, {"spindown", "bind_ad"}, {"htcondor"}),
    ],
)
def test_roles_and_skips_choose_the_formulas(modules, labsalt, present, absent):
    ret = modules.state.show_highstate(pillar={"labsalt": labsalt})
    assert isinstance(ret, dict), ret
    # Keys such as __extend__ (bind_ad extends its verify state) are not states.
    formulas = {
        chunk["__sls__"].split(".")[0] for key, chunk in ret.items() if not key.startswith("__")
    }
    assert present <= formulas
    assert not absent & formulas
