"""
spindown on this machine, through Salt's real loaders: the plan and its errors,
the rendered units passing (and a broken one failing) the check_cmd, the crontab
step applied to a scratch crontab and cleaned, spindown.state and the wake-up
auditor against a real loop device.  The whole formula is applied to a booted
host in tests/e2e/test_spindown.py.
"""

import subprocess
import sys
import time

import pytest
from salt.exceptions import SaltInvocationError

from tests.conftest import REPO
from tests.support.loopdev import LoopUnavailable, loop_device
from tests.support.states import assert_no_changes, assert_ok, changed

# Appends a page and fsyncs it every 0.2 s, keeping the file open.
WRITER = (
    "import os, sys, time\n"
    "f = open(sys.argv[1], 'a')\n"
    "while True:\n"
    "    f.write('x' * 4096); f.flush(); os.fsync(f.fileno()); time.sleep(0.2)\n"
)


@pytest.fixture(scope="module")
def loop():
    """(device, mountpoint) of an ext4 file system on a loop device."""
    try:
        with loop_device(prefix="labsalt-spindown-") as dev:
            yield dev
    except LoopUnavailable as exc:
        pytest.skip(f"cannot create a loop device on this machine: {exc}")


@pytest.fixture
def writer(loop):
    _, mountpoint = loop
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(mountpoint / "busy")])
    time.sleep(0.3)
    yield proc
    proc.kill()
    proc.wait()
    subprocess.run(["sync", "-f", str(mountpoint)], check=True)


def render_errors(modules, sls, pillar):
    ret = modules.state.show_sls(sls, pillar={"spindown": pillar})
    assert isinstance(ret, list), f"{sls} rendered although the pillar is wrong: {pillar}"
    return "\n".join(ret)


# --------------------------------------------------------------------------- plan and errors


def test_plan_resolves_the_disk(modules, loop):
    device, _ = loop
    kernel = device.rsplit("/", 1)[1]
    plan = modules.spindown.plan({"disks": [{"device": kernel, "spindown_time": 241}]})
    (disk,) = plan["disks"]
    assert disk["kernel"] == kernel
    assert disk["unit"] == f"hdparm-{kernel}.service"
    assert disk["spindown_time"] == 241
    assert disk["meaning"] == "30 min"


@pytest.mark.parametrize(
    ("pillar", "message"),
    [
        (
            {"disks": [{"device": "/dev/disk/by-id/ata-NO_SUCH_DISK"}]},
            "disk /dev/disk/by-id/ata-NO_SUCH_DISK: /dev/disk/by-id/ata-NO_SUCH_DISK does not",
        ),
        (
            {"disks": [{"device": "/dev/null"}]},
            "spindown:disks:0:device: disk /dev/null: /dev/null is not a block device",
        ),
        (
            {"disks": [{"device": "/etc/passwd"}]},
            "spindown:disks:0:device: '/etc/passwd' does not match",
        ),
        (
            {"disks": [{"device": "LOOP", "spindown_time": 300}]},
            "spindown:disks:0:spindown_time: value 300 is above the maximum 255",
        ),
        (
            {"disks": [{"device": "LOOP", "spindown_time": 254}]},
            "spindown:disks:0:spindown_time: 254 is reserved by hdparm -S",
        ),
        (
            {"timers": {"disable": ["no-such-thing.timer"]}},
            "spindown:timers:disable: no such timer on this host: no-such-thing.timer",
        ),
        ({"timers": {"disable": ["cron.service"]}}, "does not match"),
        ({"mail": {"forwarder": "sendmail"}}, "spindown:mail:forwarder: 'sendmail' is not one of"),
    ],
    ids=[
        "missing-disk",
        "not-a-block-device",
        "not-under-dev",
        "spindown-time-300",
        "spindown-time-254",
        "unknown-timer",
        "not-a-timer",
        "unknown-forwarder",
    ],
)
def test_bad_input_is_one_clear_error(modules, loop, pillar, message):
    if pillar.get("disks") and pillar["disks"][0]["device"] == "LOOP":
        pillar = {"disks": [dict(pillar["disks"][0], device=loop[0])]}
    errors = render_errors(modules, "spindown", pillar)
    assert message in errors


def test_hourly_jobs_are_refused_unless_moved(modules, tmp_path):
    hourly = tmp_path / "cron.hourly"
    hourly.mkdir()
    (hourly / "backup").write_text("#!/bin/sh\n")
    errors = render_errors(modules, "spindown.cron", {"cron": {"hourly_dir": str(hourly)}})
    assert f"spindown:cron:hourly_jobs: {hourly} has jobs (backup)" in errors


# --------------------------------------------------------------------------- rendered files


