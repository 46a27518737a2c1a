"""
The htcondor formula applied over salt-ssh to a throw-away Debian 12 host that plans
for a Threadripper 1950X (its sysfs snapshot copied into the host, passed as
htcondor:topology_root).  HTCondor's upstream repository is out of reach here, so
the host gets HTCondor's parser the way ``pip install htcondor`` would install it
(the bindings copied from this test environment) and the config sub-states run.
"""

import base64
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.support import states, sysfs_snapshot

SNAPSHOT = "/srv/topology/threadripper-1950x"
PILLAR = {"htcondor": {"topology_root": SNAPSHOT}}
SLOTS = "/etc/condor/config.d/50-labsalt-slots.conf"
ENVIRONMENT = "/etc/condor/config.d/50-labsalt-environment.conf"
WRAPPER = "/usr/local/libexec/labsalt/condor-job-wrapper"
SITE = "/usr/local/lib/python3.11/dist-packages"
STATES = ("htcondor.config.file", "htcondor.service.running")


def _copy(host, sources, dest):
    """Copy local directories into the host under ``dest`` (tar over the command's stdin)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for source in sources:
            tar.add(source, arcname=Path(source).name)
    payload = base64.b64encode(buf.getvalue()).decode()
    host.run("sh", "-c", f"mkdir -p {dest} && base64 -d | tar -xzf - -C {dest}", input=payload)


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory):
    base = tmp_path_factory.mktemp("snapshot")
    return sysfs_snapshot.write_snapshot(
        sysfs_snapshot.THREADRIPPER_1950X, base / "threadripper-1950x"
    )


@pytest.fixture(scope="module")
def host(host_factory, snapshot):
    import htcondor2  # noqa: PLC0415  (the tests extra provides it)

    site = Path(htcondor2.__file__).resolve().parents[1]
    host = host_factory.start("condor")
    _copy(host, [site / n for n in ("htcondor2", "htcondor.libs", "classad2", "classad3")], SITE)
    _copy(host, [snapshot], str(Path(SNAPSHOT).parent))
    host.run("python3", "-c", "import htcondor2")
    return host


@pytest.fixture(scope="module")
def first_apply(host):
    return host.apply(*STATES, pillar=PILLAR)


def host_params(host, path, names):
    code = (
        "import json, sys, htcondor2\n"
        "print(json.dumps({n: htcondor2.param.get(n) for n in sys.argv[1:]}))"
    )
    done = host.run("env", f"CONDOR_CONFIG={path}", "python3", "-c", code, *names)
    return json.loads(done.stdout)


def test_apply_writes_the_lab_notebooks_slots(host, first_apply):
    ret = states.assert_ok(first_apply)
    assert any(v["name"] == SLOTS and v["changes"] for v in ret.values())
    values = host_params(
        host,
        SLOTS,
        ["NUM_SLOTS", "ENFORCE_CPU_AFFINITY", "SLOT1_CPU_AFFINITY", "SLOT2_CPU_AFFINITY"],
    )
    assert values["NUM_SLOTS"] == "2"
    assert values["ENFORCE_CPU_AFFINITY"] == "True"
    assert {int(c) for c in values["SLOT1_CPU_AFFINITY"].split(",")} == {
        *range(8),
        *range(16, 24),
    }
    assert {int(c) for c in values["SLOT2_CPU_AFFINITY"].split(",")} == {
        *range(8, 16),
        *range(24, 32),
    }
    env = host_params(host, ENVIRONMENT, ["USER_JOB_WRAPPER", "SUBMIT_ALLOW_GETENV"])
    assert env == {"USER_JOB_WRAPPER": WRAPPER, "SUBMIT_ALLOW_GETENV": True}  # the default


def test_host_file_is_what_labsalt_topology_prints(host, first_apply, snapshot):
    states.assert_ok(first_apply)
    cli = subprocess.run(
        [sys.executable, "-m", "labsalt", "topology", "--root", str(snapshot), "--condor"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert host.path(SLOTS).read_text() == cli.stdout


def test_reconfig_only_when_htcondor_runs(first_apply):
    ret = states.results(first_apply)
    (reconfig,) = [v for v in ret.values() if v["name"] == "condor_reconfig"]
    assert reconfig["result"] is True
    assert not reconfig["changes"]
    assert "onlyif condition is false" in reconfig["comment"]


def test_job_wrapper_strips_binding_variables(host, first_apply):
    states.assert_ok(first_apply)
    done = host.run(
        "env",
        "OMPI_MCA_hwloc_base_binding_policy=numa",
        "I_MPI_PIN_DOMAIN=numa",
        "OMP_PROC_BIND=close",
        "KEEP_ME=1",
        WRAPPER,
        "env",
    )
    names = {line.split("=", 1)[0] for line in done.stdout.splitlines()}
    assert "KEEP_ME" in names
    assert not names & {"OMPI_MCA_hwloc_base_binding_policy", "I_MPI_PIN_DOMAIN", "OMP_PROC_BIND"}
    assert "removing environment variable I_MPI_PIN_DOMAIN" in done.stderr


def test_second_apply_changes_nothing(host, first_apply):
    states.assert_ok(first_apply)
    states.assert_no_changes(host.apply(*STATES, pillar=PILLAR))


def test_test_mode_predicts_and_changes_nothing(host, first_apply):
    states.assert_ok(first_apply)
    before = host.path(SLOTS).read_text()
    pillar = {"htcondor": {**PILLAR["htcondor"], "slots": {"policy": "l3"}}}
    ret = states.results(host.apply(*STATES, pillar=pillar, test=True))
    (slots,) = [v for v in ret.values() if v["name"] == SLOTS]
    assert slots["result"] is None
    assert "SLOT4_CPU_AFFINITY" in slots["changes"]["diff"]
    assert host.path(SLOTS).read_text() == before


def test_config_does_not_go_live_unchecked(host, first_apply):
    """Without HTCondor's parser on the host the checker fails and the live file stays."""
    states.assert_ok(first_apply)
    before = host.path(SLOTS).read_text()
    host.run("mv", f"{SITE}/htcondor2", "/root/htcondor2.away")
    try:
        pillar = {"htcondor": {**PILLAR["htcondor"], "slots": {"policy": "l3"}}}
        ret = states.results(host.apply(*STATES, pillar=pillar))
    finally:
        host.run("mv", "/root/htcondor2.away", f"{SITE}/htcondor2")
    (slots,) = [v for v in ret.values() if v["name"] == SLOTS]
    assert slots["result"] is False
    assert "no HTCondor configuration parser" in slots["comment"]
    assert host.path(SLOTS).read_text() == before
