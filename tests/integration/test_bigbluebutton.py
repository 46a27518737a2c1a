"""
The bigbluebutton formula applied for real through ``labsalt apply`` on this
machine, its paths pointed into a temp dir seeded with (excerpts of) BBB's real
default files (tests/fixtures/bbb, provenance there).

BigBlueButton itself needs Ubuntu, so two stand-ins run on loopback: the
installer is a script that records the flags it was given (served over HTTP,
checked against its pinned sha256 like the real one), and the BBB API answers
getMeetings/isMeetingRunning only when the checksum is right for the secret in
the seeded bbb-web.properties (hash of call + query + secret, as bbb-web does).
"""

import hashlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from tests.support.bbb_standins import (
    API_SECRET,
    FIXTURES,
    FOREIGN_ENTRIES,
    INSTALLER,
    MM_TOKEN,
    RAW_ENTRIES,
    StandIns,
    seed_recordings,
)

REPO = Path(__file__).resolve().parents[2]
TURN_SECRET = "it-TurnSecret-0815-bbbhost"
DIALIN_TOKEN = "Tok3nDial1nZZ42"

pytestmark = [
    pytest.mark.skipif(not shutil.which("xmllint"), reason="xmllint not installed"),
    # labsalt's generated Salt config (and Salt's logs) in a temp dir, not ~/.cache
    pytest.mark.usefixtures("private_salt_config"),
]


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), StandIns)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def seed(root):
    """A host after bbb-install: BBB's default files at their places under root."""
    files = {
        "bigbluebutton.properties": "usr/share/bbb-web/WEB-INF/classes/bigbluebutton.properties",
        "bbb-web.properties": "etc/bigbluebutton/bbb-web.properties",
        "freeswitch": "opt/freeswitch/etc/freeswitch",
    }
    for src, dest in files.items():
        target = root / dest
        target.parent.mkdir(parents=True, exist_ok=True)
        if (FIXTURES / src).is_dir():
            shutil.copytree(FIXTURES / src, target)
        else:
            shutil.copy(FIXTURES / src, target)
    (root / "opt/freeswitch/etc/freeswitch/dialplan/public").mkdir(exist_ok=True)
    (root / "etc/bigbluebutton/bbb-conf").mkdir()  # bbb-config's directory (apply-lib.sh)
    seed_recordings(root / "var")  # BBB's recording directories, raw meetings in them
    return root


def make_pillar(root, server, **overrides):
    bbb = {
        "hostname": "bbb.lab.test",
        "email": "admin@lab.test",
        "installer": {
            "version": "jammy-300",
            "url": f"{server}/bbb-install.sh",
            "sha256": hashlib.sha256(INSTALLER.encode()).hexdigest(),
        },
        "turn": {"host": "turn.lab.test"},
        "webhooks": False,
        "firewall": {"enabled": False},
        "dialin": {"enabled": True, "number": "+49 711 12345678", "token": DIALIN_TOKEN},
        "api": {"url": server, "algorithm": "sha256", "retries": 1},
        "mattermost": {"url": server, "token": MM_TOKEN},
        "restart_cmd": ["sh", "-c", f"echo restart >> {root}/restarts"],
        "paths": {
            "properties": f"{root}/etc/bigbluebutton/bbb-web.properties",
            "default_properties": f"{root}/usr/share/bbb-web/WEB-INF/classes/"
            "bigbluebutton.properties",
            "freeswitch": f"{root}/opt/freeswitch/etc/freeswitch",
            "workdir": f"{root}/var/lib/labsalt",
            "bbb_conf": f"{root}/etc/bigbluebutton/bbb-conf",
            "var": f"{root}/var",
            "record": f"{root}/var/lib/labsalt/bigbluebutton/installed-packages",
        },
    }
    for key, value in overrides.items():
        bbb[key] = {**bbb[key], **value} if isinstance(value, dict) else value
    pillar = root / "pillar"
    pillar.mkdir(exist_ok=True)
    (pillar / "top.sls").write_text("base:\n  '*':\n    - bbb\n")
    data = {"bigbluebutton": bbb, "coturn": {"static_auth_secret": TURN_SECRET}}
    (pillar / "bbb.sls").write_text(yaml.safe_dump(data))
    return pillar


