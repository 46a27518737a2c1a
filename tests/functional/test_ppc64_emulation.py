"""
ppc64_emulation applied for real on this machine: the binfmt_misc entry for
big-endian ppc64 with the F flag, then a static big-endian program built with
Debian's powerpc64-linux-gnu-gcc runs through it.

binfmt_misc is kernel-wide, so the module-scoped ``binfmt_snapshot`` fixture
records the registrations (and whether binfmt_misc was mounted) before the first
test and restores exactly that afterwards, even when a test fails.
"""

import os
import shutil
import subprocess

import pytest

from tests.conftest import REPO
from tests.support import binfmt_guard
from tests.support.states import assert_no_changes, assert_ok, changed

BINFMT = binfmt_guard.BINFMT
NAME = "qemu-ppc64"

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="binfmt_misc registration needs root"),
    pytest.mark.skipif(
        not shutil.which("powerpc64-linux-gnu-gcc"),
        reason="gcc-powerpc64-linux-gnu missing: scripts/install-deps ppc64_emulation",
    ),
]

BE_PROGRAM = r"""
#include <stdio.h>
#include <stdint.h>
int main(void) {
    union { uint32_t word; unsigned char bytes[4]; } probe = { 0x01020304 };
    printf("%s %d-bit\n", probe.bytes[0] == 1 ? "big-endian" : "little-endian",
           (int)(8 * sizeof(void *)));
    return 0;
}
"""


def _mounted():
    return binfmt_guard.mounted()


def _entries():
    return binfmt_guard.entries()


@pytest.fixture(scope="module")
def binfmt_snapshot():
    # binfmt_misc is this machine's and every throw-away host's: one test at a
    # time changes it (tests/support/binfmt_guard.py), and it is put back after.
    with binfmt_guard.locked():
        was_mounted, before = _mounted(), _entries()
        if not was_mounted:
            probe = subprocess.run(
                ["mount", "-t", "binfmt_misc", "binfmt_misc", BINFMT],
                capture_output=True,
                text=True,
                check=False,
            )
            if probe.returncode != 0:
                pytest.skip(
                    f"binfmt_misc cannot be mounted here ({probe.stderr.strip()}); "
                    "test_program_runs_under_qemu_directly covers the emulation itself"
                )
        try:
            yield before
        finally:
            binfmt_guard.restore(was_mounted, before)
        assert _mounted() == was_mounted and _entries() == before, "binfmt_misc not restored"


