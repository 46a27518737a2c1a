"""
The htcondor formula applied over salt-ssh to a throw-away Debian 12 host that plans
for a Threadripper 1950X (its sysfs snapshot copied into the host, passed as
htcondor:topology_root).  HTCondor's upstream repository is out of reach here, so
the host gets HTCondor's parser the way ``pip install htcondor`` would install it
(the bindings copied from this test environment) and the config sub-states run.
The formula's package step is satisfied by a stand-in: a package named
``condor`` built here with dpkg-deb and installed before the formula runs (what
a site that already has HTCondor looks like to apt), with ``repo:manage: false``.
This proves the config and reconfig path and that the package step leaves an
installed HTCondor alone; it does not prove HTCondor's repository, key or real
package (tests/e2e/test_bare_hosts.py serves a signed repository for that).
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
PILLAR = {"htcondor": {"topology_root": SNAPSHOT, "repo": {"manage": False}}}
SLOTS = "/etc/condor/config.d/50-labsalt-slots.conf"
ENVIRONMENT = "/etc/condor/config.d/50-labsalt-environment.conf"
WRAPPER = "/usr/local/libexec/labsalt/condor-job-wrapper"
SITE = "/usr/local/lib/python3.11/dist-packages"
STATES = ("htcondor.config.file", "htcondor.service.running", "htcondor.verify.checked")
# HTCondor's condor_config_val for one name, read with HTCondor's own configuration
# parser (the bindings): the stand-in package has no binaries.  Same output as
# the real tool: the value on stdout, or "Not defined: NAME" on stderr and exit 1.
CONFIG_VAL = """#!/usr/bin/python3
# stand-in for HTCondor's condor_config_val (labsalt tests)
import sys
import htcondor2
value = htcondor2.param.get(sys.argv[1])
if value is None:
    sys.exit("Not defined: " + sys.argv[1])
print(value)
"""


def _copy(host, sources, dest):
    """Copy local directories into the host under ``dest`` (tar over the command's stdin)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for source in sources:
            tar.add(source, arcname=Path(source).name)
    payload = base64.b64encode(buf.getvalue()).decode()
    host.run("sh", "-c", f"mkdir -p {dest} && base64 -d | tar -xzf - -C {dest}", input=payload)


def standin_condor_deb(directory):
    """
    A package named ``condor`` (what HTCondor's repository calls it) holding only
    HTCondor's top-level config file that reads config.d, built with dpkg-deb.
    """
    root = Path(directory) / "condor-standin"
    (root / "DEBIAN").mkdir(parents=True, exist_ok=True)
    (root / "DEBIAN" / "control").write_text(
        "Package: condor\nVersion: 0.0~labsalt.standin\nArchitecture: all\n"
        "Maintainer: labsalt tests <root@localhost>\nSection: admin\nPriority: optional\n"
        "Description: stand-in for HTCondor in labsalt's tests\n"
        " Satisfies the htcondor formula's package step; no daemons.\n"
    )
    (root / "DEBIAN" / "conffiles").write_text("/etc/condor/condor_config\n")
    (root / "etc" / "condor" / "config.d").mkdir(parents=True, exist_ok=True)
    (root / "etc" / "condor" / "condor_config").write_text(
        "# stand-in for HTCondor's condor_config\nLOCAL_CONFIG_DIR = /etc/condor/config.d\n"
    )
    deb = Path(directory) / "condor-standin.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "--build", str(root), str(deb)],
        check=True,
        capture_output=True,
    )
    return deb


def install_standin(host, deb):
    payload = base64.b64encode(Path(deb).read_bytes()).decode()
    host.run("sh", "-c", "base64 -d > /root/condor.deb", input=payload)
    host.run("dpkg", "-i", "/root/condor.deb")
    host.run("rm", "/root/condor.deb")