def _rendered(modules, loop, sls, **extra):
    pillar = {"spindown": {"disks": [{"device": loop[0]}], **extra}}
    ret = modules.state.show_sls(sls, pillar=pillar)
    assert isinstance(ret, dict), ret
    return ret


def _arg(state, key):
    for item in next(v for k, v in state.items() if not k.startswith("__")):
        if isinstance(item, dict) and key in item:
            return item[key]
    raise KeyError(key)


def _check(check_cmd, path):
    return subprocess.run(
        f"{check_cmd} {path}", shell=True, capture_output=True, text=True, check=False
    )


def test_hdparm_unit_passes_its_check_and_a_broken_one_fails(modules, loop, tmp_path):
    kernel = loop[0].rsplit("/", 1)[1]
    unit = f"hdparm-{kernel}.service"
    state = _rendered(modules, loop, "spindown.hdparm")[f"spindown-hdparm-unit-{unit}"]
    template = (REPO / "formulas/spindown/files/hdparm.service.jinja").read_text()
    text = modules.file.apply_template_on_contents(
        template, "jinja", _arg(state, "context"), None, "base"
    )
    assert f"ExecStart=/sbin/hdparm -S 120 {loop[0]}" in text
    assert f"ExecCondition=/sbin/hdparm -C {loop[0]}" in text
    good = tmp_path / "good"
    good.write_text(text)
    check = _arg(state, "check_cmd")
    result = _check(check, good)
    assert result.returncode == 0, result.stdout + result.stderr
    bad = tmp_path / "bad"
    bad.write_text(text.replace("RemainAfterExit=yes", "RemainAfterExit=perhaps"))
    result = _check(check, bad)
    assert result.returncode != 0
    assert "Failed to parse boolean value, ignoring: perhaps" in result.stdout


def test_tmpfiles_clean_dropin_passes_its_check(modules, loop, tmp_path):
    state = _rendered(modules, loop, "spindown.timers")["spindown-tmpfiles-clean-timer-dropin"]
    contents = _arg(state, "contents")
    assert "OnUnitActiveSec=\nOnUnitActiveSec=2w\n" in contents
    dropin = tmp_path / "spindown.conf"
    dropin.write_text(contents)
    result = _check(_arg(state, "check_cmd"), dropin)
    assert result.returncode == 0, result.stdout + result.stderr
    dropin.write_text(contents.replace("=2w", "=fortnightly"))
    assert _check(_arg(state, "check_cmd"), dropin).returncode != 0


def test_hdparm_conf_block_names_the_disk(modules, loop):
    state = _rendered(modules, loop, "spindown.hdparm")["spindown-hdparm-conf"]
    block = _arg(state, "content")
    assert f"{loop[0]} {{\n    spindown_time = 120\n}}" in block


def test_site_entry_for_a_pillar_disk_is_refused(modules, loop, tmp_path):
    conf = tmp_path / "hdparm.conf"
    site = "/dev/disk/by-id/ata-OTHER {\n    spindown_time = 240\n}\n"
    conf.write_text(site + f"{loop[0]} {{\n    spindown_time = 60\n}}\n")
    pillar = {"disks": [{"device": loop[0]}], "hdparm": {"conf": str(conf)}}
    errors = render_errors(modules, "spindown.hdparm", pillar)
    assert f"spindown:disks:0:device: {conf} already has an entry for {loop[0]}" in errors
    # The site's entry for another disk is fine, and so is labsalt's own block.
    conf.write_text(
        site + "# BEGIN labsalt spindown: x\n" + f"{loop[0]} {{\n}}\n# END labsalt spindown\n"
    )
    state = _rendered(modules, loop, "spindown.hdparm", hdparm={"conf": str(conf)})
    assert "spindown-hdparm-conf" in state


# --------------------------------------------------------------------------- crontab, applied


CRONTAB = """\
SHELL=/bin/sh
# m h dom mon dow user\tcommand
17 *\t* * *\troot\tcd / && run-parts --report {hourly}
25 6\t* * *\troot\ttest -x /usr/sbin/anacron || {{ cd / && run-parts --report /etc/cron.daily; }}
"""


