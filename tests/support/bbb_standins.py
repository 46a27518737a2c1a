"""
Stand-ins for a BigBlueButton host (BBB needs Ubuntu; the test hosts are Debian).

- ``FIXTURES``: excerpts of BBB's real default files (tests/fixtures/bbb, provenance
  there), placed where bbb-install leaves them (``BBB_FILES``, ``seed_host``).
- ``INSTALLER``: a stand-in for bbb-install.sh that records the flags it was given
  next to itself (served over HTTP and checked against its pinned sha256 like the
  real one).
- ``StandIns``: an HTTP handler serving the installer, bbb-web's API (answers
  getMeetings/isMeetingRunning only when the checksum is right for ``API_SECRET``,
  the secret in the seeded bbb-web.properties: hash of call + query + secret, as
  bbb-web does) and Mattermost's config API (bearer ``MM_TOKEN``).

- ``load_modules``: the ``bbb*`` execution modules loaded from _modules/ the way
  Salt's loader sees them, cross-calls (``__salt__["bbb_config.secret"]``) wired.
- ``seed_recordings``: stand-in recording directories of a BBB host with raw
  entries named like BBB's meetings, and files that are not BBB's.

Used by tests/integration/test_bigbluebutton.py, tests/e2e/test_bigbluebutton_conference.py
and the bare-host test.
"""

import contextlib
import hashlib
import http.server
import importlib.util
import json
import os
import threading
import time
import types
import urllib.parse
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "bbb"
API_SECRET = "Q7nVb2kLr9TzW4xYcP1mHs8dFg3jKa6e"  # in fixtures/bbb/bbb-web.properties
MM_TOKEN = "mmAdminToken4711abcdef"
INSTALLER = """#!/bin/bash
# Stand-in for bbb-install.sh: records its flags next to itself.
set -e
printf '%s\\n' "$@" > "$(dirname "$0")/installer-args"
"""
INSTALLER_SHA256 = hashlib.sha256(INSTALLER.encode()).hexdigest()
FREESWITCH = "/opt/freeswitch/etc/freeswitch"
BBB_FILES = {
    "bigbluebutton.properties": "/usr/share/bbb-web/WEB-INF/classes/bigbluebutton.properties",
    "bbb-web.properties": "/etc/bigbluebutton/bbb-web.properties",
    "freeswitch/autoload_configs/opus.conf.xml": f"{FREESWITCH}/autoload_configs/opus.conf.xml",
    "freeswitch/autoload_configs/conference.conf.xml": (
        f"{FREESWITCH}/autoload_configs/conference.conf.xml"
    ),
    "freeswitch/dialplan/default/bbb_conference.xml": (
        f"{FREESWITCH}/dialplan/default/bbb_conference.xml"
    ),
    "freeswitch/dialplan/public.xml": f"{FREESWITCH}/dialplan/public.xml",
}


class StandIns(http.server.BaseHTTPRequestHandler):
    """The installer download, bbb-web's API and Mattermost's config API."""

    installer = INSTALLER.encode()
    calls = []
    mattermost = {"PluginSettings": {"Plugins": {"other": {"x": 1}}}}

    def do_GET(self):  # noqa: N802  (http.server's name)
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/bbb-install.sh":
            return self._send(200, self.installer, "text/x-shellscript")
        if url.path.startswith("/api/v4/"):
            return self._mattermost()
        call = url.path.removeprefix("/bigbluebutton/api/")
        query, _, checksum = url.query.rpartition("checksum=")
        query = query.rstrip("&")
        algorithm = {40: "sha1", 64: "sha256", 96: "sha384", 128: "sha512"}.get(len(checksum))
        expected = algorithm and hashlib.new(algorithm, f"{call}{query}{API_SECRET}".encode())
        self.calls.append((call, algorithm))
        if not expected or expected.hexdigest() != checksum:
            body = "<returncode>FAILED</returncode><messageKey>checksumError</messageKey>"
        elif call == "getMeetings":
            body = "<returncode>SUCCESS</returncode><meetings/>"
        elif call == "isMeetingRunning":
            body = "<returncode>SUCCESS</returncode><running>false</running>"
        else:
            body = "<returncode>FAILED</returncode><messageKey>unknown</messageKey>"
        return self._send(200, f"<response>{body}</response>".encode(), "text/xml")

    def do_PUT(self):  # noqa: N802
        return self._mattermost()

    def _mattermost(self):
        if self.headers.get("Authorization") != f"Bearer {MM_TOKEN}":
            return self._send(401, b'{"id": "api.context.session_expired.app_error"}', "x/json")
        if self.command == "PUT" and self.path == "/api/v4/config/patch":
            patch = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            self.calls.append(("mattermost-patch", None))
            plugins = self.mattermost["PluginSettings"]["Plugins"]
            plugins.update(patch["PluginSettings"]["Plugins"])
        elif self.path != "/api/v4/config":
            return self._send(404, b"{}", "application/json")
        return self._send(200, json.dumps(self.mattermost).encode(), "application/json")

    def _send(self, code, body, ctype):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve(addr="127.0.0.1"):
    """Run the stand-ins on ``addr`` (a free port); yields their base URL."""
    httpd = http.server.ThreadingHTTPServer((addr, 0), StandIns)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{addr}:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def seed_host(host):
    """A throw-away host as bbb-install leaves it: BBB's default files in their places."""
    for src, dest in BBB_FILES.items():
        host.put(dest, (FIXTURES / src).read_text())
    # and bbb-config's directory, where bbb-conf looks for apply-config.sh
    host.run("mkdir", "-p", f"{FREESWITCH}/dialplan/public", "/etc/bigbluebutton/bbb-conf")


