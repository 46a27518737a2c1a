"""
The ``labsalt`` command as a user runs it: bad input gets one clear error and a
non-zero exit before anything runs; ``make run`` predicts and changes nothing;
``labsalt ssh`` names an unreachable host in its summary.
"""

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import salt.payload
import yaml

from labsalt.config import write_config
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
    conf = Path(env["LABSALT_CONFIG_DIR"])
    return (conf / "cache").exists() or (conf / "ssh-cache").exists()


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


# --------------------------------------------------------------------------- one error, one line


def test_bad_pillar_data_yaml_is_one_line(confdir):
    proc = labsalt(
        "apply", "probe", "--test", "--pillar", SUITE / "pillar.example",
        "--pillar-data", "{probe: [", env=confdir,
    )  # fmt: skip
    assert_one_clear_error(proc, "--pillar-data", "not valid YAML")
    assert not salt_ran(confdir)


def test_pillar_data_that_is_not_a_mapping_is_one_line(confdir):
    proc = labsalt("apply", "probe", "--pillar-data", "[1, 2]", env=confdir)
    assert_one_clear_error(proc, "--pillar-data: must be a mapping of pillar keys, not list")


@pytest.mark.parametrize(
    "args",
    [["apply", "--bogus"], ["frobnicate"], ["ssh"], ["apply", "-l", "loud"], ["mapdata"]],
    ids=["unknown-option", "unknown-command", "missing-arguments", "bad-choice", "no-formula"],
)
def test_bad_cli_arguments_are_one_line(confdir, args):
    proc = labsalt(*args, env=confdir)
    assert_one_clear_error(proc, "--help")


@pytest.mark.parametrize("verbosity", [[], ["-q"], ["-l", "debug"]], ids=["default", "q", "debug"])
def test_schema_error_is_one_line_before_anything_renders(confdir, tmp_path, verbosity):
    docroot = tmp_path / "srv"
    proc = labsalt(
        "apply", "probe", "--test", "--pillar", SUITE / "pillar.example", *verbosity,
        "--pillar-data", f'{{"probe": {{"port": 99999, "docroot": "{docroot}"}}}}', env=confdir,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "Traceback" not in proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("labsalt: ")]
    assert errors == ["labsalt: probe:port: value 99999 is above the maximum 65535"]
    if not verbosity or verbosity == ["-q"]:
        assert proc.stderr.splitlines() == errors
    assert "Rendering SLS" not in proc.stdout + proc.stderr  # nothing was rendered
    assert not docroot.exists()


def test_mapdata_with_a_bad_pillar_is_one_line(confdir):
    proc = labsalt(
        "mapdata", "probe", "--pillar", SUITE / "pillar.example",
        "--pillar-data", '{"probe": {"port": "eighty"}}', env=confdir,
    )  # fmt: skip
    assert_one_clear_error(proc, "probe:port: must be int, not str 'eighty'")


def test_ssh_checks_the_pillar_before_salt_ssh_runs(confdir, roster):
    # the roster's host does not exist: a pillar error must come before any connection
    proc = labsalt(
        "ssh", roster, "*", "apply", "probe", "--pillar", SUITE / "pillar.example",
        "--pillar-data", '{"probe": {"port": 99999}}', env=confdir,
    )  # fmt: skip
    assert_one_clear_error(proc, "probe:port: value 99999 is above the maximum 65535")
    assert "Summary" not in proc.stderr


def _broken_suite(tmp_path):
    """A suite whose SLS files fail to render for a reason no schema sees, twice over."""
    root = tmp_path / "suite"
    shutil.copytree(SUITE, root)
    probe = root / "formulas" / "probe"
    (probe / "init.sls").write_text("include:\n  - .one\n  - .two\n")
    for name in ("one", "two"):
        (probe / f"{name}.sls").write_text(
            f"{{%- set x = no_such_variable.attribute %}}\n{name}:\n  test.nop: []\n"
        )
    return root


def test_render_failure_is_each_distinct_error_once(tmp_path):
    env = {
        "LABSALT_CONFIG_DIR": str(tmp_path / "conf"),
        "LABSALT_ROOT": str(_broken_suite(tmp_path)),
    }
    for verbosity in ([], ["-q"]):
        proc = labsalt("apply", "probe", "--test", *verbosity, env=env)
        assert proc.returncode != 0
        assert "Traceback" not in proc.stdout + proc.stderr
        lines = proc.stderr.splitlines()
        assert len(lines) == 1, proc.stderr
        assert lines[0].startswith("labsalt: ") and "no_such_variable" in lines[0], lines


