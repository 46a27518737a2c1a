"""
Two fresh hosts, one command: ``labsalt conference`` converges the TURN host with
coturn, then the BBB host with bigbluebutton, over salt-ssh.  On the TURN host
coturn really runs behind its nftables table and a real TURN client relays data
through it; the BBB host (Debian, so BBB itself is replaced by its default files
and the stand-ins of tests/integration/test_bigbluebutton.py) gets every
post-install setting; a second run changes nothing; no secret is printed or
logged; an unreachable TURN host stops the run before the BBB host is touched.
"""

import hashlib
import http.server
import json
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from tests.support.bbb_standins import API_SECRET, FIXTURES, INSTALLER, StandIns

TURN_SECRET = "e2e-TurnSecret-31337-shared"
DIALIN_TOKEN = "E2eDialToken77"
PACKAGES = ["coturn", "nftables", "libxml2-utils"]
BBB_FILES = {
    "bigbluebutton.properties": "/usr/share/bbb-web/WEB-INF/classes/bigbluebutton.properties",
    "bbb-web.properties": "/etc/bigbluebutton/bbb-web.properties",
    "freeswitch/autoload_configs/opus.conf.xml": "/opt/freeswitch/etc/freeswitch/"
    "autoload_configs/opus.conf.xml",
    "freeswitch/autoload_configs/conference.conf.xml": "/opt/freeswitch/etc/freeswitch/"
    "autoload_configs/conference.conf.xml",
    "freeswitch/dialplan/default/bbb_conference.xml": "/opt/freeswitch/etc/freeswitch/"
    "dialplan/default/bbb_conference.xml",
    "freeswitch/dialplan/public.xml": "/opt/freeswitch/etc/freeswitch/dialplan/public.xml",
}


def conference(roster, pillar, turn="turn1", bbb="bbb1", test=False):
    cmd = [sys.executable, "-m", "labsalt", "conference", str(roster)]
    cmd += ["--turn", turn, "--bbb", bbb, "--pillar", str(pillar), "--ignore-host-keys"]
    cmd += ["--test"] if test else []
    return subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=900)


@pytest.fixture(scope="module")
def lab(host_factory, tmp_path_factory):
    turn, bbb = host_factory.start_many(["turn1", "bbb1"], packages=PACKAGES)
    for src, dest in BBB_FILES.items():  # BBB's default files, as after bbb-install
        bbb.run(
            "sh",
            "-c",
            f"mkdir -p {Path(dest).parent} && cat > {dest}",
            input=(FIXTURES / src).read_text(),
        )
    bbb.run(
        "mkdir",
        "-p",
        "/opt/freeswitch/etc/freeswitch/dialplan/public",
        "/etc/bigbluebutton/bbb-conf",
    )
    httpd = http.server.ThreadingHTTPServer((bbb.ns.host_addr, 0), StandIns)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    server = f"http://{bbb.ns.host_addr}:{httpd.server_address[1]}"

    pillar = tmp_path_factory.mktemp("conference-pillar")
    # turn-down (unreachable) has the TURN host's pillar, so the pre-check passes
    # and the run stops at SSH, as a TURN host that is down would.
    (pillar / "top.sls").write_text(
        "base:\n  '*':\n    - shared\n  'turn1 or turn-down':\n    - match: compound\n"
        "    - turn\n  bbb1:\n    - bbb\n"
    )
    shared = {"coturn": {"static_auth_secret": TURN_SECRET}}
    (pillar / "shared.sls").write_text(yaml.safe_dump(shared))
    turn_pillar = {
        "labsalt": {"roles": ["turn"]},
        "coturn": {
            "realm": "turn.lab.test",
            "min_port": 50000,
            "max_port": 50100,
            "allowed_peer_ips": [turn.ns.host_addr],
        },
    }
    (pillar / "turn.sls").write_text(yaml.safe_dump(turn_pillar))
    bbb_pillar = {
        "labsalt": {"roles": ["bbb"]},
        "bigbluebutton": {
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
            "api": {"url": server, "algorithm": "sha256", "retries": 2},
            "restart_cmd": ["sh", "-c", "echo restart >> /root/bbb-restarts"],
        },
    }
    (pillar / "bbb.sls").write_text(yaml.safe_dump(bbb_pillar))
    roster = host_factory.roster(
        [turn, bbb], extra={"turn-down": {"host": "127.0.0.1", "port": 1, "user": "root"}}
    )
    unreachable = conference(roster, pillar, turn="turn-down")
    untouched = bbb.run("test", "-e", "/var/lib/labsalt", check=False).returncode != 0
    watched = [(turn, "/etc/turnserver.conf"), (bbb, "/etc/bigbluebutton/bbb-web.properties")]
    before = [host.run("sha256sum", path).stdout for host, path in watched]
    predicted = conference(roster, pillar, test=True)
    after_test = [host.run("sha256sum", path).stdout for host, path in watched]
    after_test += [bbb.run("ls", "/var/lib", "/etc/labsalt", check=False).stdout]
    first = conference(roster, pillar)
    second = conference(roster, pillar)
    yield {
        "turn": turn,
        "bbb": bbb,
        "roster": roster,
        "pillar": pillar,
        "unreachable": (unreachable, untouched),
        "predicted": (predicted, before, after_test),
        "first": first,
        "second": second,
    }
    httpd.shutdown()


