"""
Functional tests: Salt's real loaders in this process, pointed at labsalt's trees.

``modules``/``states`` are the execution and state modules with labsalt's custom
ones loaded, the formulas as the file root and ``pillar.example`` as the pillar.
States that would change this machine are applied with ``test=True`` here, or
into a throw-away host by the e2e tests.
"""

import pytest
from saltfactories.utils.functional import Loaders

from labsalt.loader import ext_dir
from tests.conftest import REPO


@pytest.fixture(scope="package")
def minion_id():
    return "labsalt-functional"


@pytest.fixture(scope="module")
def pillar_dir():
    """Override in a test module to use another pillar tree."""
    return REPO / "pillar.example"


@pytest.fixture(scope="module")
def minion_config_overrides():
    """Override in a test module for extra minion options."""
    return {}


@pytest.fixture(scope="module")
def minion_opts(salt_factories, minion_id, pillar_dir, minion_config_overrides, tmp_path_factory):
    extroot = tmp_path_factory.mktemp("extroot")
    for ext_type in ("modules", "states", "grains"):
        (extroot / f"_{ext_type}").symlink_to(ext_dir(ext_type))
    defaults = {
        "file_client": "local",
        "file_roots": {"base": [str(REPO / "formulas"), str(extroot)]},
        "pillar_roots": {"base": [str(pillar_dir)]},
        "module_dirs": [str(ext_dir("modules"))],
        "states_dirs": [str(ext_dir("states"))],
        "grains_dirs": [str(ext_dir("grains"))],
        "features": {"enable_slsvars_fixes": True},
    }
    factory = salt_factories.salt_minion_daemon(
        minion_id, defaults=defaults, overrides=minion_config_overrides
    )
    return factory.config.copy()


@pytest.fixture(scope="module")
def loaders(minion_opts):
    return Loaders(minion_opts, loaded_base_name=f"{__name__}.loaded")


@pytest.fixture(autouse=True)
def reset_loaders_state(loaders):
    try:
        yield
    finally:
        loaders.reset_state()


@pytest.fixture
def modules(loaders):
    return loaders.modules


@pytest.fixture
def states(loaders):
    return loaders.states
