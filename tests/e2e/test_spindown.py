"""
spindown applied for real to a booted Debian 12 host (the seed's NAS: cron,
postfix, smartmontools and systemd-timesyncd installed), with `labsalt` over
salt-ssh, then checked with systemd's own tools, applied again, predicted with
test=True and cleaned back to the original state.

The host has no disk of its own: a loop device of this machine is made visible
in it (mknod) with the /dev/disk/by-id link udev would make, and the pillar names
it by its kernel name, as the seed names "sda".  A loop device cannot take ATA
power commands, so the hdparm unit skips itself and spindown.state says why.
"""

import os
import time

import pytest

from tests.support.hosts import ApplyError
from tests.support.loopdev import LoopUnavailable, loop_device
from tests.support.states import assert_no_changes, assert_ok, changed

PACKAGES = ["cron", "postfix", "smartmontools", "systemd-timesyncd", "hdparm"]
BY_ID = "ata-LABSALT_SPINDOWN_TEST"
UNIT = f"hdparm-{BY_ID}.service"
TIMER_DROPIN = "/etc/systemd/system/systemd-tmpfiles-clean.timer.d/spindown.conf"


@pytest.fixture(scope="module")
def loop():
    try:
        with loop_device(filesystem=False, prefix="labsalt-spindown-e2e-") as (device, _):
            yield device
    except LoopUnavailable as exc:
        pytest.skip(f"cannot create a loop device on this machine: {exc}")


@pytest.fixture(scope="module")
def nas(host_factory, loop):
    host = host_factory.start("nas", packages=PACKAGES)
    rdev = os.stat(loop).st_rdev
    host.run("mknod", loop, "b", os.major(rdev), os.minor(rdev))
    host.run("mkdir", "-p", "/dev/disk/by-id")
    host.run("ln", "-s", f"../..{loop[len('/dev') :]}", f"/dev/disk/by-id/{BY_ID}")
    return host


@pytest.fixture(scope="module")
def pillar(loop):
    return {"spindown": {"disks": [{"device": os.path.basename(loop)}]}}


def observe(host):
    """What spindown changes, as text: compared before, after and after clean."""

    def sh(script):
        return host.run("sh", "-c", script, check=False).stdout

    return {
        "crontab": sh("cat /etc/crontab"),
        "hdparm.conf": sh("cat /etc/hdparm.conf"),
        "units": sh("ls /etc/systemd/system; ls /etc/systemd/system/*.d 2>/dev/null"),
        "enabled": sh(
            "systemctl is-enabled apt-daily.timer smartmontools.service postfix.service;"
            "systemctl is-active apt-daily.timer smartmontools.service"
        ),
        "packages": sh("dpkg-query -W -f '${Package} ${db:Status-Abbrev}\\n' postfix dma"),
        "cron": sh("ls /etc/cron.daily /etc/cron.hourly; cat /etc/cron.d/dma 2>/dev/null"),
        "tmpfiles": sh(
            "ls /etc/tmpfiles.d; stat -c '%n %F %U' /var/lib/systemd/timesync"
            " /var/lib/systemd/timesync/clock /var/lib/systemd/clock 2>&1"
        ),
        "undo": sh("ls /var/lib/labsalt 2>/dev/null"),
    }


@pytest.fixture(scope="module")
def original(nas):
    return observe(nas)


def test_bad_disk_is_refused_before_anything_changes(nas, original):
    with pytest.raises(ApplyError, match="ata-NOPE: /dev/disk/by-id/ata-NOPE does not exist"):
        nas.apply("spindown", pillar={"spindown": {"disks": [{"device": "disk/by-id/ata-NOPE"}]}})
    assert observe(nas) == original


def test_test_mode_predicts_and_changes_nothing(nas, pillar, original):
    ret = nas.apply("spindown", pillar=pillar, test=True)
    assert_ok(ret)
    predicted = changed(ret)
    assert any(UNIT in key for key in predicted), sorted(predicted)
    assert any("spindown-mail-mta-removed" in key for key in predicted)
    assert observe(nas) == original


@pytest.fixture(scope="module")
def applied(nas, pillar, original):
    ret = nas.apply("spindown", pillar=pillar)
    assert_ok(ret)
    return ret