def test_unreachable_turn_host_stops_before_bbb(lab):
    proc, untouched = lab["unreachable"]
    assert proc.returncode == 2
    assert "TURN host turn-down: not reachable over SSH" in proc.stderr, proc.stderr
    assert "the BigBlueButton host was not touched" in proc.stderr
    assert untouched


def test_test_mode_predicts_and_changes_nothing(lab):
    proc, before, after = lab["predicted"]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.findall(r"(\d+) changed", proc.stdout) != ["0", "0"], proc.stdout
    assert after[:2] == before
    assert "labsalt" not in after[2]


def test_one_command_converges_turn_then_bbb(lab):
    proc = lab["first"]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("TURN host turn1: ") and lines[1].startswith(
        "BigBlueButton host bbb1"
    )


def test_turn_server_relays_for_a_real_client(lab):
    turn = lab["turn"]
    assert turn.run("systemctl", "is-active", "coturn").stdout.strip() == "active"
    assert "policy drop" in turn.run("nft", "list", "table", "inet", "labsalt_coturn").stdout
    peer = subprocess.Popen(
        ["turnutils_peer", "-L", turn.ns.host_addr, "-p", "3480"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        cmd = ["turnutils_uclient", "-u", "bbb", "-e", turn.ns.host_addr, "-n", "5"]
        cmd += ["-L", turn.ns.host_addr]
        good = subprocess.run(
            [*cmd, "-W", TURN_SECRET, turn.addr],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        bad = subprocess.run(
            [*cmd, "-W", "wrong-secret-000", turn.addr],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    finally:
        peer.terminate()
        peer.wait()
    sent_recv = re.findall(r"tot_send_msgs=(\d+), tot_recv_msgs=(\d+)", good.stdout)
    assert sent_recv and sent_recv[-1] == ("10", "10"), good.stdout + good.stderr
    assert "Cannot complete Allocation" in bad.stdout + bad.stderr


def test_bbb_host_has_the_post_install_settings(lab):
    bbb = lab["bbb"]
    args = bbb.run("cat", "/var/lib/labsalt/installer-args").stdout.split()
    assert args[args.index("-c") + 1] == f"turn.lab.test:{TURN_SECRET}"
    props = bbb.run("cat", "/etc/bigbluebutton/bbb-web.properties").stdout.splitlines()
    for line in (
        "allowStartStopRecording=false",
        "disableRecordingDefault=true",
        "defaultDialAccessNumber=+49 711 12345678",
    ):
        assert line in props
    plan = "/opt/freeswitch/etc/freeswitch/dialplan/public/dialin.xml"
    bbb.run("xmllint", "--noout", plan)
    assert bbb.run("cat", "/root/bbb-restarts").stdout == "restart\n"


def test_second_run_changes_nothing(lab):
    proc = lab["second"]
    assert proc.returncode == 0, proc.stderr
    assert re.findall(r"(\d+) changed", proc.stdout) == ["0", "0"], proc.stdout
    assert lab["bbb"].run("cat", "/root/bbb-restarts").stdout == "restart\n"


def test_no_secret_in_highstate_json_or_logs(lab):
    outputs = [lab[k].stdout + lab[k].stderr for k in ("first", "second")]
    outputs.append(lab["predicted"][0].stdout + lab["predicted"][0].stderr)
    for host, state in ((lab["turn"], "coturn"), (lab["bbb"], "bigbluebutton")):
        ret = host.apply(state, pillar_dir=lab["pillar"])
        outputs.append(json.dumps(ret))
    conf = subprocess.run(
        [sys.executable, "-m", "labsalt", "config", "--pillar", str(lab["pillar"])],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    for log in (Path(conf) / "log").glob("*.log"):
        outputs.append(log.read_text(errors="replace"))
    for host in (lab["turn"], lab["bbb"]):
        outputs.append(host.run("journalctl", "--no-pager", "-q", check=False).stdout)
    text = "\n".join(outputs)
    for secret in (TURN_SECRET, DIALIN_TOKEN, API_SECRET):
        assert secret not in text