@pytest.mark.parametrize("move", [False, True], ids=["empty-hourly", "jobs-moved"])
def test_crontab_step_applies_idempotently_and_cleans(modules, tmp_path, move):
    hourly, daily = tmp_path / "cron.hourly", tmp_path / "cron.daily"
    original = CRONTAB.format(hourly=hourly)
    crontab = tmp_path / "crontab"
    crontab.write_text(original)
    hourly.mkdir()
    daily.mkdir()
    (hourly / ".placeholder").write_text("")
    if move:
        (hourly / "backup").write_text("#!/bin/sh\n")
    pillar = {
        "spindown": {
            "cron": {
                # cron itself is not installed on this machine for the test.
                "pkgs": [],
                "crontab": str(crontab),
                "hourly_dir": str(hourly),
                "daily_dir": str(daily),
                "hourly_jobs": "move_to_daily" if move else "refuse",
            },
            "undo_file": str(tmp_path / "undo.json"),
        }
    }
    predicted = modules.state.sls("spindown.cron", pillar=pillar, test=True)
    assert changed(predicted)
    assert crontab.read_text() == original

    assert changed(assert_ok(modules.state.sls("spindown.cron", pillar=pillar)))
    lines = crontab.read_text().splitlines()
    assert f"#labsalt-spindown# 17 *\t* * *\troot\tcd / && run-parts --report {hourly}" in lines
    assert sorted(p.name for p in daily.iterdir()) == (["backup"] if move else [])

    assert_no_changes(modules.state.sls("spindown.cron", pillar=pillar))
    assert_no_changes(modules.state.sls("spindown.cron", pillar=pillar, test=True))

    assert_ok(modules.state.sls("spindown.cron.clean", pillar=pillar))
    assert crontab.read_text() == original
    assert sorted(p.name for p in hourly.iterdir()) == [".placeholder"] + (
        ["backup"] if move else []
    )
    assert not (tmp_path / "undo.json").exists()


# --------------------------------------------------------------------------- spindown.state


def test_state_of_a_loop_device_is_unknown_with_the_reason(modules, loop):
    result = modules.spindown.state(loop[0])
    assert result["state"] == "unknown"
    assert "cannot report its power mode: hdparm -C exited" in result["reason"]
    assert "cannot spin it down" in result["reason"]


def test_state_of_a_missing_disk_is_an_error(modules):
    with pytest.raises(SaltInvocationError, match="ata-NO_SUCH_DISK does not exist"):
        modules.spindown.state("/dev/disk/by-id/ata-NO_SUCH_DISK")


# --------------------------------------------------------------------------- spindown.audit


def _tracefs_mounts():
    with open("/proc/mounts", encoding="utf-8") as handle:
        return [line for line in handle if " tracefs " in line]


def test_audit_names_the_writer_first(modules, loop, writer):
    before = _tracefs_mounts()
    report = modules.spindown.audit(loop[0], seconds=3)
    if report["method"] != "tracefs":
        pytest.skip(f"no block tracing on this machine: {report['notes']}")
    top = report["processes"][0]
    assert top["pid"] == writer.pid, report["summary"]
    assert top["writes"] > 0
    assert top["dirtied"] > 0
    assert top["intervals"] >= 2
    assert report["disk"]["writes"] > 0
    assert report["summary"][0].startswith("python")
    # The private trace instance and any tracefs mount of its own are gone.
    assert _tracefs_mounts() == before


def test_audit_without_tracing_still_names_the_writer(modules, loop, writer):
    report = modules.spindown.audit(loop[0], seconds=2, tracing=False)
    assert report["method"] == "proc-io"
    assert [p["pid"] for p in report["processes"]] == [writer.pid]
    assert report["processes"][0]["io_write_bytes"] > 0


def test_audit_of_a_quiet_disk_names_nobody(modules, loop):
    subprocess.run(["sync", "-f", str(loop[1])], check=True)
    report = modules.spindown.audit(loop[0], seconds=2)
    assert report["processes"] == [], report["summary"]
    assert report["disk"]["busy_intervals"] == 0


def test_audit_merges_a_command_that_runs_again_and_again(modules, loop):
    # Like a cron job: a new short-lived process each time, same command line.
    target = loop[1] / "cronlike"
    spawner = subprocess.Popen(
        [
            "sh",
            "-c",
            f"while :; do dd if=/dev/zero of={target} bs=4k count=1 conv=fsync 2>/dev/null;"
            " sleep 0.3; done",
        ]
    )
    try:
        report = modules.spindown.audit(loop[0], seconds=3)
    finally:
        spawner.kill()
        spawner.wait()
    top = report["processes"][0]
    assert top["name"] == "dd", report["summary"]
    assert len(top["pids"]) >= 3
    assert top["intervals"] >= 2


def test_journal_dropin_only_when_asked(modules):
    pillar = {"spindown": {"journal": {"storage": "volatile", "sync_interval": "1h"}}}
    ret = modules.state.show_sls("spindown.journal", pillar=pillar)
    contents = _arg(ret["spindown-journal-dropin"], "contents")
    assert "[Journal]\nStorage=volatile\nSyncIntervalSec=1h\n" in contents
    ret = modules.state.show_sls("spindown.journal")
    assert "absent" in ret["spindown-journal-dropin"]["file"]
