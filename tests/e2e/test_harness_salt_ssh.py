"""
Converge a throw-away host over salt-ssh with labsalt's CLI (the user's path):
a small formula in labsalt's layout (tests/harness_suite) whose parameters come
from the shared ``labsalt.mapdata`` merge, run on the master side as a salt-ssh
wrapper, with its pillar schema enforced before anything is applied.
"""

import urllib.request

import pytest

from tests.support import hosts
from tests.support.states import assert_no_changes, assert_ok, changed

SUITE = hosts.REPO / "tests" / "harness_suite"
PILLAR = SUITE / "pillar.example"


@pytest.fixture(scope="module")
def host(host_factory):
    host_factory.root = SUITE
    host_factory.pillar_dir = PILLAR
    return host_factory.start("probe1")


@pytest.fixture(scope="module")
def first_apply(host):
    return host.apply("probe", pillar={"probe": {"port": 8181}})


def _get(host, port):
    with urllib.request.urlopen(f"http://{host.addr}:{port}/", timeout=10) as reply:
        return reply.read().decode()


def test_apply_converges_the_host(host, first_apply):
    states = assert_ok(first_apply)
    assert len(changed(first_apply)) == 4, states
    # The package came from Debian through the harness's apt proxy.
    assert host.run("hello").stdout.strip() == "Hello, world!"
    # Parameters: defaults.yaml < pillar file < pillar= override.
    unit = host.path("/etc/systemd/system/labsalt-probe.service").read_text()
    assert "--directory /srv/probe 8181" in unit
    assert host.run("systemctl", "is-enabled", "labsalt-probe").stdout.strip() == "enabled"
    assert host.run("systemctl", "is-active", "labsalt-probe").stdout.strip() == "active"
    # The service really serves the pillar's greeting, seen from this machine.
    assert _get(host, 8181) == "hello from the pillar\n"


def test_second_apply_changes_nothing(host, first_apply):
    assert_no_changes(host.apply("probe", pillar={"probe": {"port": 8181}}))


def test_test_mode_predicts_and_changes_nothing(host, first_apply):
    before = host.path("/srv/probe/index.html").read_text()
    ret = host.apply("probe", pillar={"probe": {"port": 8181, "greeting": "new"}}, test=True)
    predicted = {v["__id__"]: v for v in ret.values() if v["result"] is None}
    assert set(predicted) == {"probe-config-index"}
    assert host.path("/srv/probe/index.html").read_text() == before
    assert _get(host, 8181) == before


def test_schema_error_names_the_key_and_applies_nothing(host, first_apply):
    with pytest.raises(hosts.ApplyError) as error:
        host.apply("probe", pillar={"probe": {"port": 80, "greeting": "x"}})
    assert "probe:port: value 80 is below the minimum 1024" in str(error.value)
    assert _get(host, 8181) == "hello from the pillar\n"


def test_mapdata_runs_on_the_master_side(host, first_apply):
    # The formula's parameter files exist only on this machine: the wrapper reads
    # them here and merges the host's own grains and pillar.
    layers = host.call("labsalt.layers", "probe")
    assert [layer["source"] for layer in layers][:2] == ["defaults.yaml", "pillar probe:lookup"]
    assert not host.run("find", "/", "-xdev", "-path", "*probe/parameters*").stdout
    merged = host.call("labsalt.mapdata", "probe")
    assert merged == {
        "package": "hello",
        "port": 8080,
        "docroot": "/srv/probe",
        "unit_dir": "/etc/systemd/system",
        "greeting": "hello from the pillar",
    }


def test_custom_modules_are_shipped_to_the_host(host, first_apply):
    # salt-ssh ships _modules/ to the target with the thin; states executed there use them.
    found = host.run("find", "/var/tmp", "-path", "*extmods/modules/labsalt.py").stdout
    assert found.strip()
