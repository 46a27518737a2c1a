"""
bigbluebutton on a seasoned host (issue 16), over salt-ssh.  BigBlueButton needs
Ubuntu, so the host carries BBB's default files (tests/fixtures/bbb) with the
site's own changes in them, as a running BBB would: properties the formula does
not manage in bbb-web.properties, a site-tuned FreeSWITCH parameter, and UFW
with a rule of the site's.

First, on the bare host (no BBB files yet, nothing pre-installed), ``--test``
with the installer enabled predicts every state instead of failing (issue 15).
Then the formula is applied with the installer disabled (BBB "installed by
other means") and dial-in's SIP rule: the site's lines and UFW rule stay, xmllint is
installed by the formula for the dial plan's check, the restart runs once, a
second apply changes nothing; BBB's packaged FreeSWITCH files put back as an
upgrade does get the lab's edits back from apply-config.sh;
``bigbluebutton.clean`` removes the dial plan and
the formula's own state, purges the libxml2-utils it installed, and leaves
everything else under /etc, /usr/local, /srv, /opt as it was (the formula's key
edits in BBB's files stay: they are BBB's settings).
"""

import pytest
import yaml

from tests.support import snapshot
from tests.support.bbb_standins import FIXTURES

TOKEN = "SiteDialToken4242"
FS = "/opt/freeswitch/etc/freeswitch"
SITE_PROPERTIES = """#
# Use this file to override default entries in
# /usr/share/bbb-web/WEB-INF/classes/bigbluebutton.properties
#

bigbluebutton.web.serverURL=https://bbb.lab.test
securitySalt=Q7nVb2kLr9TzW4xYcP1mHs8dFg3jKa6e
# site: our own logout page and room size
bigbluebutton.web.logoutURL=https://www.site.example/bye
defaultMaxUsers=50
allowStartStopRecording=true
"""
MANAGED = (
    "allowStartStopRecording=",
    "disableRecordingDefault=",
    "defaultWelcomeMessageFooter=",
    "defaultDialAccessNumber=",
    "defaultNumDigitsForTelVoice=",
)
FILES = {
    "bigbluebutton.properties": "/usr/share/bbb-web/WEB-INF/classes/bigbluebutton.properties",
    "freeswitch/autoload_configs/opus.conf.xml": f"{FS}/autoload_configs/opus.conf.xml",
    "freeswitch/autoload_configs/conference.conf.xml": f"{FS}/autoload_configs/conference.conf.xml",
    "freeswitch/dialplan/default/bbb_conference.xml": f"{FS}/dialplan/default/bbb_conference.xml",
    "freeswitch/dialplan/public.xml": f"{FS}/dialplan/public.xml",
}
# Files whose single managed keys/attributes the formula edits (the rest is compared line by line).
EDITED = (
    "/etc/bigbluebutton/bbb-web.properties",
    f"{FS}/autoload_configs/conference.conf.xml",
    f"{FS}/dialplan/default/bbb_conference.xml",
)


def write_pillar(path, installer, firewall=False):
    path.mkdir()
    (path / "top.sls").write_text("base:\n  '*':\n    - bbb\n")
    bbb = {
        "hostname": "bbb.lab.test",
        "email": "admin@lab.test",
        "installer": installer,
        "webhooks": False,
        "firewall": {"enabled": firewall},
        "dialin": {"enabled": True, "number": "+49 711 12345678", "token": TOKEN},
        "api": {"verify": False},
        "restart_cmd": ["sh", "-c", "echo restart >> /root/bbb-restarts"],
    }
    (path / "bbb.sls").write_text(yaml.safe_dump({"bigbluebutton": bbb}))
    return path


def failed(ret):
    return {k: v["comment"] for k, v in ret.items() if v["result"] is False}


def changed(ret):
    return {k: v["changes"] for k, v in ret.items() if v["changes"]}


def unedited(listing):
    return {path: what for path, what in listing.items() if not path.startswith(EDITED)}


