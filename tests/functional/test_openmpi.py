"""
The openmpi formula applied for real into a temporary root (every path it
writes comes from its parameters), for fake machines: the policy from sysfs
snapshots (``topology_root``, what the formula reads while it renders), the
singleton patch's type from fake hwloc topologies (what the elfpatch state
reads when it runs): the rendered
files per topology and pillar, ompi_info reading the parameter file back, and
login and non-login shells seeing the policy (the temporary /etc/profile.d and
/etc/openmpi bind-mounted in a private mount namespace, so this machine's /etc
is never written).  With the singleton patch enabled, the formula patches a
copy of Debian's libopen-rte and a singleton MPI program binds to NUMA.
"""

import os
import shutil
import subprocess

import pytest

from tests.support import elfpatch_lab as lab
from tests.support import sysfs_snapshot
from tests.support.states import assert_no_changes, assert_ok, changed, failed, results

# The sysfs snapshot each fake hwloc topology corresponds to (NUMA nodes, L3).
SNAPSHOT_OF = {
    "die": sysfs_snapshot.TWO_NODES,
    "group": sysfs_snapshot.TWO_NODES,
    "package": sysfs_snapshot.TWO_NODES,
    "no-l3": sysfs_snapshot.TWO_NODES_NO_L3,
}


@pytest.fixture(scope="module", autouse=True)
def system_files_untouched():
    watched = [lab.SYSTEM_LIB, "/etc/openmpi/openmpi-mca-params.conf"]
    before = {str(p): lab.sha256(p) for p in watched}
    yield
    assert {str(p): lab.sha256(p) for p in watched} == before
    assert not os.path.exists("/etc/profile.d/labsalt-mpi.sh")


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("openmpi")


@pytest.fixture(scope="module")
def program(work):
    return lab.mpi_program(work)


