"""
The README's first command on a fresh machine (issue 14 item 1): a brand-new
Debian 12 (debootstrap minbase + git + make + ca-certificates, nothing else)
holding a clean clone of this repository's HEAD runs ``make run`` as root; it
must succeed and print the workstation role's prediction (htcondor and openmpi).

The machine is a systemd-nspawn container (as ../shared/tools/fresh-machine
builds it): it shares this machine's network (the Debian mirror and the package
index only) and its package-client set-up (CA bundle, pip configuration and
PIP_* variables), which every fresh machine here gets.  The base tree is built
once and cached as a tarball under /var/cache/labsalt-tests.  Only committed
work is tested: the clone is of HEAD.
"""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.support.hosts import MIRROR  # the Debian mirror the host images use

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("LABSALT_TESTS_CACHE", "/var/cache/labsalt-tests"))
BASE = CACHE / "fresh-bookworm-minbase.tar.zst"
CLIENT_SETUP = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pip.conf", "/etc/xdg/pip")

pytestmark = pytest.mark.slow


def base_tarball():
    """The minbase tree as a tarball, built once (debootstrap, about 2 minutes)."""
    if BASE.is_file():
        return BASE
    CACHE.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(prefix="fresh-build-", dir=CACHE))
    try:
        subprocess.run(
            ["debootstrap", "--variant=minbase", "--include=git,make,ca-certificates",
             "bookworm", str(build), MIRROR],
            check=True, capture_output=True, timeout=1800,
        )  # fmt: skip
        part = BASE.with_name(BASE.name + f".{os.getpid()}.part")
        subprocess.run(
            ["tar", "--zstd", "-cpf", str(part), "--numeric-owner", "-C", str(build), "."],
            check=True,
        )
        part.rename(BASE)
    finally:
        shutil.rmtree(build, ignore_errors=True)
    return BASE


@pytest.fixture
def fresh_machine():
    for tool in ("systemd-nspawn", "debootstrap", "zstd", "git"):
        if not shutil.which(tool):
            pytest.fail(f"{tool} is missing: scripts/install-deps harness installs it")
    base = base_tarball()
    root = Path(tempfile.mkdtemp(prefix="labsalt-fresh-", dir="/var/tmp"))
    try:
        subprocess.run(["tar", "--zstd", "-xpf", str(base), "-C", str(root)], check=True)
        subprocess.run(
            ["git", "clone", "-q", str(REPO), str(root / "root" / "project")], check=True
        )
        for name in CLIENT_SETUP:
            if os.path.exists(name):
                target = root / name.lstrip("/")
                target.parent.mkdir(parents=True, exist_ok=True)
                if os.path.isdir(name):
                    shutil.copytree(name, target, symlinks=True, dirs_exist_ok=True)
                else:
                    shutil.copy2(name, target)
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_make_run_on_a_fresh_debian_12(fresh_machine):
    setenv = [f"--setenv={k}={v}" for k, v in os.environ.items() if k.startswith("PIP_")]
    proc = subprocess.run(
        ["systemd-nspawn", "-q", "-D", str(fresh_machine), "--register=no", "--keep-unit",
         "--resolv-conf=copy-host", *setenv, "--pipe",
         "/bin/sh", "-c", "cd /root/project && make run"],
        capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL, timeout=1800,
    )  # fmt: skip
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-5000:]
    assert "Summary for local" in proc.stdout
    # the workstation role of pillar.example: both of its formulas were predicted
    assert "ID: htcondor-config-slots" in proc.stdout, proc.stdout[-5000:]
    assert "ID: openmpi-mca-params" in proc.stdout, proc.stdout[-5000:]
    assert "Failed:     0" in proc.stdout
