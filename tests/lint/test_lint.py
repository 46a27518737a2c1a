"""ruff, yamllint and salt-lint over the whole tree, as part of the suite."""

import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

BIN = Path(sys.executable).parent


def _run(*cmd):
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"{' '.join(cmd)}:\n{proc.stdout}{proc.stderr}"


def test_ruff_check():
    _run(str(BIN / "ruff"), "check", ".")


def test_ruff_format():
    _run(str(BIN / "ruff"), "format", "--check", ".")


def test_yamllint():
    _run(str(BIN / "yamllint"), "--strict", ".")


def sls_files():
    return sorted(str(p.relative_to(REPO)) for p in (REPO / "formulas").rglob("*.sls"))


def test_salt_lint():
    _run(str(BIN / "salt-lint"), *sls_files())