def apply(pillar, *states, test=False, quiet=True):
    args = [sys.executable, "-m", "labsalt", "apply", *(states or ["bigbluebutton"])]
    args += ["--pillar", str(pillar), "--out", "json"]
    args += ["-q"] if quiet else []
    args += ["--test"] if test else []
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    try:
        ret = json.loads(proc.stdout)["local"]
    except (ValueError, KeyError):
        ret = proc.stdout
    return proc, ret


def salt_log(pillar):
    conf = subprocess.run(
        [sys.executable, "-m", "labsalt", "config", "--pillar", str(pillar)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    log = Path(conf) / "log" / "salt.log"
    return log.read_text() if log.exists() else ""


def by_id(ret):
    return {v["__id__"]: v for v in ret.values()}


@pytest.fixture(scope="module")
def host(scratch, server):
    root = seed(scratch("bbbhost"))
    pillar = make_pillar(root, server)
    before = tree(root)
    predicted_proc, predicted = apply(pillar, test=True)
    after_predicted = tree(root)
    first_proc, first = apply(pillar, quiet=False)
    second_proc, second = apply(pillar)
    return {
        "root": root,
        "pillar": pillar,
        "predicted": (predicted_proc, predicted),
        "trees": (before, after_predicted),
        "first": (first_proc, first),
        "second": (second_proc, second),
    }


def tree(root):
    """Every file under root with its content (what test mode must leave alone)."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_relative_to(root / "pillar")
    }


def failures(ret):
    if not isinstance(ret, dict):
        return ret
    return {v["__id__"]: v["comment"] for v in ret.values() if v["result"] is False}


def test_installer_ran_with_the_documented_flags(host):
    proc, ret = host["first"]
    assert proc.returncode == 0, failures(ret)
    args = (host["root"] / "var/lib/labsalt/installer-args").read_text().split()
    assert args == [
        "-v",
        "jammy-300",
        "-s",
        "bbb.lab.test",
        "-e",
        "admin@lab.test",
        "-c",
        f"turn.lab.test:{TURN_SECRET}",
        "-w",
    ]
    state = by_id(ret)["bigbluebutton-installed"]
    assert state["changes"]["installer"].endswith("-c turn.lab.test:*** -w")


def test_post_install_settings_applied(host):
    root = host["root"]
    props = (root / "etc/bigbluebutton/bbb-web.properties").read_text()
    for line in (
        "allowStartStopRecording=false",
        "disableRecordingDefault=true",
        "defaultDialAccessNumber=+49 711 12345678",
        "defaultNumDigitsForTelVoice=5",
        f"securitySalt={API_SECRET}",  # the installer's secret stays
        "bigbluebutton.web.serverURL=https://bbb.lab.test",
    ):
        assert line in props.splitlines(), props
    assert "%%DIALNUM%%" in props and "%%CONFNUM%%" in props
    fs = root / "opt/freeswitch/etc/freeswitch"
    conference = (fs / "autoload_configs/conference.conf.xml").read_text()
    cd = conference[conference.index('name="cdquality"') :]
    assert '<param name="energy-level" value="50"/>' in cd
    assert '<param name="energy-level" value="300"/>' in conference  # default profile kept
    plan = (fs / "dialplan/default/bbb_conference.xml").read_text()
    assert plan.count('application="jitterbuffer" data="60"') == 2
    opus = (fs / "autoload_configs/opus.conf.xml").read_text()
    assert '<param name="use-dtx" value="0" />' in opus


def xpath(path, expr):
    return subprocess.run(
        ["xmllint", "--xpath", expr, str(path)], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_dialin_plan_valid_and_routes_the_notebooks_way(host):
    plan = host["root"] / "opt/freeswitch/etc/freeswitch/dialplan/public/dialin.xml"
    subprocess.run(["xmllint", "--noout", str(plan)], check=True)
    first = "//extension[@name='from_my_provider']"
    assert xpath(plan, f"string({first}/condition/@field)") == "destination_number"
    assert xpath(plan, f"string({first}/condition/@expression)") == f"^{DIALIN_TOKEN}$"
    apps = xpath(plan, f"{first}/condition/action/@application").split()
    assert apps == [
        'application="answer"',
        'application="sleep"',
        'application="play_and_get_digits"',
        'application="transfer"',
    ]
    digits = xpath(plan, f"string({first}//action[@application='play_and_get_digits']/@data)")
    assert digits.startswith("5 5 3 7000 # conference/conf-pin.wav") and " pin " in digits
    transfer = xpath(plan, f"string({first}//action[@application='transfer']/@data)")
    assert transfer == "SEND_TO_CONFERENCE XML public"
    second = "//extension[@name='check_if_conference_active']"
    # the conference must be active (a sofia member) before the caller gets in
    fields = xpath(plan, f"{second}/condition/@field")
    assert fields.split('"')[1] == "${conference ${pin} list}"
    assert xpath(plan, f"string({second}/condition[1]/@expression)") == "/sofia/g"
    assert xpath(plan, f"string({second}/condition[2]/@expression)") == "^SEND_TO_CONFERENCE$"
    assert xpath(plan, f"string({second}//action[2]/@data)") == "${pin} XML default"
    assert plan.stat().st_mode & 0o777 == 0o640


def test_restart_once_and_api_verified(host):
    assert (host["root"] / "restarts").read_text() == "restart\n"
    proc, ret = host["first"]
    healthy = by_id(ret)["bigbluebutton-api-healthy"]
    assert healthy["result"] is True and "answers" in healthy["comment"]
    assert ("getMeetings", "sha256") in StandIns.calls


def test_mattermost_plugin_gets_url_and_secret(host):
    """Through Mattermost's config API (a stand-in: no Mattermost in Debian)."""
    state = by_id(host["first"][1])["bigbluebutton-mattermost-plugin"]
    assert state["result"] is True, state["comment"]
    assert state["changes"]["bigbluebutton"]["salt"] == "***"
    plugins = StandIns.mattermost["PluginSettings"]["Plugins"]
    assert plugins["bigbluebutton"] == {
        "base_url": "https://bbb.lab.test/bigbluebutton/api",
        "salt": API_SECRET,
    }
    assert plugins["other"] == {"x": 1}  # other plugins' settings stay
    assert StandIns.calls.count(("mattermost-patch", None)) == 1  # second apply: no patch


def test_mattermost_skipped_cleanly_without_url(scratch, server):
    root = seed(scratch("nomm"))
    pillar = make_pillar(root, server, mattermost={"url": None, "token": None})
    proc, ret = apply(pillar, "bigbluebutton.mattermost")
    assert proc.returncode == 0, failures(ret)
    (state,) = ret.values()
    assert state["result"] is True and not state["changes"]
    assert "no Mattermost server in pillar" in state["name"]


def test_second_apply_changes_nothing(host):
    proc, ret = host["second"]
    assert proc.returncode == 0, ret
    changed = {k: v["changes"] for k, v in ret.items() if v["changes"]}
    assert not changed
    assert (host["root"] / "restarts").read_text() == "restart\n"


def test_test_mode_predicted_and_touched_nothing(host):
    proc, ret = host["predicted"]
    assert proc.returncode == 0, failures(ret)
    states = by_id(ret)
    assert states["bigbluebutton-installed"]["result"] is None
    assert states["bigbluebutton-properties"]["result"] is None
    assert "allowStartStopRecording" in states["bigbluebutton-properties"]["changes"]["keys"]
    config = states["bigbluebutton-apply-config"]
    assert config["result"] is None
    edits = " ".join(config["changes"]["edits"])
    assert "energy-level" in edits and "jitterbuffer" in edits
    assert "use-dtx" not in edits  # already 0 in BBB's file
    assert states["bigbluebutton-raw-recordings-purged"]["result"] is None
    before, after = host["trees"]
    assert after == before  # nothing written, no recording deleted
    first = by_id(host["first"][1])
    for sid in ("bigbluebutton-properties", "bigbluebutton-apply-config"):
        assert first[sid]["changes"], sid  # the real run did what test mode predicted
    assert sorted(first["bigbluebutton-apply-config"]["changes"]["edits"]) == sorted(
        config["changes"]["edits"]
    )


def test_raw_recordings_purged_only_in_bbbs_directories(host):
    """Recording is disabled (the default): BBB's raw material goes (bigbluebutton#9202)."""
    var = host["root"] / "var"
    purged = by_id(host["first"][1])["bigbluebutton-raw-recordings-purged"]
    assert purged["result"] is True, purged["comment"]
    for rel in RAW_ENTRIES:
        assert not (var / rel).exists(), rel
    for rel, text in FOREIGN_ENTRIES.items():
        assert (var / rel).read_text() == text, rel  # not BBB's raw recordings: kept
    predicted = by_id(host["predicted"][1])["bigbluebutton-raw-recordings-purged"]
    assert predicted["changes"] == purged["changes"]  # test mode named what went


def test_no_secret_in_output_or_logs(host):
    text = json.dumps([host[k][1] for k in ("predicted", "first", "second")])
    text += "".join(host[k][0].stderr for k in ("predicted", "first", "second"))
    text += salt_log(host["pillar"])
    for secret in (TURN_SECRET, DIALIN_TOKEN, API_SECRET, MM_TOKEN):
        assert secret not in text


def test_upgrade_is_a_newer_version_line(scratch, server):
    """The notebook: upgrading is running bbb-install again, with the newer version."""
    root = seed(scratch("upgrade"))
    proc, _ = apply(make_pillar(root, server), "bigbluebutton.install")
    assert proc.returncode == 0
    proc, ret = apply(
        make_pillar(root, server, installer={"version": "noble-400"}), "bigbluebutton.install"
    )
    assert proc.returncode == 0, failures(ret)
    assert "-v noble-400" in by_id(ret)["bigbluebutton-installed"]["changes"]["installer"]
    args = (root / "var/lib/labsalt/installer-args").read_text().split()
    assert args[:2] == ["-v", "noble-400"]
    stamp = json.loads((root / "var/lib/labsalt/bbb-install.json").read_text())
    assert stamp["version"] == "noble-400"
    assert TURN_SECRET not in json.dumps(stamp)
    assert (root / "var/lib/labsalt/bbb-install.log").stat().st_mode & 0o777 == 0o600


def test_api_secret_from_pillar_set_and_hidden(scratch, server):
    root = seed(scratch("apisecret"))
    new = "PillarApiSecret0123456789abcdef"
    pillar = make_pillar(root, server, api={"secret": new}, installer={"enabled": False})
    proc, ret = apply(pillar, "bigbluebutton.config.properties")
    assert proc.returncode == 0, failures(ret)
    props = (root / "etc/bigbluebutton/bbb-web.properties").read_text().splitlines()
    assert f"securitySalt={new}" in props
    assert by_id(ret)["bigbluebutton-properties"]["changes"]["keys"]["securitySalt"] == "***"
    assert new not in json.dumps(ret) + proc.stderr


def test_installer_sha256_mismatch_runs_nothing(scratch, server):
    root = seed(scratch("bad"))
    pillar = make_pillar(root, server, installer={"sha256": "0" * 64})
    proc, ret = apply(pillar)
    assert proc.returncode != 0
    installed = by_id(ret)["bigbluebutton-installed"]
    assert installed["result"] is False
    assert f"pins {'0' * 64}" in installed["comment"] and "nothing was run" in installed["comment"]
    assert not (root / "var/lib/labsalt/installer-args").exists()
    assert not (root / "var/lib/labsalt/bbb-install.sh").exists()
    # everything after the installer waits for it: no file was edited
    assert (root / "etc/bigbluebutton/bbb-web.properties").read_text() == (
        FIXTURES / "bbb-web.properties"
    ).read_text()
    assert not (root / "opt/freeswitch/etc/freeswitch/dialplan/public/dialin.xml").exists()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"dialin": {"number": "+49 711 1234x"}}, "bigbluebutton:dialin:number: "),
        ({"dialin": {"token": None}}, "bigbluebutton:dialin:token: is missing"),
    ],
)
def test_bad_input_one_error_nothing_touched(scratch, server, overrides, message):
    root = seed(scratch("bad"))
    proc, ret = apply(make_pillar(root, server, **overrides))
    assert proc.returncode != 0
    assert message in json.dumps(ret) + proc.stderr
    assert not (root / "var/lib/labsalt").exists()
    assert DIALIN_TOKEN not in json.dumps(ret) + proc.stderr


