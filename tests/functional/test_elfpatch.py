"""
elfpatch on Debian's real OpenMPI: a singleton MPI program bound to NUMA under
fake hwloc topologies (HWLOC_XMLFILE + HWLOC_THISSYSTEM=1), run against patched
copies of libopen-rte through LD_LIBRARY_PATH; the state through Salt's loaders;
salt-call's exit codes; a package reinstall in a temporary root; and a patch
process killed at each of its instrumented kill points.

The system's own /usr/lib/x86_64-linux-gnu/libopen-rte.so.40 is never written:
every test works on copies, and the module fixture checks its sha256 at the end.
"""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import elfpatch_lab as lab

RECIPE = lab.RECIPE

pytestmark = pytest.mark.skipif(
    not lab.SYSTEM_LIB.exists(), reason="Debian's libopenmpi3 is not installed"
)


@pytest.fixture(scope="module", autouse=True)
def system_library_untouched():
    before = lab.sha256(lab.SYSTEM_LIB)
    yield
    assert lab.sha256(lab.SYSTEM_LIB) == before, "the system's libopen-rte was modified"


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("elfpatch")


@pytest.fixture(scope="module")
def program(work):
    return lab.mpi_program(work)


@pytest.fixture(scope="module")
def topologies(work):
    return {kind: lab.topology(work, kind) for kind in ("die", "group")}


@pytest.fixture
def fake_topology(monkeypatch, topologies):
    """Point hwloc (lstopo, and OpenMPI's hwloc in child processes) at a fake machine."""

    def use(kind):
        monkeypatch.setenv("HWLOC_XMLFILE", str(topologies[kind]))
        monkeypatch.setenv("HWLOC_THISSYSTEM", "1")

    return use