def test_fritzbox_example_with_a_missing_image_is_one_line(tmp_path):
    # the example pillar names images under /srv/openwrt that this machine does not
    # have: the formula's validator (run by the pre-check) names the key
    env = {"LABSALT_CONFIG_DIR": str(tmp_path / "conf")}
    proc = labsalt("apply", "fritzbox_openwrt", "--test", env=env)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Traceback" not in proc.stdout + proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("labsalt: fritzbox_openwrt:"), proc.stderr


def test_topology_svg_into_a_missing_directory_is_one_line(tmp_path):
    env = {"LABSALT_CONFIG_DIR": str(tmp_path / "conf")}
    proc = labsalt("topology", "--svg", tmp_path / "nowhere" / "map.svg", env=env)
    assert_one_clear_error(proc, f"directory {tmp_path / 'nowhere'} does not exist")


def test_topology_excluding_every_node_blames_exclude_nodes(tmp_path):
    env = {"LABSALT_CONFIG_DIR": str(tmp_path / "conf")}
    nodes = sorted(p.name[4:] for p in Path("/sys/devices/system/node").glob("node[0-9]*"))
    proc = labsalt("topology", "--exclude-nodes", ",".join(nodes or ["0"]), env=env)
    assert_one_clear_error(proc, "htcondor:slots:exclude_nodes:", "leaves no NUMA node")
    assert "reserve_cores" not in proc.stderr


# --------------------------------------------------------------------------- secrets


def _secret_suite(tmp_path):
    """The probe suite with a secret parameter (schema ``secret: true``)."""
    root = tmp_path / "suite"
    shutil.copytree(SUITE, root)
    params = root / "formulas" / "probe" / "parameters"
    schema = yaml.safe_load((params / "schema.yaml").read_text())
    schema["keys"]["token"] = {"type": "str", "secret": True}
    (params / "schema.yaml").write_text(yaml.safe_dump(schema))
    return root


SECRET = "s3cr3t-7f1c9e"


def test_mapdata_masks_secrets_unless_asked(tmp_path):
    env = {
        "LABSALT_CONFIG_DIR": str(tmp_path / "conf"),
        "LABSALT_ROOT": str(_secret_suite(tmp_path)),
    }
    pillar = tmp_path / "extra.yaml"
    pillar.write_text(yaml.safe_dump({"probe": {"token": SECRET}}))
    masked = labsalt("mapdata", "probe", "--pillar-file", pillar, "--out", "json", env=env)
    assert masked.returncode == 0, masked.stderr
    assert SECRET not in masked.stdout + masked.stderr
    assert json.loads(masked.stdout)["local"]["token"] == "***"
    shown = labsalt("mapdata", "probe", "--pillar-file", pillar, "--show-secrets", env=env)
    assert shown.returncode == 0, shown.stderr
    assert yaml.safe_load(shown.stdout)["local"]["token"] == SECRET


def test_pillar_file_from_stdin_never_reaches_a_command_line(tmp_path):
    env = dict(os.environ, LABSALT_CONFIG_DIR=str(tmp_path / "conf"), LABSALT_ROOT=str(SUITE))
    seen, modes, done = [], set(), threading.Event()
    conf = tmp_path / "conf"

    def watch():
        while not done.is_set():
            for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
                try:
                    if SECRET.encode() in cmdline.read_bytes():
                        seen.append(cmdline.parent.name)
                except OSError:
                    pass
            for extra in conf.glob("extra-pillar.*"):
                with contextlib.suppress(OSError):
                    modes.add(extra.stat().st_mode & 0o777)
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        procs = [
            subprocess.run(
                [
                    str(LABSALT),
                    *command,
                    "--pillar",
                    str(SUITE / "pillar.example"),
                    "--pillar-file",
                    "-",
                ],
                input=yaml.safe_dump({"probe": {"greeting": SECRET}}),
                capture_output=True,
                text=True,
                check=False,
                env=env,
                timeout=300,
            )  # fmt: skip
            for command in (["apply", "probe", "--test", "-q"], ["mapdata", "probe"])
        ]
    finally:
        done.set()
        watcher.join()
    for proc in procs:
        assert proc.returncode == 0, proc.stderr
    assert yaml.safe_load(procs[1].stdout)["local"]["greeting"] == SECRET  # it was used
    assert seen == []
    assert modes == {0o600}
    assert not list(conf.glob("extra-pillar.*"))  # removed when the run ended


