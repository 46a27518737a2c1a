"""
The shared package mechanism (``_states/labsalt_packages.py``) with real apt and
dpkg on this machine and small harmless packages: ``toilet`` (it pulls in
``libcaca0`` and ``toilet-fonts``) installed by labsalt, ``sl`` standing for a
package the site had before.  Test mode writes nothing (the package lists and
/var/lib/labsalt stay as they were), the record holds only what was missing
(the dependencies too), a second run changes nothing, and clean purges only the
recorded packages.
"""

import hashlib
import os
import shutil
import subprocess

import pytest

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="installs packages: needs root"),
    pytest.mark.skipif(not shutil.which("apt-get"), reason="needs apt"),
]

OURS = ["toilet", "libcaca0", "toilet-fonts"]
SITE = "sl"


def _installed(pkg):
    out = subprocess.run(
        ["dpkg-query", "-W", "-f", "${db:Status-Status}", pkg],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return out == "installed"


def _apt(*args):
    subprocess.run(
        ["apt-get", "-q", "-y", "-o", "DPkg::Lock::Timeout=300", *args],
        check=True,
        capture_output=True,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )


def _snapshot(*roots):
    """Every file and directory under ``roots`` with its content hash and mtime."""
    seen = {}
    for root in roots:
        for top, _dirs, files in os.walk(root):
            seen[top] = ("dir", os.stat(top).st_mtime_ns)
            for name in files:
                path = os.path.join(top, name)
                if os.path.islink(path) or not os.path.isfile(path):
                    seen[path] = ("other",)
                    continue
                with open(path, "rb") as handle:
                    seen[path] = (
                        hashlib.sha256(handle.read()).hexdigest(),
                        os.stat(path).st_mtime_ns,
                    )
    return seen


@pytest.fixture
def host():
    """``sl`` installed as the site's, ``toilet`` and its dependencies absent; put back after."""
    if any(_installed(pkg) for pkg in OURS):
        pytest.skip(f"{', '.join(OURS)} must be absent here before the test")
    site_had = _installed(SITE)
    if not site_had:
        _apt("install", "--no-install-recommends", SITE)
    try:
        yield
    finally:
        gone = [pkg for pkg in OURS if _installed(pkg)]
        if gone:
            _apt("purge", *gone)
        if not site_had:
            _apt("purge", SITE)


def test_test_mode_writes_nothing_and_predicts(states, host, tmp_path):
    before = _snapshot("/var/lib/apt/lists", "/var/lib/labsalt", "/var/lib/dpkg/status")
    ret = states.labsalt_packages.installed(
        name="toilet-package", pkgs=["toilet", SITE], formula="labsalt_test", test=True
    )
    assert ret.result is None, ret.comment
    assert ret.changes == {"toilet": {"old": "", "new": "installed"}}
    ret = states.labsalt_packages.removed(name="toilet-clean", formula="labsalt_test", test=True)
    assert ret.result is True and not ret.changes, ret.comment
    assert _snapshot("/var/lib/apt/lists", "/var/lib/labsalt", "/var/lib/dpkg/status") == before
    assert not _installed("toilet")
    assert not os.path.exists("/var/lib/labsalt/labsalt_test")


def test_records_only_missing_and_clean_purges_only_those(states, host, tmp_path):
    record_dir = tmp_path / "state"
    args = {"name": "toilet-package", "pkgs": ["toilet", SITE], "record_dir": str(record_dir)}

    ret = states.labsalt_packages.installed(**args)
    assert ret.result is True, ret.comment
    assert sorted(ret.changes) == sorted(OURS)
    assert all(_installed(pkg) for pkg in OURS)
    record = record_dir / "installed-packages"
    assert record.read_text().split() == sorted(OURS)  # sl was there: not recorded

    again = states.labsalt_packages.installed(**args)
    assert again.result is True and not again.changes, again.comment
    assert record.read_text().split() == sorted(OURS)

    predicted = states.labsalt_packages.removed(
        name="toilet-clean", record_dir=str(record_dir), test=True
    )
    assert predicted.result is None
    assert sorted(predicted.changes) == sorted(OURS)
    assert all(_installed(pkg) for pkg in OURS) and record.exists()

    ret = states.labsalt_packages.removed(name="toilet-clean", record_dir=str(record_dir))
    assert ret.result is True, ret.comment
    assert sorted(ret.changes) == sorted(OURS)
    assert not any(_installed(pkg) for pkg in OURS)
    assert _installed(SITE), "the site's package must stay"
    assert not record.exists()

    again = states.labsalt_packages.removed(name="toilet-clean", record_dir=str(record_dir))
    assert again.result is True and not again.changes, again.comment


def test_dependency_the_site_needs_stays(states, host, tmp_path):
    """A recorded dependency that a package the site installed later needs is kept."""
    record_dir = tmp_path / "state"
    ret = states.labsalt_packages.installed(
        name="caca", pkgs=["libcaca0"], record_dir=str(record_dir)
    )
    assert ret.result is True, ret.comment
    _apt("install", "--no-install-recommends", "toilet")  # the site's, after labsalt
    ret = states.labsalt_packages.removed(name="caca-clean", record_dir=str(record_dir))
    assert ret.result is True, ret.comment
    assert _installed("toilet") and _installed("libcaca0")
    assert "kept libcaca0" in ret.comment


def test_bad_names_one_line(states, tmp_path):
    ret = states.labsalt_packages.installed(
        name="x", pkgs=["ok", "; touch /tmp/labsalt-pwned"], record_dir=str(tmp_path), test=True
    )
    assert ret.result is False
    assert ret.comment.startswith("labsalt_packages: pkgs: ") and "\n" not in ret.comment
    ret = states.labsalt_packages.removed(name="x", formula="../etc")
    assert ret.result is False and "formula" in ret.comment
