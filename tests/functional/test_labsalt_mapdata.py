"""labsalt.mapdata through Salt's loaders: layer order, schema errors, and a real apply."""

import pytest
from salt.exceptions import SaltInvocationError

from labsalt.loader import ext_dir
from tests.conftest import REPO
from tests.support.states import assert_no_changes, assert_ok, changed

DATA = REPO / "tests" / "data"


@pytest.fixture(scope="module")
def pillar_dir():
    return DATA / "pillar"


@pytest.fixture(scope="module")
def minion_config_overrides():
    return {
        "file_roots": {"base": [str(DATA / "formulas")]},
        "module_dirs": [str(ext_dir("modules"))],
    }


def test_layers_in_template_formula_order(modules):
    sources = [layer["source"] for layer in modules.labsalt.layers("sample")]
    assert sources[0] == "defaults.yaml"
    assert "os_family/Debian.yaml" in sources
    assert sources.index("os_family/Debian.yaml") < sources.index("pillar sample:lookup")
    assert sources.index("pillar sample:lookup") < sources.index("pillar sample")


def test_mapdata_merges_grains_lookup_and_pillar(modules):
    data = modules.labsalt.mapdata("sample")
    assert data == {
        "path": "/tmp/labsalt-sample.conf",
        "greeting": "from-lookup",
        "family": "debian",
        "slots": {"policy": "l3", "reserve_cores": 0},
    }


def test_unknown_formula_is_one_clear_error(modules):
    with pytest.raises(SaltInvocationError, match="unknown formula 'nosuch'"):
        modules.labsalt.mapdata("nosuch")


def test_bad_pillar_fails_the_render_and_runs_nothing(modules, tmp_path):
    target = tmp_path / "sample.conf"
    ret = modules.state.apply(
        "sample", pillar={"sample": {"path": str(target), "slots": {"policy": "numaa"}}}
    )
    errors = ret.raw
    assert isinstance(errors, list), errors
    assert any("sample:slots:policy: 'numaa' is not one of numa, l3, single" in e for e in errors)
    assert not target.exists()


@pytest.mark.parametrize("test_mode", [True, False])
def test_apply_is_honest_in_test_mode_and_idempotent(modules, tmp_path, test_mode):
    target = tmp_path / "sample.conf"
    pillar = {"sample": {"path": str(target)}}
    ret = modules.state.apply("sample", pillar=pillar, test=test_mode)
    assert_ok(ret)
    assert len(changed(ret)) == 1  # predicted or made
    if test_mode:
        assert not target.exists()
        return
    assert target.read_text() == "greeting=from-lookup\npolicy=l3\nfamily=debian\n"
    assert_no_changes(modules.state.apply("sample", pillar=pillar))


# --------------------------------------------------------------------------- pre-check


def test_check_formulas_of_named_states_shows_masked_mapdata(modules, minion_id):
    ret = modules.labsalt.check_formulas(states="sample.config,sample", show=True)
    assert ret["errors"] == []
    assert ret["formulas"] == {minion_id: ["sample"]}
    assert ret["mapdata"]["sample"] == modules.labsalt.mapdata("sample")


def test_render_rejects_what_the_schema_rejects(modules):
    # the render runs the same mapdata merge and schema as check_formulas
    bad = {"sample": {"path": "relative/path"}}
    ret = modules.state.apply("sample", pillar=bad, test=True)
    render_errors = " ".join(ret.raw) if isinstance(ret.raw, list) else str(ret.raw)
    assert "sample:path: 'relative/path' is not an absolute path" in render_errors


def test_roles_schema_knows_the_top_files_roles():
    # formulas/top.sls of the suite: every role and skippable formula it names
    import importlib.util  # noqa: PLC0415

    spec = importlib.util.spec_from_file_location("labsalt_mod", REPO / "_modules" / "labsalt.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.__opts__ = {"file_roots": {"base": [str(REPO / "formulas")]}, "file_client": "local"}
    schema = module.roles_schema()
    assert "workstation" in schema["keys"]["roles"]["items"]["one_of"]
    assert "htcondor" in schema["keys"]["skip"]["items"]["one_of"]
    assert module.check_schema({"roles": ["workstaton"]}, schema, "labsalt") == [
        "labsalt:roles:0: 'workstaton' is not one of "
        + ", ".join(schema["keys"]["roles"]["items"]["one_of"])
    ]
