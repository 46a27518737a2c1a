"""
The topology grains over salt-ssh on a throw-away Debian 12 host (issue 17):
the grain parses cpulists with the topology execution module's parser, which
it loads through Salt's loader (a grain cannot call ``__salt__``), so the
module must reach the target with the grains.  salt-ssh ships the extension
modules (``_modules``, ``_grains``) on Salt 3006 and 3008 alike (``utils`` only
on 3008, which is why the shared parser is not a ``_utils`` module).  Run this
module under .venv (3008) and .venv-3006 (3006 LTS).  The host is a container
on this machine: its /sys is this machine's, so the grains must say what
``labsalt topology --json`` says here.
"""

import json
import subprocess
import sys

import pytest


@pytest.fixture(scope="module")
def host(host_factory):
    return host_factory.start("topo")


@pytest.fixture(scope="module")
def here():
    done = subprocess.run(
        [sys.executable, "-m", "labsalt", "topology", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def test_grains_over_salt_ssh_use_the_shipped_parser(host, here):
    grains = host.call("grains.item", "numa_nodes", "numa", "l3")
    # without the module on the target the grain would log and set nothing
    assert grains["numa_nodes"] == len(here["numa_nodes"]), grains
    assert grains["numa"] == {
        str(n["id"]): {"cpus": n["cpus"], "memory_kb": n["memory_kb"]} for n in here["numa_nodes"]
    }
    assert grains["l3"] == [g["cpus"] for g in here["l3_groups"]]


def test_the_one_parser_reads_strides_on_the_target(host):
    assert host.call("topology.parse_cpulist", "0-7:2") == [0, 2, 4, 6]
    assert host.call("topology.parse_cpulist", "0-15:2/4") == [0, 1, 4, 5, 8, 9, 12, 13]