def pillar(server, **overrides):
    """bigbluebutton pillar pointing the installer and the API at the stand-ins."""
    data = {
        "hostname": "bbb.lab.test",
        "email": "admin@lab.test",
        "installer": {
            "version": "jammy-300",
            "url": f"{server}/bbb-install.sh",
            "sha256": INSTALLER_SHA256,
        },
        "turn": {"host": "turn.lab.test"},
        "webhooks": False,
        "firewall": {"enabled": False},
        "api": {"url": server, "algorithm": "sha256", "retries": 2},
    }
    data.update(overrides)
    return {"bigbluebutton": data}


MODULES = ("bbb", "bbb_api", "bbb_config", "bbb_install", "bbb_mattermost", "bbb_recording")


def load_modules():
    """The bbb* execution modules as a namespace (``mods.bbb_api.checksum``), each
    with ``__salt__`` holding the others' public functions as Salt's loader would."""
    salt = {}
    loaded = {}
    for name in MODULES:
        spec = importlib.util.spec_from_file_location(
            f"labsalt_{name}", REPO / "_modules" / f"{name}.py"
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.__salt__ = salt
        loaded[name] = module
        for attr, value in vars(module).items():
            if callable(value) and not attr.startswith("_") and value.__module__ == module.__name__:
                salt[f"{name}.{attr}"] = value
    return types.SimpleNamespace(**loaded)


# A stand-in BBB host's recording directories (relative to /var) and what is in
# them: raw material named after internal meeting IDs (40 hex digits, -, 13 digits)
# and files that are not BBB's recordings.
MEETING_A = "0" * 39 + "a-1617000000001"
MEETING_B = "b" * 40 + "-1617000000002"
RAW_ENTRIES = {
    f"bigbluebutton/recording/raw/{MEETING_A}/events.xml": "<recording/>",
    f"bigbluebutton/recording/raw/{MEETING_A}/audio/{MEETING_A}-1.opus": "opus",
    f"bigbluebutton/recording/raw/{MEETING_B}/events.xml": "<recording/>",
    f"freeswitch/meetings/{MEETING_A}-1617000000100.opus": "opus",
    f"kurento/recordings/{MEETING_B}/cam.webm": "webm",
    f"mediasoup/screenshare/{MEETING_A}/screen.webm": "webm",
    f"lib/bbb-webrtc-recorder/recordings/{MEETING_B}/cam.webm": "webm",
}
FOREIGN_ENTRIES = {
    "bigbluebutton/recording/raw/README.site": "the site's note",
    "bigbluebutton/recording/status/archived/" + MEETING_A + ".done": "",
    "bigbluebutton/published/presentation/" + MEETING_A + "/metadata.xml": "<recording/>",
    "bigbluebutton/" + MEETING_A + "/presentation.pdf": "%PDF",
    "freeswitch/meetings/site-music.wav": "wav",
    "lib/site/" + MEETING_B + "/keep.txt": "not a BBB directory",
    "site/" + MEETING_A + ".opus": "outside BBB's directories",
}


def seed_recordings(var, age=7200):
    """Write RAW_ENTRIES and FOREIGN_ENTRIES under ``var``, ``age`` seconds old."""
    var = Path(var)
    for rel, text in {**RAW_ENTRIES, **FOREIGN_ENTRIES}.items():
        path = var / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    stamp = time.time() - age
    for root, dirs, files in os.walk(var):
        for name in dirs + files:
            os.utime(os.path.join(root, name), (stamp, stamp))
    return var