def run_singleton(program, libdir=None, policy="numa"):
    env = dict(os.environ, OMPI_MCA_hwloc_base_binding_policy=policy)
    env.pop("LD_LIBRARY_PATH", None)
    if libdir:
        env["LD_LIBRARY_PATH"] = str(libdir)
    return subprocess.run(
        [str(program)], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def assert_binding_failed(proc):
    """
    MPI_Init aborted.  OpenMPI's "Setting processor affinity failed" text is
    lost now and then (its show_help relay races the abort), so it is not required.
    """
    assert proc.returncode != 0, proc.stdout
    assert "affinity:" not in proc.stdout
    assert "MPI_Init" in proc.stderr, proc.stderr


def test_original_library_fails_singleton_numa(program, fake_topology):
    fake_topology("die")
    assert_binding_failed(run_singleton(program))
    # the same program and topology without a binding policy runs, unbound
    control = run_singleton(program, policy="none")
    assert (control.returncode, control.stdout.strip()) == (0, "affinity: 0,1")


@pytest.mark.parametrize("kind", ["die", "group"])
def test_patched_copy_binds_to_numa_parent(modules, program, fake_topology, tmp_path, kind):
    fake_topology(kind)
    lib = lab.library_copy(tmp_path / "lib")
    done = modules.elfpatch.apply(str(lib), recipe=RECIPE, backup_dir=str(tmp_path / "bak"))
    # the value came from the (fake) live topology
    assert done["type"] == {"die": "Die", "group": "Group"}[kind]
    assert (done["old"], done["new"]) == ("0d", {"die": "13", "group": "0c"}[kind])
    proc = run_singleton(program, lib.parent)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # bound to the first NUMA node's single PU, not to the whole machine (0,1)
    assert proc.stdout.strip() == "affinity: 0"
    # the unpatched system library still fails in the same environment
    assert_binding_failed(run_singleton(program))


@pytest.mark.parametrize("case", [("die", "Group"), ("group", "Die")], ids=["die", "group"])
def test_wrong_parent_type_still_fails(modules, program, fake_topology, tmp_path, case):
    kind, wrong = case
    fake_topology(kind)
    lib = lab.library_copy(tmp_path / "lib")
    modules.elfpatch.apply(str(lib), recipe=RECIPE, value=wrong, backup_dir=str(tmp_path / "b"))
    assert_binding_failed(run_singleton(program, lib.parent))


def test_state_test_mode_idempotence_and_revert(states, fake_topology, tmp_path):
    fake_topology("die")
    lib = lab.library_copy(tmp_path / "lib")
    link = lib.parent / "libopen-rte.so.40"
    pristine = lab.sha256(lib)
    args = {"name": str(link), "recipe": RECIPE, "backup_dir": str(tmp_path / "bak")}

    predicted = states.elfpatch.patched(test=True, **args)
    assert predicted.result is None
    assert predicted.changes["bytes"] == {"old": "0d", "new": "13"}
    assert predicted.changes["sha256"]["old"] == pristine
    assert lab.sha256(lib) == pristine, "test=True must not write"
    assert not (tmp_path / "bak").exists()

    applied = states.elfpatch.patched(**args)
    assert applied.result is True
    assert applied.changes == predicted.changes
    assert lab.sha256(lib) == applied.changes["sha256"]["new"]
    assert link.is_symlink()

    again = states.elfpatch.patched(**args)
    assert again.result is True
    assert not again.changes

    reverted = states.elfpatch.reverted(**args)
    assert reverted.result is True
    assert reverted.changes["sha256"]["new"] == pristine == lab.sha256(lib)
    assert not states.elfpatch.reverted(**args).changes


def test_state_refuses_unknown_value(states, tmp_path):
    lib = lab.library_copy(tmp_path / "lib")
    data = bytearray(lib.read_bytes())
    data[0xA0E90] = 0x42  # where Debian 12's table starts
    lib.write_bytes(bytes(data))
    before = lab.sha256(lib)
    ret = states.elfpatch.patched(name=str(lib), recipe=RECIPE, value="Die")
    assert ret.result is False
    assert "holds 42, neither the original 0d nor a patched type" in ret.comment
    assert lab.sha256(lib) == before


# --------------------------------------------------------------------------- salt-call


@pytest.fixture(scope="module")
def salt_call(work):
    conf = subprocess.run(
        [str(Path(sys.executable).parent / "labsalt"), "config"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    salt_call_bin = str(Path(sys.executable).parent / "salt-call")

    def call(*args):
        return subprocess.run(
            [salt_call_bin, "-c", conf, "--local", "--out", "json", *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    return call


def test_salt_call_apply_revert_and_failures(salt_call, tmp_path, topologies):
    lib = lab.library_copy(tmp_path / "lib")
    pristine = lab.sha256(lib)
    env_xml = f"HWLOC_XMLFILE={topologies['group']}"
    os.environ["HWLOC_XMLFILE"], os.environ["HWLOC_THISSYSTEM"] = str(topologies["group"]), "1"
    try:
        ok = salt_call(
            "elfpatch.apply",
            str(lib.parent / "libopen-rte.so.40"),
            f"recipe={RECIPE}",
            f"backup_dir={tmp_path / 'bak'}",
        )
    finally:
        del os.environ["HWLOC_XMLFILE"], os.environ["HWLOC_THISSYSTEM"]
    assert ok.returncode == 0, ok.stderr
    assert '"new": "0c"' in ok.stdout, env_xml
    reverted = salt_call("elfpatch.revert", str(lib), f"backup_dir={tmp_path / 'bak'}")
    assert reverted.returncode == 0, reverted.stderr
    assert lab.sha256(lib) == pristine

    notes = tmp_path / "notes.txt"
    notes.write_text("hello\n")
    bad = salt_call("elfpatch.apply", str(notes), f"recipe={RECIPE}", "value=Die")
    assert bad.returncode != 0
    assert f"{notes} is not an ELF file" in bad.stdout + bad.stderr
    assert notes.read_text() == "hello\n"


# --------------------------------------------------------------------------- reinstall


@pytest.fixture(scope="module")
def libopenmpi3_deb():
    """The installed version's .deb, from apt's cache or downloaded from the Debian mirror."""
    version = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", "libopenmpi3"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    name = f"libopenmpi3_{version.replace(':', '%3a')}_amd64.deb"
    for cached in (Path("/var/cache/apt/archives") / name, lab.REPO / ".cache" / "debs" / name):
        if cached.is_file():
            return cached
    target = lab.REPO / ".cache" / "debs"
    target.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        ["apt-get", "download", f"libopenmpi3={version}"],
        cwd=target,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0 or not (target / name).is_file():
        pytest.skip(f"cannot get {name} from apt: {proc.stderr.strip()}")
    return target / name


def test_reinstall_is_noticed_and_patched_again(  # noqa: PLR0917 (fixtures)
    states, program, fake_topology, tmp_path, libopenmpi3_deb
):
    """`apt-get install --reinstall libopenmpi3` in a temporary root: dpkg unpacks the .deb."""
    fake_topology("die")
    root = tmp_path / "root"
    subprocess.run(["dpkg-deb", "-x", str(libopenmpi3_deb), str(root)], check=True)
    libdir = root / "usr/lib/x86_64-linux-gnu"
    link = libdir / "libopen-rte.so.40"
    packaged = lab.sha256(link)
    args = {"name": str(link), "recipe": RECIPE, "backup_dir": str(tmp_path / "bak")}
    env_dir = libdir

    first = states.elfpatch.patched(**args)
    assert first.result is True
    assert first.changes["sha256"]["old"] == packaged
    assert run_singleton(program, env_dir).returncode == 0
    assert not states.elfpatch.patched(**args).changes

    subprocess.run(["dpkg-deb", "-x", str(libopenmpi3_deb), str(root)], check=True)
    assert lab.sha256(link) == packaged
    assert_binding_failed(run_singleton(program, env_dir))
    again = states.elfpatch.patched(**args)
    assert again.result is True
    assert again.changes["sha256"] == first.changes["sha256"]
    assert run_singleton(program, env_dir).returncode == 0

    assert states.elfpatch.reverted(**args).result is True
    assert lab.sha256(link) == packaged == lab.sha256(lab.SYSTEM_LIB)


# --------------------------------------------------------------------------- atomicity


def _patch_process(elfpatch, lib, value, backups, stop_at):
    """
    A forked child (the module is already imported) that applies the patch and
    stops itself (SIGSTOP) at the kill point ``stop_at``; returns its pid.
    """
    pid = os.fork()
    if pid == 0:  # child: patch, exit without running pytest's cleanup
        status = 1
        try:
            os.environ[elfpatch.STOP_AT_VARIABLE] = stop_at
            elfpatch.apply(str(lib), RECIPE, value=value, backup_dir=str(backups))
            status = 0
        finally:
            os._exit(status)
    return pid


# Every kill point of one patch run with a fresh backup directory, in the order
# they are reached (the backup and its metadata first), and whether the
# library must hold the new bytes when the process dies there.  (A backup's
# dir-synced points are not reached in this sequence: once renamed, the next
# run finds the backup in place.)
KILL_POINTS = [
    ("locked", False),
    ("backup:temp-written", False),
    ("backup:synced", False),
    ("backup:renamed", False),
    ("backup-meta:temp-written", False),
    ("backup-meta:synced", False),
    ("backup-meta:renamed", False),
    ("library:temp-written", False),
    ("library:synced", False),
    ("library:renamed", True),
    ("library:dir-synced", True),
]


def test_killed_at_every_kill_point_leaves_old_or_new(tmp_path):
    """
    SIGKILL the patch process at each instrumented step (it stops itself there,
    LABSALT_ELFPATCH_STOP_AT): the library is never torn, the original is
    never lost, and the next run finishes the job.  No timers: the test waits
    for the process to stop, then kills it.
    """
    elfpatch = lab.load_module()
    lib = lab.library_copy(tmp_path / "lib")
    backups = tmp_path / "bak"
    original = lab.sha256(lib)
    for step, renamed in KILL_POINTS:
        value = "Group" if elfpatch.status(str(lib), RECIPE).get("type") == "Die" else "Die"
        old = lab.sha256(lib)
        new = elfpatch.plan(str(lib), RECIPE, value=value)["sha256"]["new"]
        pid = _patch_process(elfpatch, lib, value, backups, step)
        _, status = os.waitpid(pid, os.WUNTRACED)
        assert os.WIFSTOPPED(status), f"{step}: the run did not reach this kill point"
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        assert lab.sha256(lib) == (new if renamed else old), f"killed at {step}"
        state = elfpatch.status(str(lib), RECIPE)["state"]
        assert state == ("patched" if renamed or old != original else "original"), step
    # the backup of Debian's bytes survived every kill
    assert lab.sha256(backups / original) == original

    # a complete run afterwards removes temporary files left by killed runs
    value = "Group" if elfpatch.status(str(lib), RECIPE).get("type") == "Die" else "Die"
    elfpatch.apply(str(lib), RECIPE, value=value, backup_dir=str(backups))
    leftovers = [p.name for p in lib.parent.iterdir() if ".elfpatch-" in p.name]
    assert not leftovers
    assert elfpatch.revert(str(lib), backup_dir=str(backups))["sha256"]["new"] == lab.sha256(
        lab.SYSTEM_LIB
    )