def test_concurrent_runs_each_see_their_own_extra_pillar(tmp_path):
    """Two runs sharing one config dir (one checkout, one pillar tree) at once."""
    env = dict(os.environ, LABSALT_CONFIG_DIR=str(tmp_path / "conf"), LABSALT_ROOT=str(SUITE))
    cmd = [str(LABSALT), "mapdata", "probe", "--pillar", str(SUITE / "pillar.example")]
    for attempt in range(3):
        procs = []
        for who in ("first", "second"):
            pillar = tmp_path / f"{who}.yaml"
            pillar.write_text(yaml.safe_dump({"probe": {"greeting": f"{who}-{attempt}"}}))
            procs.append(
                subprocess.Popen(
                    [*cmd, "--pillar-file", str(pillar), "--out", "json"],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    env=env,
                )
            )
        for who, proc in zip(("first", "second"), procs, strict=True):
            out, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err
            assert json.loads(out)["local"]["greeting"] == f"{who}-{attempt}"


def test_config_files_are_replaced_atomically(tmp_path, monkeypatch):
    monkeypatch.setenv("LABSALT_CONFIG_DIR", str(tmp_path / "conf"))
    conf = write_config(SUITE, SUITE / "pillar.example", minion_id="one")
    first = (conf / "minion").stat().st_ino
    write_config(SUITE, SUITE / "pillar.example", minion_id="two")
    assert (conf / "minion").stat().st_ino != first  # a new file renamed over the old
    assert "id: two" in (conf / "minion").read_text()
    assert not list(conf.glob(".*.tmp"))


def test_templated_pillar_that_fails_to_render_is_one_line(confdir, tmp_path):
    # labsalt cannot parse a Jinja pillar file itself: Salt renders it, the pre-check
    # reports the failure once and nothing else is rendered
    pillar = tmp_path / "pillar"
    pillar.mkdir()
    (pillar / "top.sls").write_text("base:\n  '*':\n    - probe\n")
    (pillar / "probe.sls").write_text("{% set x = 1 %}\nprobe:\n  port: [unclosed\n")
    proc = labsalt("apply", "probe", "--test", "--pillar", pillar, env=confdir)
    assert_one_clear_error(proc, "pillar: Rendering SLS 'probe' failed", "salt.log")


def test_a_push_in_progress_does_not_block_a_local_run(tmp_path):
    """
    ``labsalt ssh ... apply`` holds a job file in salt-ssh's cache while it
    waits on its host; a masterless run from the same checkout and pillar (the
    same private config dir) is not refused as "state.apply is running".
    """
    env = {"LABSALT_CONFIG_DIR": str(tmp_path / "conf"), "LABSALT_ROOT": str(SUITE)}
    silent = socket.create_server(("127.0.0.1", 0))  # accepts, never says a word
    port = silent.getsockname()[1]
    roster = tmp_path / "roster"
    roster.write_text(f"mute:\n  host: 127.0.0.1\n  port: {port}\n")
    pillar = ["--pillar", str(SUITE / "pillar.example")]
    push = subprocess.Popen(
        [str(LABSALT), "ssh", str(roster), "mute", "apply", "probe", *pillar, "-q"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=dict(os.environ, **env),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not _state_job(tmp_path / "conf"):
            assert push.poll() is None, push.communicate()
            assert time.monotonic() < deadline, "salt-ssh wrote no state.apply job file"
            time.sleep(0.1)
        local = labsalt("apply", "probe", "--test", *pillar, "-q", env=env)
        assert push.poll() is None, "the push ended before the local run: nothing was shown"
        assert local.returncode == 0, local.stderr
        assert "is running as PID" not in local.stdout + local.stderr
    finally:
        push.kill()
        push.communicate()
        silent.close()


def _state_job(conf):
    """salt-ssh's job file of a running state.apply, in whichever cache it keeps."""
    for job in conf.glob("*/proc/*"):
        with contextlib.suppress(OSError, salt.payload.SaltDeserializationError):
            if salt.payload.loads(job.read_bytes()).get("fun") == "state.apply":
                return job
    return None
