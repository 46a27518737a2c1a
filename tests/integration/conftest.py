"""Fixtures shared by integration tests that run labsalt's CLI against real daemons."""

import os
import tempfile
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def scratch():
    """Temp dirs of our own: pytest's numbered ones are pruned by concurrent sessions."""
    with tempfile.TemporaryDirectory(prefix="labsalt-bbb-") as base:
        counter = iter(range(1000))

        def make(name):
            path = Path(base) / f"{name}{next(counter)}"
            path.mkdir()
            return path

        yield make


@pytest.fixture(scope="module")
def private_salt_config(scratch):
    """labsalt's generated Salt config (and Salt's logs) in our temp dir, not ~/.cache."""
    old = os.environ.get("LABSALT_CONFIG_DIR")
    os.environ["LABSALT_CONFIG_DIR"] = str(scratch("saltconf"))
    yield
    if old is None:
        del os.environ["LABSALT_CONFIG_DIR"]
    else:
        os.environ["LABSALT_CONFIG_DIR"] = old