def test_hdparm_unit_is_valid_enabled_and_skips_a_disk_without_power_commands(nas, applied):
    text = nas.path(f"/etc/systemd/system/{UNIT}").read_text()
    assert f"ExecStart=/sbin/hdparm -S 120 /dev/disk/by-id/{BY_ID}" in text
    verify = nas.run("systemd-analyze", "verify", "--man=no", UNIT)
    assert verify.stdout + verify.stderr == ""
    assert nas.run("systemctl", "is-enabled", UNIT).stdout.strip() == "enabled"
    result = nas.run("systemctl", "show", "-p", "Result", "--value", UNIT).stdout.strip()
    assert result == "exec-condition"
    comment = next(v["comment"] for k, v in applied.items() if f"applied-{UNIT}" in k)
    assert "cannot report its power mode" in comment
    conf = nas.path("/etc/hdparm.conf").read_text()
    assert f"/dev/disk/by-id/{BY_ID} {{\n    spindown_time = 120\n}}" in conf


def test_state_reports_unknown_with_the_reason(nas, loop, applied):
    state = nas.call("spindown.state", os.path.basename(loop))
    assert state["device"] == f"/dev/disk/by-id/{BY_ID}"
    assert state["state"] == "unknown"
    assert "hdparm -C exited 22 (Invalid argument)" in state["reason"]


def test_frequent_timers_off_and_tmpfiles_clean_every_two_weeks(nas, applied):
    assert nas.run("systemctl", "is-enabled", "apt-daily.timer", check=False).stdout == "disabled\n"
    timers = nas.run("systemctl", "list-timers", "--all", "--no-legend").stdout
    apt_daily = [line for line in timers.splitlines() if "apt-daily.timer" in line]
    assert all(line.startswith("-") for line in apt_daily), apt_daily
    verify = nas.run("systemd-analyze", "verify", "--man=no", "systemd-tmpfiles-clean.timer")
    assert verify.stdout + verify.stderr == ""
    monotonic = nas.run(
        "systemctl", "show", "-p", "TimersMonotonic", "--value", "systemd-tmpfiles-clean.timer"
    ).stdout
    assert "OnUnitActiveUSec=2w" in monotonic and "OnUnitActiveUSec=1d" not in monotonic


def test_crontab_hourly_line_is_commented(nas, applied):
    crontab = nas.path("/etc/crontab").read_text()
    assert (
        "\n#labsalt-spindown# 17 *\t* * *\troot\tcd / && run-parts --report /etc/cron.hourly\n"
        in (crontab)
    )


def test_timesync_clock_lives_on_run(nas, applied):
    nas.run("systemd-tmpfiles", "--create")
    link = nas.run("readlink", "/var/lib/systemd/timesync/clock").stdout.strip()
    assert link == "/run/systemd/timesync/clock"
    assert nas.run("readlink", "/var/lib/systemd/clock").stdout.strip() == "/run/systemd/clock"
    owner = nas.run("stat", "-c", "%U %F", "/run/systemd/timesync/clock").stdout.strip()
    assert owner == "systemd-timesync regular empty file"


def test_smartd_off_and_a_daily_smartctl_check(nas, loop, applied):
    state = nas.run("systemctl", "is-enabled", "smartmontools.service", check=False).stdout
    assert state.strip() == "disabled"
    assert nas.run("systemctl", "is-active", "smartmontools.service", check=False).returncode != 0
    check = nas.run("/etc/cron.daily/smart-check", check=False)
    # A loop device has no SMART data: the job says so (cron mails it to root).
    assert check.returncode == 1
    assert f"smartctl -A /dev/disk/by-id/{BY_ID} exited" in check.stdout


def test_postfix_gone_and_dma_delivers_cron_mail(nas, applied):
    packages = nas.run(
        "dpkg-query", "-W", "-f", "${Package} ${db:Status-Abbrev}\\n", "postfix", "dma"
    )
    assert "dma ii" in packages.stdout and "postfix ii" not in packages.stdout
    assert "#labsalt-spindown# */5 *" in nas.path("/etc/cron.d/dma").read_text()
    assert nas.run("sh", "-n", "/etc/cron.daily/dma-flush-queue").returncode == 0
    # What cron does with a job's output: pipe it to sendmail, here dma, no daemon.
    nas.run(
        "sh", "-c", "printf 'Subject: spindown\\n\\nhello from cron\\n' | /usr/sbin/sendmail root"
    )
    for _ in range(50):
        mbox = nas.run("cat", "/var/mail/root", check=False).stdout
        if "hello from cron" in mbox:
            break
        time.sleep(0.2)
    assert "hello from cron" in mbox


def test_second_apply_and_test_mode_change_nothing(nas, pillar, applied):
    assert_no_changes(nas.apply("spindown", pillar=pillar))
    assert_no_changes(nas.apply("spindown", pillar=pillar, test=True))


def test_clean_restores_the_original_state(nas, pillar, original, applied):
    assert_ok(nas.apply("spindown.clean", pillar=pillar))
    assert observe(nas) == original
    assert_no_changes(nas.apply("spindown.clean", pillar=pillar))