def test_missing_turn_secret_refused_before_anything(scratch, server):
    root = seed(scratch("bad"))
    pillar = make_pillar(root, server)
    data = yaml.safe_load((pillar / "bbb.sls").read_text())
    del data["coturn"]
    (pillar / "bbb.sls").write_text(yaml.safe_dump(data))
    proc, ret = apply(pillar)
    assert proc.returncode != 0
    assert "coturn:static_auth_secret: is missing" in json.dumps(ret) + proc.stderr
    assert not (root / "var/lib/labsalt").exists()


# BBB's packaged files, put back as a package upgrade does (bigbluebutton#9111, #15159).
PACKAGED = {
    "bigbluebutton.properties": "usr/share/bbb-web/WEB-INF/classes/bigbluebutton.properties",
    "freeswitch/autoload_configs/opus.conf.xml": "opt/freeswitch/etc/freeswitch/"
    "autoload_configs/opus.conf.xml",
    "freeswitch/autoload_configs/conference.conf.xml": "opt/freeswitch/etc/freeswitch/"
    "autoload_configs/conference.conf.xml",
    "freeswitch/dialplan/default/bbb_conference.xml": "opt/freeswitch/etc/freeswitch/"
    "dialplan/default/bbb_conference.xml",
    "freeswitch/dialplan/public.xml": "opt/freeswitch/etc/freeswitch/dialplan/public.xml",
}


