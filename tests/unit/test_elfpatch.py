"""
elfpatch on small shared objects assembled by gcc (tests/support/elfpatch_lab.py)
that carry OpenMPI's code in the shapes the recipes know, and the NUMA parent
read from hwloc topologies made by lstopo.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from salt.exceptions import CommandExecutionError, SaltInvocationError

from tests.support import elfpatch_lab as lab

SYMBOL = "orte_ess_base_proc_binding"
RECIPE = lab.RECIPE

elfpatch = lab.load_module()
topology = lab.load_topology()


@pytest.fixture
def backups(tmp_path):
    return str(tmp_path / "backups")


def _apply(path, backups, **kwargs):
    kwargs.setdefault("allow_unknown", True)
    return elfpatch.apply(str(path), RECIPE, backup_dir=backups, **kwargs)


def _table(path):
    """The four dwords of the referenced table and of the decoy copy, by file offset."""
    data = path.read_bytes()
    found = elfpatch.find(str(path), RECIPE)
    table = data[found["offset"] : found["offset"] + 16]
    decoy = data.find(bytes.fromhex("0d000000010000000600000005000000"))
    return table, decoy


@pytest.mark.parametrize("symtab", ["both", "symtab", "dynsym"])
def test_symbol_found_in_either_table(tmp_path, backups, symtab):
    lib = lab.build_so(tmp_path, "lib", symtab=symtab)
    tables = lab.symbol_tables(lib, SYMBOL)
    assert tables == {"both": {".symtab", ".dynsym"}, "symtab": {".symtab"}}.get(
        symtab, {".dynsym"}
    )
    info = elfpatch.status(str(lib), RECIPE)
    assert info["state"] == "original"
    assert info["symbol_table"] == (".dynsym" if symtab == "dynsym" else ".symtab")
    done = _apply(lib, backups, value="Die")
    assert (done["old"], done["new"]) == ("0d", "13")
    assert elfpatch.status(str(lib), RECIPE)["state"] == "patched"


def test_rip_relative_reference_patches_the_referenced_table_only(tmp_path, backups):
    lib = lab.build_so(tmp_path, "lib")
    before = lib.read_bytes()
    decoy_at = before.find(bytes.fromhex("0d000000010000000600000005000000"))
    info = elfpatch.find(str(lib), RECIPE)
    assert info["section"] == ".rodata"
    assert info["offset"] != decoy_at, "the fixture must have the table twice"
    assert before.count(bytes.fromhex("0d000000010000000600000005000000")) == 2
    _apply(lib, backups, value="Group")
    after = lib.read_bytes()
    assert after[info["offset"] : info["offset"] + 16] == bytes.fromhex(
        "0c000000010000000600000005000000"
    )
    assert after[decoy_at : decoy_at + 16] == before[decoy_at : decoy_at + 16]
    changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
    assert changed == [info["offset"]]
    # objdump agrees that the lea in the function points at the patched table
    dis = subprocess.run(
        ["objdump", "-d", "-M", "intel", str(lib)], capture_output=True, text=True, check=True
    ).stdout
    lea = next(line for line in dis.splitlines() if "lea" in line and "rip" in line)
    target = int(lea.split("#")[1].split()[0], 16)
    assert target == info["offset"], lea  # .rodata's file offset equals its address here


def test_seed_pattern_direct_site(tmp_path, backups):
    lib = lab.build_so(tmp_path, "seed", code="seed")
    info = elfpatch.status(str(lib), RECIPE)
    assert (info["build"], info["section"]) == ("ubuntu-20.04-openmpi-4.0.3", ".text")
    _apply(lib, backups, value=0x13)
    data = lib.read_bytes()
    assert bytes.fromhex("66 83 f8 03 0f 85 70 02 00 00 ba 13 00 00 00") in data
    assert bytes.fromhex("ba 0d 00 00 00") not in data


def test_pattern_not_unique(tmp_path, backups):
    lib = lab.build_so(tmp_path, "twice", copies=2)
    before = lab.sha256(lib)
    with pytest.raises(CommandExecutionError, match="not unique in orte_ess_base_proc_binding"):
        _apply(lib, backups, value="Die")
    assert lab.sha256(lib) == before


def test_pattern_absent(tmp_path, backups):
    lib = lab.build_so(tmp_path, "absent", code="absent")
    before = lab.sha256(lib)
    with pytest.raises(CommandExecutionError, match="no build of the recipe matches.*not found"):
        _apply(lib, backups, value="Die")
    assert lab.sha256(lib) == before


def test_missing_symbol(tmp_path, backups):
    lib = lab.build_so(tmp_path, "nosym", symbol="something_else")
    before = lab.sha256(lib)
    with pytest.raises(CommandExecutionError, match="symbol orte_ess_base_proc_binding is not"):
        _apply(lib, backups, value="Die")
    assert lab.sha256(lib) == before


def test_already_patched(tmp_path, backups):
    lib = lab.build_so(tmp_path, "patched", first=0x13)
    before = lab.sha256(lib)
    info = elfpatch.status(str(lib), RECIPE)
    assert (info["state"], info["type"]) == ("patched", "Die")
    done = _apply(lib, backups, value="Die")
    assert done["changed"] is False
    assert lab.sha256(lib) == before
    assert not os.path.exists(backups), "nothing written, not even a backup"
    # the original is computed, and reverting produces it
    reverted = elfpatch.revert(str(lib), backup_dir=backups)
    assert reverted["sha256"]["new"] == info["original_sha256"] == lab.sha256(lib)


def test_unknown_value_refused(tmp_path, backups):
    lib = lab.build_so(tmp_path, "odd", first=0x42)
    before = lab.sha256(lib)
    assert elfpatch.status(str(lib), RECIPE)["state"] == "unknown"
    with pytest.raises(CommandExecutionError, match="holds 42, neither the original 0d"):
        _apply(lib, backups, value="Die")
    with pytest.raises(CommandExecutionError, match="holds 42"):
        elfpatch.revert(str(lib), RECIPE, backup_dir=backups)
    assert lab.sha256(lib) == before


def test_unknown_build_refused_unless_allowed(tmp_path, backups):
    lib = lab.build_so(tmp_path, "lib")
    before = lab.sha256(lib)
    with pytest.raises(CommandExecutionError, match=f"unknown build \\(original sha256 {before}"):
        _apply(lib, backups, value="Die", allow_unknown=False)
    assert lab.sha256(lib) == before
    done = _apply(lib, backups, value="Die", allow_unknown=False, known_sha256=[before])
    assert done["known_build"] is True


def test_unknown_value_name_refused(tmp_path, backups):
    lib = lab.build_so(tmp_path, "lib")
    before = lab.sha256(lib)
    with pytest.raises(SaltInvocationError, match="type 'Socket' is not one of"):
        _apply(lib, backups, value="Socket")
    assert lab.sha256(lib) == before


def test_not_an_elf_file(tmp_path, backups):
    text = tmp_path / "notes.so"
    text.write_text("not a library\n")
    with pytest.raises(CommandExecutionError, match="is not an ELF file"):
        _apply(text, backups, value="Die")
    truncated = tmp_path / "truncated.so"
    truncated.write_bytes(lab.build_so(tmp_path, "lib").read_bytes()[:100])
    with pytest.raises(CommandExecutionError, match=r"truncated.so"):
        _apply(truncated, backups, value="Die")
    assert truncated.stat().st_size == 100
    with pytest.raises(CommandExecutionError, match="does not exist"):
        _apply(tmp_path / "missing.so", backups, value="Die")
    with pytest.raises(SaltInvocationError, match="must be absolute"):
        elfpatch.status("relative/lib.so", RECIPE)


def test_revert_is_byte_identical_and_metadata_kept(tmp_path, backups):
    lib = lab.build_so(tmp_path, "lib")
    os.chmod(lib, 0o751)
    os.setxattr(lib, "user.labsalt", b"kept")
    original = lib.read_bytes()
    done = _apply(lib, backups, value="Die")
    assert (lib.stat().st_mode & 0o7777) == 0o751
    assert os.getxattr(lib, "user.labsalt") == b"kept"
    backup = done["backup"]
    assert Path(backup).read_bytes() == original
    assert elfpatch.revert(str(lib), backup_dir=backups)["changed"] is True
    assert lib.read_bytes() == original
    assert elfpatch.revert(str(lib), backup_dir=backups)["changed"] is False


def test_symlink_is_followed_and_kept(tmp_path, backups):
    lib = lab.build_so(tmp_path, "libx.so.1.2")
    link = tmp_path / "libx.so.1"
    link.symlink_to(lib.name)
    done = _apply(link, backups, value="Die")
    assert done["path"] == str(lib)
    assert link.is_symlink()
    assert elfpatch.status(str(link), RECIPE)["state"] == "patched"


def test_hard_links_refused_unless_allowed(tmp_path, backups):
    lib = lab.build_so(tmp_path, "lib")
    other = tmp_path / "other-name.so"
    os.link(lib, other)
    before = lab.sha256(lib)
    with pytest.raises(CommandExecutionError, match="has 2 hard links"):
        _apply(lib, backups, value="Die")
    assert lab.sha256(lib) == lab.sha256(other) == before
    _apply(lib, backups, value="Die", allow_hardlinks=True)
    assert lab.sha256(other) == before  # the other name keeps the original


def test_not_writable(tmp_path):
    """As an unprivileged user: the library and its directory belong to root."""
    shared = Path(tempfile.mkdtemp(prefix="elfpatch-nw-", dir="/tmp"))
    os.chmod(shared, 0o755)
    lib = lab.build_so(shared, "lib")
    before = lab.sha256(lib)
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "from tests.support import elfpatch_lab as lab;"
        "m = lab.load_module();"
        "m.apply(sys.argv[2], lab.RECIPE, value='Die', allow_unknown=True,"
        " backup_dir='/nonexistent')"
    )
    proc = subprocess.run(
        [
            "setpriv",
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            sys.executable,
            "-c",
            script,
            str(lab.REPO),
            str(lib),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode != 0
    try:
        assert f"{lib} is not writable by this user" in proc.stderr, proc.stderr
        assert lab.sha256(lib) == before
    finally:
        shutil.rmtree(shared)


def test_wrong_architecture(tmp_path):
    lib = tmp_path / "ppc.so"
    src = tmp_path / "ppc.s"
    src.write_text(".text\n.globl orte_ess_base_proc_binding\norte_ess_base_proc_binding: blr\n")
    as_ppc = "powerpc64-linux-gnu-as"
    ld_ppc = "powerpc64-linux-gnu-ld"
    subprocess.run([as_ppc, "-o", str(tmp_path / "ppc.o"), str(src)], check=True)
    subprocess.run([ld_ppc, "-shared", "-o", str(lib), str(tmp_path / "ppc.o")], check=True)
    with pytest.raises(CommandExecutionError, match="the file is EM_PPC64, the build is x86_64"):
        elfpatch.status(str(lib), RECIPE)


# --------------------------------------------------------------------------- recipes


def test_recipes_file_checked(tmp_path):
    bad = tmp_path / "recipes.yaml"
    bad.write_text(
        "r:\n  symbol: f\n  parameter: {name: v, choices: {a: 1}}\n"
        "  builds:\n    - {name: b, arch: x86_64, code: '66 [0d'}\n"
    )
    with pytest.raises(SaltInvocationError, match="pattern has an unclosed \\["):
        elfpatch.load_recipes(str(bad))
    bad.write_text(
        "r:\n  symbol: f\n  parameter: {name: v, choices: {a: 1}}\n"
        "  builds:\n    - {name: b, arch: sparc, code: '66 [0d]'}\n"
    )
    with pytest.raises(CommandExecutionError, match="arch 'sparc' is not one of x86_64"):
        elfpatch.load_recipes(str(bad))
    with pytest.raises(SaltInvocationError, match="unknown recipe 'nope'"):
        elfpatch.status("/bin/true", "nope")


def _hwloc_enum(names):
    """hwloc_obj_type_t values as Debian's hwloc.h defines them (compiled with gcc)."""
    with tempfile.TemporaryDirectory() as work:
        source = Path(work) / "types.c"
        source.write_text(
            "#include <hwloc.h>\n#include <stdio.h>\nint main(void) {\n"
            + "".join(f'  printf("{n} %d\\n", (int)HWLOC_OBJ_{n.upper()});\n' for n in names)
            + "  return 0;\n}\n"
        )
        binary = Path(work) / "types"
        subprocess.run(["gcc", "-o", str(binary), str(source)], check=True, capture_output=True)
        out = subprocess.run([str(binary)], capture_output=True, text=True, check=True).stdout
    return {line.split()[0]: int(line.split()[1]) for line in out.splitlines()}


