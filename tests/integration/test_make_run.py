"""
``make run`` and ``labsalt apply --test`` write nothing outside the checkout and
labsalt's private config directory (issue 14 item 4), and load labsalt's modules
from the checkout, never from a system minion's cache.

Writes are seen with tests/support/hostile.py ``run_isolated``: the command runs
in a private mount namespace where /etc, /var, /usr, /srv, /opt, /root, /home,
/tmp and /run are overlays, and every path it created, changed or deleted is
listed from the overlays' upper layers afterwards (exact, and not disturbed by
other processes writing on this machine meanwhile).  The checkout (/work/...) is
not overlaid: writing there (the venv, __pycache__) is allowed.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import salt.config

from labsalt.config import write_config
from tests.support import hostile

REPO = Path(__file__).resolve().parents[2]
LABSALT = Path(sys.executable).parent / "labsalt"
# Salt's own default locations: a labsalt run must neither write nor read there.
SYSTEM_SALT = (
    "/etc/salt",
    "/var/cache/salt",
    "/var/log/salt",
    "/run/salt",
    "/var/run/salt",
    "/srv",
)
# apt's own bookkeeping, should `make run` have to install a missing Debian package
APT = ["/var/lib/dpkg", "/var/lib/apt", "/var/cache/apt", "/var/log/apt", "/var/log/dpkg.log",
       "/var/cache/debconf"]  # fmt: skip


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)


@pytest.mark.parametrize("role", ["minion", "master"])
def test_generated_config_has_no_system_salt_path(tmp_path, monkeypatch, role):
    monkeypatch.setenv("LABSALT_CONFIG_DIR", str(tmp_path / "conf"))
    conf = write_config(REPO, REPO / "pillar.example")
    load = salt.config.minion_config if role == "minion" else salt.config.master_config
    opts = load(str(conf / role))
    assert opts["extension_modules"].startswith(str(conf))
    offending = {
        key: text
        for key, value in opts.items()
        for text in _strings(value)
        if text.startswith(SYSTEM_SALT)
    }
    assert offending == {}


# Known gap, not labsalt's own write: Salt's pkg.installed in test mode asks
# pkg.latest_version for a package that is not installed without refresh=False
# (salt/states/pkg.py, _get_installable_versions), and aptpkg then runs
# `apt-get update`, which rewrites apt's package lists.  Everything else must stay.
APT_LISTS = ["/var/lib/apt/lists", "/var/cache/apt/pkgcache.bin", "/var/cache/apt/srcpkgcache.bin"]


def _env(conf):
    return dict(os.environ, LABSALT_CONFIG_DIR=str(conf), LABSALT_ROOT=str(REPO))


def test_apply_test_writes_nothing_outside_its_private_dir(tmp_path):
    conf = tmp_path / "conf"
    proc, written = hostile.run_isolated(
        [str(LABSALT), "apply", "--test", "--pillar", str(REPO / "pillar.example")],
        env=_env(conf),
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "ID: htcondor-config-slots" in proc.stdout
    assert "ID: openmpi-mca-params" in proc.stdout
    assert hostile.outside(written, [conf, *APT_LISTS]) == []
    assert not [p for p in written if p.startswith(SYSTEM_SALT)]


def test_make_run_writes_nothing_outside_the_checkout_and_its_cache():
    # make run's own set-up (venv) first, outside the measurement: it only writes
    # into the checkout, but pip also keeps its cache in ~/.cache/pip
    subprocess.run(["make", "-C", str(REPO), "venv"], check=True, capture_output=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABSALT_")}
    proc, written = hostile.run_isolated(["make", "-C", str(REPO), "run"], env=env, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "ID: htcondor-config-slots" in proc.stdout
    assert "ID: openmpi-mca-params" in proc.stdout
    private = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "labsalt"
    assert hostile.outside(written, [private, *APT]) == []


# A module planted in the system minion's extension-module cache, as a stale copy
# of an older labsalt (or an attacker) would leave it: it must not be loaded.
PLANTED = """
__virtualname__ = "labsalt"
def __virtual__():
    return __virtualname__
def check_formulas(*args, **kwargs):
    open("/tmp/labsalt-planted-ran", "w").close()
    return {"errors": ["PLANTED module ran"], "formulas": {}}
def mapdata(*args, **kwargs):
    open("/tmp/labsalt-planted-ran", "w").close()
    raise RuntimeError("PLANTED module ran")
"""


@pytest.mark.parametrize(
    "command",
    [["mapdata", "htcondor"], ["apply", "htcondor", "--test"]],
    ids=["mapdata", "apply-test"],
)
def test_module_planted_in_system_extmods_is_not_loaded(tmp_path, command):
    # mapdata syncs nothing: with Salt's default extension_modules it loaded the
    # planted copy in preference to the checkout's _modules/labsalt.py
    planted = tmp_path / "planted.py"
    planted.write_text(PLANTED)
    extmods = "/var/cache/salt/minion/extmods/modules"
    conf = tmp_path / "conf"
    proc, written = hostile.run_isolated(
        [str(LABSALT), *command, "--pillar", str(REPO / "pillar.example")],
        env=_env(conf),
        setup=f"mkdir -p {extmods} && cp {planted} {extmods}/labsalt.py "
        f"&& cp {planted} {extmods}/topology.py",
        timeout=900,
    )
    output = proc.stdout + proc.stderr
    assert "PLANTED" not in output
    assert proc.returncode == 0, output[-3000:]
    if command[0] == "mapdata":
        assert "slots:" in proc.stdout
    else:
        assert "ID: htcondor-config-slots" in proc.stdout
    assert "/tmp/labsalt-planted-ran" not in written


def test_install_deps_runs_no_apt_when_nothing_is_missing(tmp_path):
    # every package of make run's list is installed on this machine (make venv
    # needed them): install-deps must not touch apt at all, not even `apt-get update`
    calls = tmp_path / "calls"
    for tool in ("apt-get", "apt"):
        fake = tmp_path / tool
        fake.write_text(f'#!/bin/sh\necho "{tool} $*" >> {calls}\n')
        fake.chmod(0o755)
    env = dict(os.environ, PATH=f"{tmp_path}:{os.environ['PATH']}")
    proc = subprocess.run(
        [str(REPO / "scripts" / "install-deps"), "base"],
        capture_output=True, text=True, check=False, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert not calls.exists(), calls.read_text()