@pytest.fixture(scope="module")
def site(host_factory, tmp_path_factory):
    # The site uses UFW (as bbb-install -w sets it up) with a rule of its own.
    host = host_factory.start("bbbsite", packages=["ufw"])
    host.run("ufw", "allow", "8080/tcp")
    tmp = tmp_path_factory.mktemp("bbb-site")
    bare_pillar = write_pillar(
        tmp / "bare",
        {"enabled": True, "url": "http://192.0.2.1/bbb-install.sh", "sha256": "0" * 64},
    )
    bare_files = snapshot.files(host)
    bare_test = host.apply("bigbluebutton", pillar_dir=bare_pillar, test=True)
    bare_after = snapshot.files(host)
    # BBB's files as the site has them
    for src, dest in FILES.items():
        host.run(
            "sh",
            "-c",
            f'mkdir -p "$(dirname {dest})" && cat > {dest}',
            input=(FIXTURES / src).read_text(),
        )
    host.run(
        "sh",
        "-c",
        "mkdir -p /etc/bigbluebutton && cat > /etc/bigbluebutton/bbb-web.properties",
        input=SITE_PROPERTIES,
    )
    opus = f"{FS}/autoload_configs/opus.conf.xml"
    host.run("sed", "-i", 's/name="complexity" value="10"/name="complexity" value="8"/', opus)
    host.run("mkdir", "-p", f"{FS}/dialplan/public")
    # bbb-config's directory, where bbb-conf looks for apply-config.sh
    host.run("mkdir", "-p", "/etc/bigbluebutton/bbb-conf")
    pillar = write_pillar(tmp / "pillar", {"enabled": False}, firewall=True)
    before = {"files": snapshot.files(host), "packages": snapshot.packages(host)}
    texts = {path: host.run("cat", path).stdout for path in EDITED + (opus,)}
    first = host.apply("bigbluebutton", pillar_dir=pillar)
    second = host.apply("bigbluebutton", pillar_dir=pillar)
    # A BBB upgrade puts BBB's packaged files back; bbb-conf --restart then runs
    # apply-config.sh (with the host's own python3, no Salt) before BBB starts.
    settled = {path: host.run("cat", path).stdout for path in EDITED[1:]}  # the FreeSWITCH files
    for src, dest in FILES.items():
        if dest in settled:
            host.put(dest, (FIXTURES / src).read_text())
    reverted = {path: host.run("cat", path).stdout for path in settled}
    hook = host.run("/etc/bigbluebutton/bbb-conf/apply-config.sh", check=False)
    restored = {path: host.run("cat", path).stdout for path in settled}
    after_upgrade = host.apply("bigbluebutton", pillar_dir=pillar)
    return {
        "host": host,
        "pillar": pillar,
        "bare": (bare_files, bare_test, bare_after),
        "before": before,
        "texts": texts,
        "first": first,
        "second": second,
        "upgrade": (settled, reverted, hook, restored, after_upgrade),
    }


def test_bigbluebutton_test_mode_predicts_on_a_bare_host(site):
    files, ret, after = site["bare"]
    assert not failed(ret), failed(ret)
    assert changed(ret)
    assert after == files


def test_bigbluebutton_coexists_with_site(site):
    host = site["host"]
    assert not failed(site["first"]), failed(site["first"])
    props = host.run("cat", "/etc/bigbluebutton/bbb-web.properties").stdout.splitlines()
    site_lines = [
        line
        for line in site["texts"]["/etc/bigbluebutton/bbb-web.properties"].splitlines()
        if not line.startswith(MANAGED)
    ]
    assert [line for line in props if not line.startswith(MANAGED)] == site_lines
    assert "allowStartStopRecording=false" in props  # the formula's key, edited in place
    assert props.index("allowStartStopRecording=false") == props.index("defaultMaxUsers=50") + 1
    opus = f"{FS}/autoload_configs/opus.conf.xml"
    # use-dtx is 0 already: the file stays as the site tuned it (complexity 8)
    assert host.run("cat", opus).stdout == site["texts"][opus]
    host.run("/usr/bin/xmllint", "--noout", f"{FS}/dialplan/public/dialin.xml")
    assert host.run("cat", "/root/bbb-restarts").stdout == "restart\n"
    rules = host.run("ufw", "show", "added").stdout
    assert "ufw allow 5060/tcp" in rules and "ufw allow 8080/tcp" in rules
    assert not failed(site["second"]) and not changed(site["second"]), changed(site["second"])
    assert host.run("cat", "/root/bbb-restarts").stdout == "restart\n"


def test_bigbluebutton_settings_come_back_after_an_upgrade(site):
    """apply-config.sh (labsalt's own here: the site had none), run by the host's
    python3 without Salt, restores the FreeSWITCH edits an upgrade reverted; the
    next highstate then changes nothing and does not restart BBB again."""
    settled, reverted, hook, restored, after = site["upgrade"]
    assert reverted != settled  # the upgrade took the lab's edits away
    assert hook.returncode == 0, hook.stdout + hook.stderr
    assert "labsalt: set" in hook.stdout
    assert restored == settled
    assert not failed(after) and not changed(after), changed(after)
    host = site["host"]
    assert host.run("cat", "/root/bbb-restarts").stdout == "restart\n"
    mode = host.run("stat", "-c", "%a", "/etc/bigbluebutton/bbb-conf/apply-config.sh").stdout
    assert mode.strip() == "755"


def test_bigbluebutton_clean_leaves_the_site(site):
    host = site["host"]
    cleaned = host.apply("bigbluebutton.clean", pillar_dir=site["pillar"])
    assert not failed(cleaned), failed(cleaned)
    after = snapshot.files(host)
    before = site["before"]["files"]
    assert snapshot.diff(unedited(before), unedited(after)) == []
    assert host.run("test", "-e", "/var/lib/labsalt", check=False).returncode != 0
    assert snapshot.packages(host) == site["before"]["packages"]  # libxml2-utils purged again
    rules = host.run("ufw", "show", "added").stdout
    assert "ufw allow 8080/tcp" in rules and "5060" not in rules  # the site's rule stays
    assert host.run("dpkg-query", "-W", "libxml2-utils", check=False).returncode != 0 or (
        "libxml2-utils" in site["before"]["packages"]
    )
    again = host.apply("bigbluebutton.clean", pillar_dir=site["pillar"])
    assert not failed(again) and not changed(again), changed(again)