def copy_bindings(host):
    """HTCondor's parser, as `pip install htcondor` puts it (copied from this environment)."""
    import htcondor2  # noqa: PLC0415  (the tests extra provides it)

    site = Path(htcondor2.__file__).resolve().parents[1]
    _copy(host, [site / n for n in ("htcondor2", "htcondor.libs", "classad2", "classad3")], SITE)
    host.run("python3", "-c", "import htcondor2")


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory):
    base = tmp_path_factory.mktemp("snapshot")
    return sysfs_snapshot.write_snapshot(
        sysfs_snapshot.THREADRIPPER_1950X, base / "threadripper-1950x"
    )


@pytest.fixture(scope="module")
def host(host_factory, snapshot, tmp_path_factory):
    host = host_factory.start("condor")
    install_standin(host, standin_condor_deb(tmp_path_factory.mktemp("deb")))
    copy_bindings(host)
    host.run(
        "sh",
        "-c",
        "cat > /usr/bin/condor_config_val && chmod 755 /usr/bin/condor_config_val",
        input=CONFIG_VAL,
    )
    _copy(host, [snapshot], str(Path(SNAPSHOT).parent))
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
    (reconfig,) = [v for v in ret.values() if v["__id__"] == "htcondor-service-reconfig"]
    assert reconfig["result"] is True
    assert not reconfig["changes"]
    assert "is not running; it reads the configuration when it starts" in reconfig["comment"]


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
    host.run("mv", "/usr/bin/condor_config_val", "/root/condor_config_val.away")
    try:
        pillar = {"htcondor": {**PILLAR["htcondor"], "slots": {"policy": "l3"}}}
        ret = states.results(host.apply(*STATES, pillar=pillar))
    finally:
        host.run("mv", "/root/htcondor2.away", f"{SITE}/htcondor2")
        host.run("mv", "/root/condor_config_val.away", "/usr/bin/condor_config_val")
    (slots,) = [v for v in ret.values() if v["name"] == SLOTS]
    assert slots["result"] is False
    assert "no HTCondor configuration parser" in slots["comment"]
    assert host.path(SLOTS).read_text() == before


def verify_state(ret):
    (verify,) = [v for v in states.results(ret).values() if v["__id__"] == "htcondor-verify"]
    return verify


def test_verify_reads_the_layout_back(first_apply):
    """Issue 18: condor_config_val reads the planned layout from the live configuration."""
    verify = verify_state(first_apply)
    assert verify["result"] is True
    assert verify["comment"] == "condor_config_val reads the planned layout back (2 slots, 9 names)"
    assert not verify["changes"]


def test_verify_names_a_site_setting_that_disagrees(host, first_apply):
    """A site file read after labsalt's re-pins slot 1: verify fails in one line, nothing undone."""
    states.assert_ok(first_apply)
    site = "/etc/condor/config.d/99-site.conf"
    host.run("sh", "-c", f"cat > {site}", input="SLOT1_CPU_AFFINITY = 0,1,2,3\n")
    before = host.path(SLOTS).read_text()
    try:
        ret = host.apply(*STATES, pillar=PILLAR)
        bad = states.failed(ret)
        assert [v["__id__"] for v in bad.values()] == ["htcondor-verify"]
        planned = ",".join(map(str, [*range(8), *range(16, 24)]))
        assert verify_state(ret)["comment"] == (
            "htcondor verify: condor_config_val reads SLOT1_CPU_AFFINITY as '0,1,2,3', "
            f"the plan says '{planned}'"
        )
        assert host.path(SLOTS).read_text() == before
        assert host.path(site).exists()
        # test mode runs nothing (it says what it would read); turned off per host in pillar
        predicted = verify_state(host.apply(*STATES, pillar=PILLAR, test=True))
        assert predicted["comment"].startswith("would read the layout of 2 slots back")
        off = {"htcondor": {**PILLAR["htcondor"], "verify": {"enabled": False}}}
        states.assert_no_changes(host.apply(*STATES, pillar=off))
    finally:
        host.run("rm", "-f", site)