@pytest.fixture(scope="module")
def be_program(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("ppc64")
    (workdir / "be.c").write_text(BE_PROGRAM)
    subprocess.run(
        ["powerpc64-linux-gnu-gcc", "-static", "-O2", "-o", "be", "be.c"],
        cwd=workdir,
        check=True,
    )
    return workdir / "be"


@pytest.fixture(scope="module")
def pillar(tmp_path_factory):
    root = tmp_path_factory.mktemp("ppc64-emulation")
    return {
        "ppc64_emulation": {
            "binfmt": {"persist_dir": str(root / "binfmt.d")},
            "state_dir": str(root / "state"),
            "containers": {
                "recipe_dir": str(root / "recipes"),
                "images": {
                    "debian": {"suite": "sid", "packages": ["build-essential", "gdb"]},
                    "adelie": {"enabled": True, "rootfs_sha256": "ab" * 32},
                },
            },
        }
    }


def _record(pillar):
    return os.path.join(pillar["ppc64_emulation"]["state_dir"], f"binfmt-{NAME}.json")


def _sls(modules, state, pillar, test=False):
    """state.sls through the loader; the raw return (dict, or list of render errors)."""
    return modules.state.sls(state, pillar=pillar, test=test).raw


def _run_be(path):
    return subprocess.run([str(path)], capture_output=True, text=True, check=False, timeout=60)


def test_program_runs_under_qemu_directly(be_program):
    """The emulation without binfmt_misc: qemu-ppc64-static named on the command line."""
    proc = subprocess.run(
        ["qemu-ppc64-static", str(be_program)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "big-endian 64-bit", proc.stderr


def test_apply_registers_ppc64_and_runs_big_endian_binary(
    modules, binfmt_snapshot, be_program, pillar
):
    _sls(modules, "ppc64_emulation.clean", pillar)
    # Someone else's entry of that name (binfmt-support's) is left alone by clean;
    # the test starts without it (binfmt_snapshot puts it back afterwards).
    modules.binfmt.unregister(NAME)
    assert modules.ppc64_emulation.status()["registered"] is False

    predicted = assert_ok(_sls(modules, "ppc64_emulation", pillar, test=True))
    assert any("binfmt_|-ppc64-binfmt-entry" in key for key in changed(predicted))
    assert modules.ppc64_emulation.status()["registered"] is False, "test=True changed the kernel"

    ret = assert_ok(_sls(modules, "ppc64_emulation", pillar))
    entry = next(v for k, v in ret.items() if "ppc64-binfmt-entry" in k)
    assert entry["changes"]["new"]["flags"] == "PF"

    report = modules.ppc64_emulation.status()
    assert report["registered"] and report["enabled"] and report["fix_binary"]
    assert report["interpreter"] == "/usr/libexec/qemu-binfmt/ppc64-binfmt-P"

    # The kernel hands the ELF to qemu through binfmt_misc: no qemu on the command line.
    proc = _run_be(be_program)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "big-endian 64-bit"

    # F flag: the kernel opened qemu at registration, so a chroot without qemu works.
    jail = be_program.parent / "jail"
    jail.mkdir(exist_ok=True)
    shutil.copy(be_program, jail / "be")
    proc = subprocess.run(["chroot", str(jail), "/be"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and proc.stdout.strip() == "big-endian 64-bit", proc.stderr
    assert not (jail / "usr").exists()

    boot_file = os.path.join(pillar["ppc64_emulation"]["binfmt"]["persist_dir"], f"{NAME}.conf")
    with open(boot_file) as handle:
        line = handle.read().splitlines()[-1]
    assert line.startswith(f":{NAME}:M::\\x7f\\x45\\x4c\\x46\\x02\\x02") and line.endswith(":PF")

    assert_no_changes(_sls(modules, "ppc64_emulation", pillar))


def test_entry_from_binfmt_support_is_left_alone_or_replaced_and_restored(
    modules, binfmt_snapshot, pillar
):
    """
    Debian's binfmt-support registration of the same name: equal -> kept and left
    as binfmt-support's (clean does not remove it); without F -> replaced, and
    clean registers it again as it was.
    """
    _sls(modules, "ppc64_emulation.clean", pillar)
    modules.binfmt.mount()
    subprocess.run(["update-binfmts", "--enable", NAME], check=True, capture_output=True)
    assert modules.binfmt.entry(NAME)["flags"] == "PF"
    ret = assert_ok(_sls(modules, "ppc64_emulation.binfmt.registered", pillar))
    (entry,) = [v for k, v in ret.items() if "ppc64-binfmt-entry" in k]
    assert entry["changes"] == {} and "is registered (flags PF)" in entry["comment"]
    assert not os.path.exists(_record(pillar))
    ret = assert_ok(_sls(modules, "ppc64_emulation.binfmt.clean", pillar))
    (gone,) = [v for k, v in ret.items() if "ppc64-binfmt-entry-absent" in k]
    assert gone["changes"] == {} and "left alone" in gone["comment"]
    assert modules.binfmt.entry(NAME)["flags"] == "PF"

    # An entry without F (as older qemu-user-static packages registered it).
    modules.binfmt.unregister(NAME)
    debian = modules.labsalt.mapdata("ppc64_emulation")["binfmt"]
    modules.binfmt.register(NAME, debian["interpreter"], debian["magic"], debian["mask"], flags="P")
    theirs = modules.binfmt.entry(NAME)
    ret = assert_ok(_sls(modules, "ppc64_emulation.binfmt.registered", pillar))
    (change,) = [v["changes"] for k, v in ret.items() if "ppc64-binfmt-entry" in k]
    assert change["old"]["flags"] == "P" and change["new"]["flags"] == "PF"
    assert modules.ppc64_emulation.status()["fix_binary"] is True
    assert modules.binfmt.owned(_record(pillar))["previous"]["flags"] == "P"
    assert_ok(_sls(modules, "ppc64_emulation.binfmt.clean", pillar))
    assert modules.binfmt.entry(NAME) == theirs
    assert not os.path.exists(_record(pillar))
    modules.binfmt.unregister(NAME)


def test_clean_removes_registration(modules, binfmt_snapshot, be_program, pillar):
    modules.binfmt.unregister(NAME)  # nothing of anyone else's under this name
    assert_ok(_sls(modules, "ppc64_emulation", pillar))
    assert modules.binfmt.owned(_record(pillar)) == {"name": NAME, "previous": None}
    ret = assert_ok(_sls(modules, "ppc64_emulation.clean", pillar))
    assert changed(ret)
    assert modules.binfmt.entry(NAME) is None
    assert not os.path.exists(_record(pillar))
    assert not os.path.exists(pillar["ppc64_emulation"]["containers"]["recipe_dir"] + "/debian")
    # the directories labsalt created for recipes and the boot file go too, and its records
    assert not os.path.exists(pillar["ppc64_emulation"]["containers"]["recipe_dir"])
    assert not os.path.exists(pillar["ppc64_emulation"]["binfmt"]["persist_dir"])
    assert not os.path.exists(pillar["ppc64_emulation"]["state_dir"])
    with pytest.raises(OSError, match="Exec format error"):
        _run_be(be_program)
    assert_no_changes(_sls(modules, "ppc64_emulation.clean", pillar))


def test_sites_boot_file_and_other_entries_are_left_alone(modules, binfmt_snapshot, pillar):
    """A site's own /etc/binfmt.d file of that name and other registrations stay as they were."""
    modules.binfmt.unregister(NAME)
    boot = os.path.join(pillar["ppc64_emulation"]["binfmt"]["persist_dir"], f"{NAME}.conf")
    os.makedirs(os.path.dirname(boot), exist_ok=True)
    site = ":qemu-ppc64:M::\\x7f\\x45\\x4c\\x46:\\xff\\xff\\xff\\xff:/site/qemu:F\n"
    with open(boot, "w") as handle:
        handle.write(site)
    other = "labsalt-test-site-entry"
    modules.binfmt.register(other, "/usr/bin/qemu-ppc64-static", "\\x00\\x6c\\x61\\x62", flags="F")
    before = modules.binfmt.entry(other)
    try:
        assert_ok(_sls(modules, "ppc64_emulation", pillar))
        assert_ok(_sls(modules, "ppc64_emulation.clean", pillar))
        with open(boot) as handle:
            assert handle.read() == site
        assert modules.binfmt.entry(other) == before
        assert modules.binfmt.entry(NAME) is None
    finally:
        os.remove(boot)
        modules.binfmt.unregister(other)


@pytest.mark.parametrize(
    ("bad", "key"),
    [
        (
            {"binfmt": {"interpreter": "/usr/bin/qemu;touch /tmp/labsalt-pwned"}},
            "binfmt:interpreter",
        ),
        ({"binfmt": {"interpreter": "/usr/bin/qemu:x:y"}}, "binfmt:interpreter"),
        ({"binfmt": {"interpreter": "/usr/bin/../bin/qemu"}}, "binfmt:interpreter"),
        ({"binfmt": {"mask": "\\xff"}}, "binfmt: binfmt mask has 1 bytes"),
        ({"containers": {"recipe_dir": "/srv/../etc"}}, "containers:recipe_dir"),
        (
            {"containers": {"images": {"adelie": {"rootfs_url": "https://x/a;touch${IFS}/tmp/p"}}}},
            "containers:images:adelie:rootfs_url",
        ),
        (
            {"containers": {"images": {"adelie": {"enabled": True, "rootfs_sha256": ""}}}},
            "containers:images:adelie:rootfs_sha256",
        ),
        (
            {"containers": {"images": {"debian": {"mirror": "http://x/$(id)"}}}},
            "containers:images:debian:mirror",
        ),
    ],
)
def test_hostile_pillar_is_refused_before_anything(modules, binfmt_snapshot, pillar, bad, key):
    before = _entries()
    merged = modules.labsalt.deep_merge(pillar["ppc64_emulation"], bad)
    ret = _sls(modules, "ppc64_emulation", {"ppc64_emulation": merged}, test=True)
    text = str(ret)
    assert isinstance(ret, list) or "Rendering SLS" in text, ret
    assert f"ppc64_emulation:{key}" in text
    assert _entries() == before
    assert not os.path.exists("/tmp/labsalt-pwned") and not os.path.exists("/tmp/p")


def test_containerfile_quotes_values_for_the_shell(modules):
    """Second line behind the schema: a value that reached the writer stays one word."""
    with open(f"{REPO}/formulas/ppc64_emulation/files/adelie.Containerfile.jinja") as handle:
        template = handle.read()
    image = {
        "rootfs_url": "https://x/a.txz;touch /tmp/labsalt-pwned",
        "rootfs_sha256": "",
        "packages": ["build-base", "$(id)"],
    }
    text = modules.file.apply_template_on_contents(
        template, template="jinja", context={"image": image}, defaults={}, saltenv="base"
    )
    assert "wget -q -O /rootfs.txz 'https://x/a.txz;touch /tmp/labsalt-pwned'" in text
    assert "echo '  /rootfs.txz' | sha256sum -c -" in text  # an empty sum fails the build
    assert "apk add build-base '$(id)'" in text


def test_container_recipes_rendered_and_build_skipped_without_engine(
    modules, binfmt_snapshot, pillar
):
    ret = assert_ok(_sls(modules, "ppc64_emulation.containers.recipes", pillar, test=True))
    found = modules.ppc64_emulation.engine()
    builds = {k: v for k, v in ret.items() if "ppc64_emulation_|-ppc64-image" in k}
    assert len(builds) == 2
    if found["engine"] is None:
        for state in builds.values():
            assert state["result"] is True and not state["changes"]
            assert "not built: no working container engine" in state["comment"]
            assert found["reason"] in state["comment"]
    ret = assert_ok(_sls(modules, "ppc64_emulation.containers.recipes", pillar))
    recipes = pillar["ppc64_emulation"]["containers"]["recipe_dir"]
    with open(f"{recipes}/debian/Containerfile") as handle:
        debian = handle.read()
    with open(f"{recipes}/adelie/Containerfile") as handle:
        adelie = handle.read()
    assert "debootstrap --foreign --arch=ppc64" in debian
    assert "sid /rootfs http://ftp.ports.debian.org/debian-ports" in debian
    assert "apt-get install -y --no-install-recommends build-essential gdb" in debian
    assert "FROM --platform=linux/ppc64 scratch" in debian and "{{" not in debian
    assert f"echo '{'ab' * 32}  /rootfs.txz' | sha256sum -c -" in adelie
    assert "apk add build-base" in adelie and "{%" not in adelie


def test_entry_matching_native_binaries_is_refused(modules, binfmt_snapshot):
    """A magic that matches this machine's own ELF files would make every exec fail."""
    before = _entries()
    with pytest.raises(Exception, match="would also match this machine's own programs"):
        modules.binfmt.register("labsalt-test-any-elf", "/usr/bin/qemu-ppc64-static", "7f454c46")
    assert _entries() == before


def test_bad_pillar_is_refused_before_anything_changes(modules, binfmt_snapshot, pillar):
    before = _entries()
    bad = {"ppc64_emulation": {**pillar["ppc64_emulation"], "binfmt": {"flags": "PO"}}}
    ret = _sls(modules, "ppc64_emulation", bad)
    text = str(ret)
    assert isinstance(ret, list) or "Rendering SLS" in text, ret
    assert "ppc64_emulation:binfmt:flags" in text
    assert _entries() == before