@pytest.fixture(scope="module")
def topologies(work):
    kinds = {kind: lab.topology(work, kind) for kind in ("die", "group", "package")}
    kinds["no-l3"] = work / "topology-no-l3.xml"
    kinds["no-l3"].write_text(
        subprocess.run(
            ["lstopo-no-graphics", "--input", "pack:2 [numa] core:1 pu:1", "--of", "xml", "-"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    return kinds


@pytest.fixture(scope="module")
def snapshots(work):
    return {
        kind: sysfs_snapshot.write_snapshot(machine, work / "sysfs" / machine.name)
        for kind, machine in SNAPSHOT_OF.items()
    }


@pytest.fixture
def root(tmp_path):
    """A temporary root holding what openmpi-common installed in /etc/openmpi."""
    shutil.copytree("/etc/openmpi", tmp_path / "etc" / "openmpi")
    (tmp_path / "etc" / "profile.d").mkdir(parents=True)
    lab.library_copy(tmp_path / "lib")
    return tmp_path


def pillar_for(root, **settings):
    paths = {
        "profile_file": str(root / "etc/profile.d/labsalt-mpi.sh"),
        "mca_params_file": str(root / "etc/openmpi/openmpi-mca-params.conf"),
        "prte_params_file": str(root / "etc/openmpi/prte-mca-params.conf"),
        "checker": str(root / "usr/local/sbin/labsalt-check-mca-params"),
        "state_dir": str(root / "var/lib/labsalt/openmpi"),
    }
    patch = {
        "library": str(root / "lib" / "libopen-rte.so.40"),
        "backup_dir": str(root / "var/lib/labsalt/elfpatch"),
    }
    patch.update(settings.pop("singleton_patch", {}))
    return {"openmpi": dict(paths, singleton_patch=patch, **settings)}


def use_topology(monkeypatch, path):
    monkeypatch.setenv("HWLOC_XMLFILE", str(path))
    monkeypatch.setenv("HWLOC_THISSYSTEM", "1")


def lines(path_or_text):
    text = path_or_text if isinstance(path_or_text, str) else path_or_text.read_text()
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


CASES = {
    # topology, pillar, expected profile lines, expected policy lines in the MCA file
    "die-auto": (
        "die",
        {},
        [
            "export OMPI_MCA_hwloc_base_binding_policy=l3cache",
            "export OMPI_MCA_rmaps_base_mapping_policy=l3cache",
            "export I_MPI_PIN_DOMAIN=numa",
        ],
        ["hwloc_base_binding_policy = l3cache", "rmaps_base_mapping_policy = l3cache"],
    ),
    "die-patched": (
        "die",
        {"singleton_patch": {"enabled": True}},
        [
            "export OMPI_MCA_hwloc_base_binding_policy=numa",
            "export OMPI_MCA_rmaps_base_mapping_policy=numa",
            "export I_MPI_PIN_DOMAIN=numa",
        ],
        ["hwloc_base_binding_policy = numa", "rmaps_base_mapping_policy = numa"],
    ),
    "no-l3-auto": (
        "no-l3",
        {"intel_mpi": {"pin_domain": "auto"}},
        [
            "export OMPI_MCA_hwloc_base_binding_policy=socket",
            "export OMPI_MCA_rmaps_base_mapping_policy=socket",
            "export I_MPI_PIN_DOMAIN=socket",
        ],
        ["hwloc_base_binding_policy = socket", "rmaps_base_mapping_policy = socket"],
    ),
    "group-core-openmp": (
        "group",
        {
            "policy": "core",
            "mapping_policy": "numa",
            "intel_mpi": {"pin_domain": None},
            "openmp": {"OMP_PLACES": "cores", "OMP_PROC_BIND": "close"},
        },
        [
            "export OMPI_MCA_hwloc_base_binding_policy=core",
            "export OMPI_MCA_rmaps_base_mapping_policy=numa",
            "export OMP_PLACES=cores",
            "export OMP_PROC_BIND=close",
        ],
        ["hwloc_base_binding_policy = core", "rmaps_base_mapping_policy = numa"],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_rendered_files_per_topology(  # noqa: PLR0917  (pytest fixtures)
    modules, monkeypatch, topologies, snapshots, root, case
):
    kind, settings, profile, policy = CASES[case]
    use_topology(monkeypatch, topologies[kind])
    pillar = pillar_for(root, topology_root=str(snapshots[kind]), **settings)
    mca = root / "etc/openmpi/openmpi-mca-params.conf"
    pristine = mca.read_text()

    predicted = modules.state.apply("openmpi", pillar=pillar, test=True).raw
    assert_ok(predicted)
    assert {"openmpi-profile", "openmpi-mca-params"} <= {
        k.split("_|-")[1] for k in changed(predicted)
    }
    assert not (root / "etc/profile.d/labsalt-mpi.sh").exists()
    assert mca.read_text() == pristine

    assert_ok(modules.state.apply("openmpi", pillar=pillar).raw)
    assert lines(root / "etc/profile.d/labsalt-mpi.sh") == profile
    # Debian's lines and comments as they were, then labsalt's block
    assert mca.read_text().startswith(pristine.rstrip("\n") + "\n")
    assert lines(mca) == lines(pristine) + policy
    assert not (root / "etc/openmpi/prte-mca-params.conf").exists()
    assert_no_changes(modules.state.apply("openmpi", pillar=pillar).raw)


def test_openmpi5_gets_prrte_names(modules, monkeypatch, topologies, snapshots, root):
    use_topology(monkeypatch, topologies["package"])
    mca = root / "etc/openmpi/openmpi-mca-params.conf"
    pristine = mca.read_text()
    pillar = pillar_for(
        root, topology_root=str(snapshots["package"]), openmpi_major=5, policy="socket"
    )
    assert_ok(modules.state.apply("openmpi", pillar=pillar).raw)
    assert lines(root / "etc/openmpi/prte-mca-params.conf") == [
        "hwloc_default_binding_policy = package",
        "rmaps_default_mapping_policy = package",
    ]
    profile = lines(root / "etc/profile.d/labsalt-mpi.sh")
    assert "export PRTE_MCA_hwloc_default_binding_policy=package" in profile
    assert not [line for line in profile if "OMPI_MCA" in line]
    assert mca.read_text() == pristine


def test_params_file_parsed_back_by_ompi_info(modules, monkeypatch, topologies, snapshots, root):
    use_topology(monkeypatch, topologies["die"])
    pillar = pillar_for(
        root,
        topology_root=str(snapshots["die"]),
        policy="numa",
        mca_params={"mpi_param_check": "0"},
    )
    assert_ok(modules.state.apply("openmpi", pillar=pillar).raw)
    mca = root / "etc/openmpi/openmpi-mca-params.conf"
    out = subprocess.run(
        ["ompi_info", "--parsable", "--level", "9", "--param", "all", "all"],
        env=dict(os.environ, OMPI_MCA_mca_param_files=str(mca)),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    number = {line.split(" = ")[0]: n for n, line in enumerate(mca.read_text().splitlines(), 1)}
    for name, value in (
        ("hwloc_base_binding_policy", "numa"),
        ("rmaps_base_mapping_policy", "numa"),
        ("mpi_param_check", "false"),
    ):
        assert f":param:{name}:value:{value}\n" in out
        assert f":param:{name}:source:file ({mca}:{number[name]})" in out


def test_checker_refuses_unknown_parameter(modules, monkeypatch, topologies, snapshots, root):
    use_topology(monkeypatch, topologies["die"])
    mca = root / "etc/openmpi/openmpi-mca-params.conf"
    pristine = mca.read_text()
    pillar = pillar_for(
        root, topology_root=str(snapshots["die"]), mca_params={"hwloc_base_bindng_policy": "numa"}
    )
    ret = modules.state.apply("openmpi", pillar=pillar).raw
    bad = {k: v for k, v in ret.items() if v["result"] is False}
    # verify does not run on a configuration that did not go live
    assert by_id(ret)["openmpi-verify"]["comment"].startswith("One or more requisite failed")
    bad.pop(next(k for k in bad if "openmpi-verify" in k))
    assert [k.split("_|-")[1] for k in bad] == ["openmpi-mca-params"]
    assert "OpenMPI has no MCA parameter hwloc_base_bindng_policy" in str(bad)
    assert mca.read_text() == pristine


def test_bad_pillar_is_one_clear_error(modules, root):
    ret = modules.state.apply("openmpi", pillar=pillar_for(root, policy="numaa")).raw
    assert isinstance(ret, list)
    assert any("openmpi:policy: 'numaa' is not one of auto, numa" in e for e in ret), ret
    ret = modules.state.apply("openmpi", pillar=pillar_for(root, openmp={"OMP_X": "1\n"})).raw
    assert any("openmpi:openmp:OMP_X: '1\\n' holds a newline" in e for e in ret), ret
    ret = modules.state.apply("openmpi", pillar=pillar_for(root, openmp={"PATH": "cores"})).raw
    assert any("openmpi:openmp:PATH: not an OpenMP variable" in e for e in ret), ret
    assert not (root / "etc/profile.d/labsalt-mpi.sh").exists()


def in_namespace(root, script):
    """Run ``script`` with root's /etc/profile.d and /etc/openmpi bind-mounted over /etc's."""
    binds = " && ".join(
        f"mount --bind {root / 'etc' / d} /etc/{d}" for d in ("profile.d", "openmpi")
    )
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", f"{binds} && {script}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_login_and_non_login_shells_see_the_policy(  # noqa: PLR0917  (pytest fixtures)
    modules, monkeypatch, topologies, snapshots, root, program
):
    """The patched setup end to end: policy numa, singleton patch on, fake Die topology."""
    use_topology(monkeypatch, topologies["die"])
    mca = root / "etc/openmpi/openmpi-mca-params.conf"
    pristine = mca.read_text()
    pillar = pillar_for(
        root, topology_root=str(snapshots["die"]), singleton_patch={"enabled": True}
    )
    ret = modules.state.apply("openmpi", pillar=pillar).raw
    assert_ok(ret)
    patch = next(v for k, v in ret.items() if "openmpi-singleton-numa-patch" in k)
    assert patch["changes"]["bytes"] == {"old": "0d", "new": "13"}
    assert_no_changes(modules.state.apply("openmpi", pillar=pillar).raw)

    clean_env = (
        f"env -i PATH=/usr/bin:/bin HOME=/root HWLOC_XMLFILE={topologies['die']} "
        "HWLOC_THISSYSTEM=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1"
    )
    login = in_namespace(
        root, f"{clean_env} bash -lc 'echo $OMPI_MCA_hwloc_base_binding_policy $I_MPI_PIN_DOMAIN'"
    )
    assert login.stdout.split() == ["numa", "numa"], login.stderr

    query = "ompi_info --parsable --level 9 --param hwloc base | grep binding_policy:"
    non_login = in_namespace(
        root, f"{clean_env} bash -c 'echo env=[$OMPI_MCA_hwloc_base_binding_policy]; {query}'"
    )
    assert "env=[]" in non_login.stdout  # profile.d is not read ...
    assert ":hwloc_base_binding_policy:value:numa" in non_login.stdout  # ... the file is
    conf = "/etc/openmpi/openmpi-mca-params.conf"
    assert f":hwloc_base_binding_policy:source:file ({conf}:" in non_login.stdout

    # mpirun in a non-login shell maps and binds one rank per NUMA node
    mpirun = in_namespace(root, f"{clean_env} bash -c 'mpirun -np 2 {program}'")
    assert sorted(mpirun.stdout.split("\n")[:2]) == ["affinity: 0", "affinity: 1"], mpirun.stderr

    # a singleton (no mpirun) in a non-login shell, on the patched library
    libdir = root / "lib"
    single = in_namespace(root, f"{clean_env} LD_LIBRARY_PATH={libdir} bash -c {program}")
    assert (single.returncode, single.stdout.strip()) == (0, "affinity: 0"), single.stderr
    unpatched = in_namespace(root, f"{clean_env} bash -c {program}")
    assert unpatched.returncode != 0

    # clean (package.clean would remove only what labsalt installed, nothing
    # here): library back to Debian's bytes, profile gone, Debian's file as it was
    cleaned = modules.state.apply("openmpi.singleton.clean,openmpi.config.clean", pillar=pillar)
    assert_ok(cleaned.raw)
    assert lab.sha256(libdir / "libopen-rte.so.40") == lab.sha256(lab.SYSTEM_LIB)
    assert not (root / "etc/profile.d/labsalt-mpi.sh").exists()
    assert mca.read_text() == pristine


HIDE_HWLOC = """
for f in /usr/bin/lstopo /usr/bin/lstopo-no-graphics /usr/bin/hwloc-ls; do
  [ -e "$f" ] && mount --bind /dev/null "$f"
done
exec "$@"
"""


def test_workstation_renders_and_predicts_without_hwloc():
    """
    Issue 14: on a host without hwloc (a fresh Debian 12), `labsalt apply --test`
    renders both workstation formulas and predicts; the singleton patch's hwloc
    type is left to the run.  hwloc's lstopo binaries are hidden in a private
    mount namespace (bind-mounted over by /dev/null, so nothing can run them).
    """
    import json  # noqa: PLC0415

    from tests.conftest import REPO  # noqa: PLC0415

    pillar = {"openmpi": {"singleton_patch": {"enabled": True}}}
    cmd = [str(REPO / ".venv" / "bin" / "labsalt"), "apply", "htcondor", "openmpi", "--test"]
    cmd += ["-q", "--out", "json", "--pillar-data", json.dumps(pillar)]
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", HIDE_HWLOC, "sh", *cmd],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    ret = json.loads(done.stdout)
    ret = next(iter(ret.values())) if len(ret) == 1 else ret
    assert isinstance(ret, dict), ret
    assert_ok(ret)
    by_id = {v["__id__"]: v for v in ret.values()}
    assert {"openmpi-mca-params", "htcondor-config-slots", "htcondor-package"} <= set(by_id)
    patch = by_id["openmpi-singleton-numa-patch"]
    assert patch["result"] is None
    assert "decided when the state runs, after hwloc is installed" in patch["comment"]
    assert shutil.which("lstopo-no-graphics")  # outside the namespace hwloc is still there


def by_id(ret):
    return {k.split("_|-")[1]: v for k, v in results(ret).items()}


def test_verify_reads_the_policy_back_and_names_a_site_override(
    modules, monkeypatch, topologies, snapshots, root
):
    """Issue 18: ompi_info reports the configured policy; a site line that overrides it fails."""
    use_topology(monkeypatch, topologies["die"])
    mca = root / "etc/openmpi/openmpi-mca-params.conf"
    pillar = pillar_for(root, topology_root=str(snapshots["die"]), policy="numa")
    predicted = by_id(modules.state.apply("openmpi", pillar=pillar, test=True).raw)
    assert predicted["openmpi-verify"]["comment"].startswith("would check")
    assert not predicted["openmpi-verify"]["changes"]
    assert not (root / "etc/profile.d/labsalt-mpi.sh").exists()

    ret = by_id(modules.state.apply("openmpi", pillar=pillar).raw)
    assert ret["openmpi-verify"]["result"] is True
    assert ret["openmpi-verify"]["comment"] == "ompi_info reports binding policy numa"
    # verify runs after the file it reads is written
    assert ret["openmpi-verify"]["__run_num__"] > ret["openmpi-mca-params"]["__run_num__"]

    # the site adds a line after labsalt's block (OpenMPI takes the last one)
    mca.write_text(mca.read_text().rstrip("\n") + "\nhwloc_base_binding_policy = core\n")
    site = mca.read_text()
    line = len(site.splitlines())
    ret = modules.state.apply("openmpi", pillar=pillar).raw
    bad = failed(ret)
    assert [k.split("_|-")[1] for k in bad] == ["openmpi-verify"]
    (comment,) = [v["comment"] for v in bad.values()]
    assert comment == (
        "openmpi verify: ompi_info reports hwloc_base_binding_policy 'core' "
        f"(file ({mca}:{line})), not the configured 'numa'"
    )
    assert mca.read_text() == site  # nothing undone

    # turned off for this host in pillar
    pillar["openmpi"]["verify"] = {"enabled": False}
    assert_no_changes(modules.state.apply("openmpi", pillar=pillar).raw)


def test_verify_fails_when_a_singleton_cannot_bind_to_numa(
    modules, monkeypatch, topologies, snapshots, root
):
    """
    Issue 18, the lab notebook's check: with the patch, a singleton bound to
    numa starts.  Pillar pins the patch's type to Die; on a machine whose NUMA
    nodes sit in Packages (the fake topology changed under it) the patched
    library binds to an object that does not exist and the singleton aborts.
    """
    use_topology(monkeypatch, topologies["die"])
    pillar = pillar_for(
        root, topology_root=str(snapshots["die"]), singleton_patch={"enabled": True, "type": "Die"}
    )
    ret = by_id(modules.state.apply("openmpi", pillar=pillar).raw)
    assert ret["openmpi-verify"]["result"] is True, ret["openmpi-verify"]["comment"]
    assert "a singleton bound to numa starts (bound to CPUs 0)" in ret["openmpi-verify"]["comment"]
    assert ret["openmpi-verify"]["__run_num__"] > ret["openmpi-singleton-numa-patch"]["__run_num__"]

    use_topology(monkeypatch, topologies["package"])
    patched = lab.sha256(root / "lib" / "libopen-rte.so.40")
    ret = modules.state.apply("openmpi", pillar=pillar).raw
    bad = failed(ret)
    assert [k.split("_|-")[1] for k in bad] == ["openmpi-verify"]
    (comment,) = [v["comment"] for v in bad.values()]
    assert "\n" not in comment
    assert comment.startswith(
        "openmpi verify: a singleton MPI program bound to numa does not start "
        f"({root / 'lib' / 'libopen-rte.so.40'}): "
    )
    # OpenMPI's own words (which of its messages comes first varies)
    assert comment.endswith(
        ("Setting processor affinity failed failed", "error occurred in MPI_Init")
    )
    assert lab.sha256(root / "lib" / "libopen-rte.so.40") == patched  # nothing undone
