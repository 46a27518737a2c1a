"""
Shared pytest setup for labsalt.

Every test is marked by where it lives (unit, functional, integration, e2e) and by
the formula or module it is about: a file or directory named after a formula
(``tests/functional/test_htcondor.py``, ``tests/e2e/bind_ad/``) carries that
formula's marker, so ``pytest -m htcondor`` runs one formula's tests alone.
"""

import logging
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FORMULAS = sorted(
    p.name for p in (REPO / "formulas").iterdir() if p.is_dir() and (p / "init.sls").is_file()
)
# Topics that are not formulas but have their own tests (execution modules, the CLI).
TOPICS = ["topology", "elfpatch", "eva", "labsalt", "cli", "harness", "fleet", "bench"]
LAYERS = ["unit", "functional", "integration", "e2e", "lint"]

# Under CI=true a skipped test is a gap a green run would hide, so it fails the
# run.  The only exceptions are listed here, each with the hardware this kind of
# machine cannot have (node id prefix -> reason).
CI_SKIP_ALLOWED = {}
_SKIPPED = []


def pytest_configure(config):
    # Salt's deferred log handlers flush at interpreter exit, after pytest has
    # closed the streams they captured; do not print those flush errors.
    logging.raiseExceptions = False
    for name in sorted(set(FORMULAS + TOPICS)):
        config.addinivalue_line("markers", f"{name}: tests of the {name} formula or module")
    config.addinivalue_line("markers", "unit: pure logic, no Salt loader")


def _topics_of(path):
    words = set()
    for part in path.relative_to(REPO / "tests").parts:
        stem = part[:-3] if part.endswith(".py") else part
        stem = stem.removeprefix("test_")
        words.add(stem)
        words.update(stem.split("_"))
    return words


def pytest_collection_modifyitems(config, items):
    names = set(FORMULAS + TOPICS)
    for item in items:
        path = Path(str(item.fspath))
        words = _topics_of(path)
        for name in names:
            if name in words or name.replace("_", "") in words:
                item.add_marker(getattr(pytest.mark, name))
        layer = path.relative_to(REPO / "tests").parts[0]
        if layer in LAYERS:
            item.add_marker(getattr(pytest.mark, layer))


def pytest_runtest_logreport(report):
    if report.skipped and not hasattr(report, "wasxfail"):
        _SKIPPED.append(report)


def _allowed(nodeid):
    return any(nodeid.startswith(prefix) for prefix in CI_SKIP_ALLOWED)


def pytest_sessionfinish(session, exitstatus):
    if os.environ.get("CI", "").lower() != "true":
        return
    hidden = [report for report in _SKIPPED if not _allowed(report.nodeid)]
    if hidden and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if os.environ.get("CI", "").lower() != "true":
        return
    hidden = [report for report in _SKIPPED if not _allowed(report.nodeid)]
    if hidden:
        terminalreporter.section("skips fail under CI=true (tests/conftest.py CI_SKIP_ALLOWED)")
        for report in hidden:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
            terminalreporter.line(f"SKIPPED (not allowed) {report.nodeid}: {reason}")


@pytest.fixture(scope="session")
def salt_factories_config():
    return {
        "code_dir": str(REPO),
        "inject_sitecustomize": False,
        "start_timeout": 120 if os.environ.get("CI") else 60,
    }


@pytest.fixture(scope="session")
def repo():
    return REPO


@pytest.fixture(scope="module")
def host_factory():
    """
    Throw-away Debian 12 hosts (tests/support/hosts.py): ``host_factory.start("name")``.
    All hosts of a test module are stopped and removed at its end, even on failure.
    """
    from tests.support import hosts  # noqa: PLC0415  (only e2e tests need it)

    reason = hosts.unavailable()
    if reason:
        pytest.skip(reason)
    factory = hosts.HostFactory()
    try:
        yield factory
    finally:
        factory.stop_all()
