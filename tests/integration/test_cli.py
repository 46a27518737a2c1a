"""
The ``labsalt`` command as a user runs it: bad input gets one clear error and a
non-zero exit before anything runs; ``make run`` predicts and changes nothing;
``labsalt ssh`` names an unreachable host in its summary.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import netns

REPO = Path(__file__).resolve().parents[2]
SUITE = REPO / "tests" / "harness_suite"
LABSALT = Path(sys.executable).parent / "labsalt"


def labsalt(*args, env=None, timeout=300):
    return subprocess.run(
        [str(LABSALT), *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        env=dict(os.environ, **(env or {})),
    )


@pytest.fixture
def confdir(tmp_path):
    """A private config dir: Salt's cache appears in it only if Salt ran."""
    return {"LABSALT_CONFIG_DIR": str(tmp_path / "conf"), "LABSALT_ROOT": str(SUITE)}


def assert_one_clear_error(proc, *words):
    assert proc.returncode == 2, proc
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("labsalt: ")
    for word in words:
        assert word in lines[0]
    assert proc.stdout == ""


def salt_ran(env):
    return (Path(env["LABSALT_CONFIG_DIR"]) / "cache").exists()


@pytest.fixture
def roster(tmp_path):
    path = tmp_path / "roster"
    path.write_text("nowhere:\n  host: 127.0.0.1\n  port: 1\n")
    return path


@pytest.mark.parametrize("command", ["apply", "ssh"])
def test_unknown_formula(command, confdir, roster):
    args = ["apply", "nosuchformula"] if command == "apply" else ["ssh", roster, "*", "apply"]
    proc = labsalt(*args, *(["nosuchformula"] if command == "ssh" else []), env=confdir)
    assert_one_clear_error(proc, "unknown formula or state 'nosuchformula'", "probe")
    assert not salt_ran(confdir)


@pytest.mark.parametrize("command", ["apply", "ssh", "mapdata"])
def test_missing_pillar_dir(command, confdir, roster, tmp_path):
    missing = tmp_path / "no-such-pillar"
    prefix = {"apply": ["apply"], "ssh": ["ssh", roster, "*", "apply"], "mapdata": ["mapdata"]}
    proc = labsalt(*prefix[command], "probe", "--pillar", missing, env=confdir)
    assert_one_clear_error(proc, f"pillar directory {missing} does not exist")
    assert not salt_ran(confdir)


def test_pillar_without_top(confdir, tmp_path):
    (tmp_path / "p").mkdir()
    proc = labsalt("apply", "probe", "--pillar", tmp_path / "p", env=confdir)
    assert_one_clear_error(proc, "has no top.sls")


@pytest.mark.parametrize("command", ["apply", "ssh"])
def test_broken_pillar_yaml(command, confdir, roster, tmp_path):
    pillar = tmp_path / "pillar"
    pillar.mkdir()
    (pillar / "top.sls").write_text("base:\n  '*':\n    - probe\n")
    (pillar / "probe.sls").write_text("probe:\n  greeting: [unclosed\n  port: 8080\n")
    prefix = ["apply"] if command == "apply" else ["ssh", roster, "*", "apply"]
    proc = labsalt(*prefix, "probe", "--pillar", pillar, env=confdir)
    assert_one_clear_error(proc, f"{pillar / 'probe.sls'}:", "line ", "not valid YAML")
    assert not salt_ran(confdir)


def test_missing_roster(confdir, tmp_path):
    proc = labsalt("ssh", tmp_path / "nope", "*", env=confdir)
    assert_one_clear_error(proc, f"roster file {tmp_path / 'nope'} does not exist")


def test_schema_error_before_any_state_runs(confdir, tmp_path):
    # Masterless: a wrong pillar value fails the render; nothing is applied.
    docroot = tmp_path / "srv"
    proc = labsalt(
        "apply", "probe.config.file", "--pillar", SUITE / "pillar.example", "--pillar-data",
        f'{{"probe": {{"port": 99999, "docroot": "{docroot}"}}}}', env=confdir,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "probe:port: value 99999 is above the maximum 65535" in proc.stdout + proc.stderr
    assert not docroot.exists()


def test_unreachable_roster_host_is_named_and_fails_the_run(confdir, tmp_path):
    # A namespace of our own where nothing listens on port 22: refused, locally.
    with netns.namespace("nossh") as ns:
        roster = tmp_path / "roster"
        roster.write_text(f"deadhost:\n  host: {ns.addr}\n  user: root\n  timeout: 5\n")
        proc = labsalt(
            "ssh", roster, "deadhost", "apply", "probe", "--pillar", SUITE / "pillar.example",
            "--ignore-host-keys", env=confdir,
        )  # fmt: skip
    assert proc.returncode == 1, proc
    summary = proc.stderr[proc.stderr.index("Summary") :]
    assert "deadhost  unreachable" in summary
    assert f"ssh: connect to host {ns.addr} port 22: Connection refused" in summary
    assert "1 unreachable" in summary


def test_no_host_matches_the_target(confdir, roster):
    proc = labsalt("ssh", roster, "nosuchhost", "apply", "probe", env=confdir)
    assert proc.returncode == 2
    assert proc.stderr.strip().endswith("labsalt: no host in the roster matches 'nosuchhost'")
    assert "Summary" not in proc.stderr