def _disassemble(code):
    """objdump's Intel-syntax reading of raw x86-64 bytes: [(offset, instruction)]."""
    with tempfile.NamedTemporaryFile(suffix=".bin") as handle:
        handle.write(code)
        handle.flush()
        out = subprocess.run(
            ["objdump", "-D", "-b", "binary", "-m", "i386:x86-64", "-M", "intel", handle.name],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
    found = re.findall(r"^\s*([0-9a-f]+):\s+(?:[0-9a-f]{2} )+\s*(.+?)\s*$", out, re.M)
    return [(int(offset, 16), " ".join(text.split())) for offset, text in found]


def test_shipped_recipes_agree_with_hwloc_h_and_the_notebooks_bytes():
    """
    The recipe's numbers held against sources other than the recipe: the
    parameter's choices and the patched original (NUMANODE) against the enum in
    Debian's hwloc.h; the Ubuntu build's pattern against the lab notebook's 15
    bytes, which objdump decodes as ``cmp ax,3; jne; mov edx,0xd``.
    """
    recipe = elfpatch.load_recipes()[RECIPE]
    choices = recipe["parameter"]["choices"]
    enum = _hwloc_enum([*choices, "NUMANode"])
    assert {name: enum[name] for name in choices} == choices
    builds = {b["name"]: b for b in recipe["builds"]}
    assert set(builds) >= {"debian-12-openmpi-4.1.4", "ubuntu-20.04-openmpi-4.0.3"}
    assert builds["debian-12-openmpi-4.1.4"]["data"].split()[0] == f"[{enum['NUMANode']:02x}]"

    notebook = bytes.fromhex("66 83 f8 03 0f 85 70 02 00 00 ba 0d 00 00 00")
    tokens = builds["ubuntu-20.04-openmpi-4.0.3"]["code"].split()
    assert len(tokens) == len(notebook)
    for token, byte in zip(tokens, notebook, strict=True):
        assert token == "??" or int(token.strip("[]"), 16) == byte, token
    patched = [i for i, token in enumerate(tokens) if token.startswith("[")]
    assert patched == [11]  # the low byte of mov edx's 32-bit immediate
    instructions = _disassemble(notebook)
    assert [text.split()[0] for _, text in instructions] == ["cmp", "jne", "mov"]
    assert instructions[2] == (10, f"mov edx,0x{enum['NUMANode']:x}")


# ------------------------------------------------- topology.numa_parent (moved from elfpatch)


@pytest.mark.parametrize(
    ("kind", "expected"),
    [("die", ("Die", 0x13)), ("group", ("Group", 0x0C)), ("package", ("Package", 1)),
     ("l3", ("L3Cache", 6))],
)  # fmt: skip
def test_numa_parent_from_lstopo(tmp_path, monkeypatch, kind, expected):
    xml = lab.topology(tmp_path, kind)
    monkeypatch.setenv("HWLOC_XMLFILE", str(xml))
    monkeypatch.setenv("HWLOC_THISSYSTEM", "1")
    found = topology.numa_parent()  # runs lstopo-no-graphics, which reads HWLOC_XMLFILE
    assert (found["type"], found["value"]) == expected
    assert len(found["nodes"]) == 2


def test_numa_parent_refuses_cpuset_mismatch(tmp_path):
    xml = lab.topology(tmp_path, "die")
    text = xml.read_text()
    # the first NUMA node claims both CPUs while its Die has one
    text = text.replace(
        '<object type="NUMANode" os_index="0" cpuset="0x00000001"',
        '<object type="NUMANode" os_index="0" cpuset="0x00000003"',
    )
    xml.write_text(text)
    with pytest.raises(CommandExecutionError, match="NUMA node P#0 has cpuset 0x00000003 but"):
        topology.numa_parent(str(xml))


def test_numa_parent_refuses_nested_same_type(tmp_path):
    xml = lab.topology(tmp_path, "group")
    xml.write_text(xml.read_text().replace('type="L3Cache"', lab.GROUP_ATTRS))
    with pytest.raises(CommandExecutionError, match="contains another Group"):
        topology.numa_parent(str(xml))


def test_numa_parent_refuses_mixed_types(tmp_path):
    xml = lab.topology(tmp_path, "die")
    text = xml.read_text()
    xml.write_text(text.replace('type="Die"', lab.GROUP_ATTRS, 1))
    with pytest.raises(CommandExecutionError, match="parents of different types"):
        topology.numa_parent(str(xml))


def test_elfpatch_numa_parent_is_topologys(tmp_path):
    """elfpatch.numa_parent stays as a compatibility name for topology.numa_parent."""
    xml = lab.topology(tmp_path, "die")
    assert elfpatch.numa_parent(str(xml)) == topology.numa_parent(str(xml))


# --------------------------------------------------------------------------- issue 15


def _load_state(salt_functions, test=False):
    """_states/elfpatch.py as a plain module with the given __salt__ and __opts__."""
    import importlib.util  # noqa: PLC0415

    from tests.conftest import REPO  # noqa: PLC0415

    spec = importlib.util.spec_from_file_location(
        "elfpatch_state_under_test", REPO / "_states" / "elfpatch.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.__salt__ = salt_functions
    module.__opts__ = {"test": test}
    return module


@pytest.mark.parametrize("value", ["0c", "0x", "12abc", "", " ", "1e3", "Dye", True, 1.5, [12]])
def test_bad_values_are_one_clean_error(tmp_path, backups, value):
    lib = lab.build_so(tmp_path, "lib")
    before = lib.read_bytes()
    with pytest.raises(SaltInvocationError, match=r"is not one of the recipe's values"):
        _apply(lib, backups, value=value)
    assert lib.read_bytes() == before


@pytest.mark.parametrize(("value", "name"), [("0x0c", "Group"), ("12", "Group"), (19, "Die")])
def test_numbers_are_decimal_or_0x(tmp_path, backups, value, name):
    lib = lab.build_so(tmp_path, "lib")
    assert _apply(lib, backups, value=value)["type"] == name


def test_concurrent_apply_is_success_not_keyerror(tmp_path, backups):
    """
    Another run patches the library between this state's plan and its write
    (the race that raised KeyError('backup')): the state reports success, no change.
    """
    lib = lab.build_so(tmp_path, "lib")

    def racing_apply(path, **kwargs):
        elfpatch.apply(path, **kwargs)  # the other run wins the lock first
        return elfpatch.apply(path, **kwargs)  # ours then finds nothing to do

    state = _load_state({"elfpatch.plan": elfpatch.plan, "elfpatch.apply": racing_apply})
    ret = state.patched(str(lib), RECIPE, value="Die", allow_unknown=True, backup_dir=backups)
    assert ret["result"] is True, ret
    assert ret["changes"] == {}
    assert "concurrent run" in ret["comment"]
    assert elfpatch.status(str(lib), RECIPE)["state"] == "patched"


def test_stale_backup_temp_is_removed_and_backup_kept(tmp_path, backups):
    """A run killed while writing the backup left a full-size temp file: the next run removes it."""
    lib = lab.build_so(tmp_path, "lib")
    original_sha = lab.sha256(lib)
    os.makedirs(backups)
    stale = Path(backups) / f".{original_sha}{elfpatch.TEMP_PREFIX}k1ll3d.tmp"
    stale.write_bytes(lib.read_bytes())
    unrelated = Path(backups) / "notes.txt"
    unrelated.write_text("kept")
    done = _apply(lib, backups, value="Die")
    assert not stale.exists()
    assert unrelated.read_text() == "kept"
    assert lab.sha256(done["backup"]) == original_sha
    assert (Path(backups) / f"{original_sha}.json").exists()
    assert sorted(p.name for p in Path(backups).iterdir()) == sorted(
        [original_sha, f"{original_sha}.json", "notes.txt"]
    )


def test_backup_dir_next_to_the_library_does_not_deadlock(tmp_path):
    lib = lab.build_so(tmp_path, "lib")
    done = elfpatch.apply(
        str(lib), RECIPE, value="Die", allow_unknown=True, backup_dir=str(tmp_path)
    )
    assert done["changed"] and os.path.dirname(done["backup"]) == str(tmp_path)


def test_state_predicts_without_hwloc_library_or_module(tmp_path, backups, monkeypatch):
    """Test mode on a host where the same highstate installs hwloc, OpenMPI or pyelftools."""
    lib = lab.build_so(tmp_path, "lib")
    functions = {
        "elfpatch.plan": elfpatch.plan,
        "elfpatch.status": elfpatch.status,
        "topology.can_read_topology": lambda: False,  # lstopo-no-graphics not installed yet
    }
    state = _load_state(functions, test=True)
    ret = state.patched(str(lib), RECIPE, allow_unknown=True, backup_dir=backups)
    assert ret["result"] is None, ret
    assert "decided when the state runs, after hwloc is installed" in ret["comment"]
    assert ret["changes"]["bytes"]["old"] == "0d"
    missing = state.patched(str(tmp_path / "absent.so"), RECIPE)
    assert missing["result"] is None
    assert "does not exist yet" in missing["comment"]
    no_module = _load_state({}, test=True).patched(str(lib), RECIPE)
    assert no_module["result"] is None
    assert "pyelftools" in no_module["comment"]
    # a real run without hwloc still fails, loudly
    monkeypatch.setenv("PATH", str(tmp_path))
    real = _load_state({"elfpatch.plan": elfpatch.plan, "elfpatch.apply": elfpatch.apply})
    ret = real.patched(str(lib), RECIPE, allow_unknown=True, backup_dir=backups)
    assert ret["result"] is False
    assert "lstopo-no-graphics is not installed" in ret["comment"]