def upgrade(root):
    for src, dest in PACKAGED.items():
        shutil.copy(FIXTURES / src, root / dest)


def test_settings_survive_a_bbb_upgrade(scratch, server):
    """
    The lab's settings live where BBB documents overrides: bbb-web.properties
    (never the packaged properties) and apply-config.sh (bbb-conf runs it before
    BBB starts).  After an upgrade put the packaged files back, apply-config.sh
    brings the settings back; so does the next highstate, changing nothing else.
    """
    root = seed(scratch("bbb-upgrade"))
    pillar = make_pillar(
        root,
        server,
        installer={"enabled": False},
        api={"verify": False},
        mattermost={"url": None, "token": None},
    )
    proc, ret = apply(pillar)
    assert proc.returncode == 0, failures(ret)
    for src, dest in PACKAGED.items():
        if src.endswith(".properties"):
            assert (root / dest).read_text() == (FIXTURES / src).read_text()  # never edited
    settled = tree(root)
    hook = root / "etc/bigbluebutton/bbb-conf/apply-config.sh"
    assert os.access(hook, os.X_OK)

    upgrade(root)
    assert tree(root) != settled  # the FreeSWITCH edits are gone
    run = subprocess.run(["bash", str(hook)], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert tree(root) == settled, run.stdout

    upgrade(root)
    proc, ret = apply(pillar)
    assert proc.returncode == 0, failures(ret)
    changed = {v["__id__"]: v["changes"] for v in ret.values() if v["changes"]}
    assert set(changed) == {"bigbluebutton-apply-config", "bigbluebutton-restart"}, changed
    assert set(changed["bigbluebutton-apply-config"]) == {"edits"}  # the hook itself survived
    restarts = settled.pop("restarts")
    after = tree(root)
    assert after.pop("restarts") == restarts * 2
    assert after == settled


def test_clean_removes_the_hook_and_keeps_the_sites_script(scratch, server):
    root = seed(scratch("bbb-hook-clean"))
    site = "#!/bin/bash\nsource /etc/bigbluebutton/bbb-conf/apply-lib.sh\n\nenableUFWRules\n"
    hook = root / "etc/bigbluebutton/bbb-conf/apply-config.sh"
    hook.write_text(site)
    hook.chmod(0o755)
    pillar = make_pillar(root, server, installer={"enabled": False})
    proc, ret = apply(pillar, "bigbluebutton.config.audio")
    assert proc.returncode == 0, failures(ret)
    assert hook.read_text().startswith(site) and "labsalt" in hook.read_text()
    proc, ret = apply(pillar, "bigbluebutton.clean")
    assert proc.returncode == 0, failures(ret)
    assert hook.read_text() == site
    assert sorted(p.name for p in hook.parent.iterdir()) == ["apply-config.sh"]
