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
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from tests.support.bbb_standins import API_SECRET, FIXTURES, INSTALLER, MM_TOKEN, StandIns

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
    predicted_proc, predicted = apply(pillar, test=True)
    first_proc, first = apply(pillar, quiet=False)
    second_proc, second = apply(pillar)
    return {
        "root": root,
        "pillar": pillar,
        "predicted": (predicted_proc, predicted),
        "first": (first_proc, first),
        "second": (second_proc, second),
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
    states = by_id(ret)
    assert states["bigbluebutton-installed"]["result"] is None
    assert states["bigbluebutton-properties"]["result"] is None
    assert "allowStartStopRecording" in states["bigbluebutton-properties"]["changes"]["keys"]
    assert states["bigbluebutton-audio-energy-level"]["result"] is None
    assert states["bigbluebutton-audio-opus-dtx"]["result"] is True  # already 0
    first = by_id(host["first"][1])
    for sid in ("bigbluebutton-properties", "bigbluebutton-audio-energy-level"):
        assert first[sid]["changes"], sid  # the real run did what test mode predicted


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
