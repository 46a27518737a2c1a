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
