"""
Material for the elfpatch and openmpi tests: the module loaded as a plain Python
module, small shared objects assembled with gcc that mimic OpenMPI's code, fake
hwloc topologies made by lstopo, and an MPI program that prints its affinity.
"""

import hashlib
import importlib.util
import re
import shutil
import subprocess
from pathlib import Path

from tests.conftest import REPO

SYSTEM_LIB = Path("/usr/lib/x86_64-linux-gnu/libopen-rte.so.40")
RECIPE = "openmpi-singleton-numa"
GROUP_ATTRS = 'type="Group" kind="1000" subkind="0" dont_merge="1"'

# OpenMPI's code as the recipes know it, assembled into a small .so.
# Debian 12's build: switch compiled into a table reached by a RIP-relative lea.
TABLE_CODE = """
    .byte 0x83,0xe8,0x03, 0x66,0x83,0xf8,0x03, 0x0f,0x87,0x00,0x00,0x00,0x00, 0x0f,0xb7,0xc0
    lea rcx, [rip + .Ltable]
    .byte 0x8b,0x0c,0x81
"""
# Ubuntu 20.04's build: the lab notebook's 15 bytes, "mov edx,0x0d" inline.
SEED_CODE = ".byte 0x66,0x83,0xf8,0x03,0x0f,0x85,0x70,0x02,0x00,0x00,0xba,{value},0x00,0x00,0x00"

ASM = """
    .intel_syntax noprefix
    .text
    {visibility}
    .type {symbol}, @function
{symbol}:
    {body}
    ret
    .size {symbol}, .-{symbol}

    .globl other_switch
    .type other_switch, @function
other_switch:
    lea rcx, [rip + .Ldecoy]
    mov eax, [rcx + rax*4]
    ret
    .size other_switch, .-other_switch

    .section .rodata
    .p2align 4
.Ldecoy:
    .long 0x0d, 1, 6, 5
    .p2align 4
.Ltable:
    .long {first}, 1, 6, 5
"""


def _plain(name):
    spec = importlib.util.spec_from_file_location(
        f"{name}_under_test", REPO / "_modules" / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_topology():
    """_modules/topology.py as a plain module (no Salt loader)."""
    return _plain("topology")


def load_module():
    """
    _modules/elfpatch.py as a plain module (no Salt loader), with the one
    cross-module call it makes (``topology.numa_parent``) wired to topology's.
    """
    module = _plain("elfpatch")
    topology = load_topology()
    module.__salt__ = {
        "topology.numa_parent": topology.numa_parent,
        "topology.can_read_topology": topology.can_read_topology,
    }
    return module


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def build_so(directory, name, *, code="table", first=0x0D, symtab="both", copies=1, symbol=None):
    """
    Assemble a shared object whose ``orte_ess_base_proc_binding`` holds ``code``
    ("table": Debian 12's, "seed": Ubuntu 20.04's, "absent": neither) ``copies``
    times, with ``first`` as the NUMA entry.  ``symtab``: "both" (.symtab and
    .dynsym), "symtab" (a local symbol: .symtab only), "dynsym" (stripped).
    """
    directory = Path(directory)
    body = {
        "table": TABLE_CODE,
        "seed": SEED_CODE.format(value=hex(first)),
        "absent": TABLE_CODE.replace("0x66,0x83,0xf8,0x03", "0x66,0x83,0xf8,0x04"),
    }[code]
    symbol = symbol or "orte_ess_base_proc_binding"
    visibility = "" if symtab == "symtab" else f".globl {symbol}"
    source = directory / f"{name}.s"
    source.write_text(
        ASM.format(
            visibility=visibility,
            symbol=symbol,
            body=body * copies,
            first=hex(first),
        )
    )
    out = directory / f"{name}.so"
    cmd = ["gcc", "-shared", "-nostdlib", "-Wl,--build-id=none", "-o", str(out), str(source)]
    if symtab == "dynsym":
        cmd.append("-s")
    subprocess.run(cmd, check=True, capture_output=True)
    return out


def symbol_tables(path, symbol):
    """Which of .symtab (nm) and .dynsym (nm -D) define ``symbol``, by binutils."""
    found = set()
    for table, args in ((".symtab", []), (".dynsym", ["-D"])):
        out = subprocess.run(
            ["nm", *args, str(path)], capture_output=True, text=True, check=False
        ).stdout
        if re.search(rf"^\S+ [Tt] {symbol}$", out, re.M):
            found.add(table)
    return found


def topology(directory, kind):
    """
    A fake topology file made by lstopo's synthetic backend: "die" (NUMA nodes
    in Dies), "group" (the same with Groups that hwloc must not merge away),
    "package" (NUMA nodes in Packages), "l3" (NUMA nodes in L3 caches).
    """
    synthetic = {
        "die": "pack:1 die:2 [numa] l3:1 core:1 pu:1",
        "group": "pack:1 die:2 [numa] l3:1 core:1 pu:1",
        "package": "pack:2 [numa] l3:1 core:1 pu:1",
        "l3": "pack:1 l3:2 [numa] core:1 pu:1",
    }[kind]
    text = subprocess.run(
        ["lstopo-no-graphics", "--input", synthetic, "--of", "xml", "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if kind == "group":
        text = text.replace('type="Die"', GROUP_ATTRS)
    path = Path(directory) / f"topology-{kind}.xml"
    path.write_text(text)
    return path


def mpi_program(directory):
    """Compile a tiny MPI program that prints its CPU affinity after MPI_Init."""
    source = Path(directory) / "affinity.c"
    source.write_text(
        """
#define _GNU_SOURCE
#include <mpi.h>
#include <sched.h>
#include <stdio.h>
int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    cpu_set_t set;
    CPU_ZERO(&set);
    sched_getaffinity(0, sizeof(set), &set);
    printf("affinity:");
    const char *sep = " ";
    for (int i = 0; i < CPU_SETSIZE; i++)
        if (CPU_ISSET(i, &set)) { printf("%s%d", sep, i); sep = ","; }
    printf("\\n");
    MPI_Finalize();
    return 0;
}
"""
    )
    binary = Path(directory) / "affinity"
    subprocess.run(["mpicc", "-o", str(binary), str(source)], check=True, capture_output=True)
    return binary


def library_copy(directory):
    """Debian's libopen-rte copied into ``directory`` with its soname link."""
    real = SYSTEM_LIB.resolve()
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy2(real, directory / real.name)
    link = directory / SYSTEM_LIB.name
    if not link.is_symlink():
        link.symlink_to(real.name)
    return directory / real.name
