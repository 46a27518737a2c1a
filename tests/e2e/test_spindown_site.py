"""
spindown on a seasoned NAS (issue 16): /etc/hdparm.conf already has the site's
entry for another disk, the site has cron, hdparm and systemd-timesyncd.  The
formula adds a marked block for its own disk and keeps the site's entry; a
second apply changes nothing; spindown.clean gives back /etc, /srv, /usr/local,
/opt and /var/lib/labsalt as they were, with the site's packages installed
and the packages labsalt installed (smartmontools, dma) purged.
"""

import os

import pytest

from tests.e2e.test_ipxe_site import listing
from tests.support.loopdev import LoopUnavailable, loop_device
from tests.support.states import assert_no_changes, assert_ok

SITE_PACKAGES = ["cron", "hdparm", "systemd-timesyncd"]
BY_ID = "ata-LABSALT_SPINDOWN_SITE"
SITE_ENTRY = """
# The site's backup disk: spin down after 20 minutes.
/dev/disk/by-id/ata-SITE_BACKUP_DISK {
    spindown_time = 240
}
"""


@pytest.fixture(scope="module")
def loop():
    try:
        with loop_device(filesystem=False, prefix="labsalt-spindown-site-") as (device, _):
            yield device
    except LoopUnavailable as exc:
        pytest.skip(f"cannot create a loop device on this machine: {exc}")


@pytest.fixture(scope="module")
def nas(host_factory, loop):
    host = host_factory.start("nas-site", packages=SITE_PACKAGES)
    rdev = os.stat(loop).st_rdev
    host.run("mknod", loop, "b", os.major(rdev), os.minor(rdev))
    host.run("mkdir", "-p", "/dev/disk/by-id")
    host.run("ln", "-s", f"../..{loop[len('/dev') :]}", f"/dev/disk/by-id/{BY_ID}")
    conf = host.path("/etc/hdparm.conf")
    conf.write_text(conf.read_text() + SITE_ENTRY)
    return host


def installed(host, package):
    status = host.run("dpkg-query", "-W", "-f=${Status}", package, check=False).stdout
    return "install ok installed" in status


def test_spindown_coexists_with_site(nas, loop):
    pillar = {"spindown": {"disks": [{"device": os.path.basename(loop)}]}}
    before = listing(nas)
    site_conf = nas.path("/etc/hdparm.conf").read_text()
    assert not installed(nas, "smartmontools") and not installed(nas, "dma")

    assert_ok(nas.apply("spindown", pillar=pillar))
    conf = nas.path("/etc/hdparm.conf").read_text()
    # The site's file, its entry for the other disk included, then the block.
    assert conf.startswith(site_conf), conf
    block = conf[len(site_conf) :]
    assert block.startswith("# BEGIN labsalt spindown") and block.endswith(
        "# END labsalt spindown\n"
    )
    assert f"/dev/disk/by-id/{BY_ID} {{" in block and "SITE_BACKUP_DISK" not in block
    # cron (the site's) runs the formula's daily jobs; the packages it lacked are in.
    assert installed(nas, "smartmontools") and installed(nas, "dma")
    assert nas.run("systemctl", "is-active", "cron").stdout.strip() == "active"
    assert nas.path("/etc/cron.daily/smart-check").is_file()

    assert_no_changes(nas.apply("spindown", pillar=pillar))

    assert_ok(nas.apply("spindown.clean", pillar=pillar))
    after = listing(nas)
    assert after == before, "\n".join(
        [f"- {line}" for line in sorted(set(before) - set(after))]
        + [f"+ {line}" for line in sorted(set(after) - set(before))]
    )
    assert all(installed(nas, package) for package in SITE_PACKAGES)
    assert not installed(nas, "smartmontools") and not installed(nas, "dma")


SPINDOWN_PACKAGES = ["cron", "hdparm", "smartmontools", "dma", "systemd-timesyncd"]


def test_spindown_converges_on_a_bare_host(host_factory, loop):
    """Issue 14: the base image only; test mode predicts, one run converges, clean purges."""
    host = host_factory.start("nas-bare")
    rdev = os.stat(loop).st_rdev
    host.run("mknod", loop, "b", os.major(rdev), os.minor(rdev))
    pillar = {"spindown": {"disks": [{"device": os.path.basename(loop)}]}}
    assert not any(installed(host, package) for package in SPINDOWN_PACKAGES)

    predicted = host.apply("spindown", pillar=pillar, test=True)
    assert_ok(predicted)
    assert not any(installed(host, package) for package in SPINDOWN_PACKAGES)

    assert_ok(host.apply("spindown", pillar=pillar))
    assert all(installed(host, package) for package in SPINDOWN_PACKAGES)
    # cron runs the daily jobs the formula wrote; the clock files live on /run.
    assert host.run("systemctl", "is-active", "cron").stdout.strip() == "active"
    host.run("test", "-x", "/etc/cron.daily/smart-check")
    link = host.run("readlink", "/var/lib/systemd/timesync/clock").stdout.strip()
    assert link == "/run/systemd/timesync/clock"
    assert_no_changes(host.apply("spindown", pillar=pillar))

    assert_ok(host.apply("spindown.clean", pillar=pillar))
    assert not any(installed(host, package) for package in SPINDOWN_PACKAGES)
