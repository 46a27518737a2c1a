"""
The openmpi formula on a throw-away Debian 12 host with Debian's OpenMPI, over
salt-ssh: with the singleton patch enabled, an MPI program started without
mpirun binds to NUMA; a second run changes nothing; ``apt-get install
--reinstall libopenmpi3`` puts Debian's library back and the next run patches it
again; the clean state restores Debian's bytes.  The host's topology is this
machine's, read live inside the host (NUMA node's parent: what hwloc reports).
"""

import base64
import json

import pytest

from tests.support import elfpatch_lab as lab
from tests.support.states import assert_no_changes, assert_ok

LIB = "/usr/lib/x86_64-linux-gnu/libopen-rte.so.40"
PILLAR = {"openmpi": {"singleton_patch": {"enabled": True}}}


@pytest.fixture(scope="module")
def host(host_factory, tmp_path_factory):
    host = host_factory.start("mpi", packages=["openmpi-bin", "hwloc"])
    program = lab.mpi_program(tmp_path_factory.mktemp("mpi"))
    host.run(
        "sh",
        "-c",
        "base64 -d > /usr/local/bin/affinity && chmod 755 /usr/local/bin/affinity",
        input=base64.b64encode(program.read_bytes()).decode(),
    )
    return host


def singleton(host):
    return host.run(
        "env", "OMPI_MCA_hwloc_base_binding_policy=numa", "affinity", check=False, timeout=120
    )


def library_sha256(host):
    return host.run("sh", "-c", f"sha256sum $(readlink -f {LIB})").stdout.split()[0]


def patch_state(ret):
    return next(v for k, v in ret.items() if "openmpi-singleton-numa-patch" in k)


def test_singleton_patch_lifecycle(host):
    packaged = library_sha256(host)
    assert packaged == lab.sha256(lab.SYSTEM_LIB)  # the same Debian build as this machine
    assert singleton(host).returncode != 0  # the bug, on Debian's library

    ret = host.apply("openmpi", pillar=PILLAR)
    assert_ok(ret)
    parent = host.call("topology.numa_parent")  # the host's live topology
    patch = patch_state(ret)
    assert patch["changes"]["sha256"]["old"] == packaged
    assert patch["changes"]["bytes"] == {"old": "0d", "new": f"{parent['value']:02x}"}
    verify = next(v for k, v in ret.items() if "openmpi-verify" in k)
    assert "a singleton bound to numa starts (bound to CPUs" in verify["comment"]
    run = singleton(host)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("affinity: ")

    assert_no_changes(host.apply("openmpi", pillar=PILLAR))

    # login and non-login shells on the real host
    login = host.run("bash", "-lc", "echo $OMPI_MCA_hwloc_base_binding_policy")
    assert login.stdout.strip() == "numa"
    non_login = host.run("bash", "-c", "ompi_info --parsable --level 9 --param hwloc base").stdout
    assert ":hwloc_base_binding_policy:value:numa" in non_login
    assert ":source:file (/etc/openmpi/openmpi-mca-params.conf:" in non_login

    # a package reinstall replaces the library; the next run notices and patches again
    host.run("apt-get", "install", "--reinstall", "-y", "-q", "libopenmpi3", timeout=600)
    assert library_sha256(host) == packaged
    assert singleton(host).returncode != 0
    again = host.apply("openmpi", pillar=PILLAR)
    assert_ok(again)
    assert patch_state(again)["changes"]["sha256"] == patch["changes"]["sha256"]
    assert singleton(host).returncode == 0

    # undo: Debian's bytes again
    assert_ok(host.apply("openmpi.singleton.clean", pillar=PILLAR))
    assert library_sha256(host) == packaged
    backups = host.run("ls", "/var/lib/labsalt/elfpatch").stdout.split()
    assert packaged in backups
    meta = json.loads(host.path(f"/var/lib/labsalt/elfpatch/{packaged}.json").read_text())
    assert meta["build"] == "debian-12-openmpi-4.1.4"
