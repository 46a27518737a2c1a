"""
The bbb* execution modules' logic: API checksums against BBB's documented
example, URL building, installer flags, key edits of BBB's real default files
(minimal excerpts in tests/fixtures/bbb, see PROVENANCE.md there), the
apply-config.sh hook (checked by bash -n and, where installed, shellcheck) and
the purge of raw recordings on stand-in recording directories.
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from salt.exceptions import CommandExecutionError, SaltInvocationError

from tests.support.bbb_standins import (
    FOREIGN_ENTRIES,
    RAW_ENTRIES,
    load_modules,
    seed_recordings,
)

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "bbb"


mods = load_modules()
bbb, api, config, install = mods.bbb, mods.bbb_api, mods.bbb_config, mods.bbb_install

# BBB's API documentation, "Usage": the create call, its secret and SHA-1.
DOC_QUERY = "name=Test+Meeting&meetingID=abc123&attendeePW=111222&moderatorPW=333444"
DOC_SECRET = "639259d4-9dd8-4b25-bf01-95f9567eaf4b"
DOC_SHA1 = "1fcbb0c4fc1f039f73aa6d697d2db9ba7f803f17"


def test_checksum_matches_bbb_api_documentation():
    assert api.checksum("create", DOC_QUERY, DOC_SECRET) == DOC_SHA1


def test_encoded_query_and_url_match_documentation():
    params = {
        "name": "Test Meeting",
        "meetingID": "abc123",
        "attendeePW": "111222",
        "moderatorPW": "333444",
    }
    assert api.encode_query(params) == DOC_QUERY
    url = api.api_url("https://bbb.example.com", "create", params, DOC_SECRET)
    assert url == (
        f"https://bbb.example.com/bigbluebutton/api/create?{DOC_QUERY}&checksum={DOC_SHA1}"
    )


@pytest.mark.parametrize("algorithm", ["sha256", "sha384", "sha512"])
def test_newer_checksum_algorithms_agree_with_coreutils(algorithm):
    """BBB >= 2.4 also accepts SHA-2 checksums over the same string."""
    tool = shutil.which(f"{algorithm}sum")
    assert tool, f"{algorithm}sum (coreutils) missing"
    expected = subprocess.run(
        [tool], input=f"create{DOC_QUERY}{DOC_SECRET}", capture_output=True, text=True, check=True
    ).stdout.split()[0]
    assert api.checksum("create", DOC_QUERY, DOC_SECRET, algorithm) == expected
    assert len(expected) == hashlib.new(algorithm).digest_size * 2


def test_checksum_refuses_unknown_algorithm_and_empty_secret():
    with pytest.raises(SaltInvocationError, match="md5"):
        api.checksum("create", "", DOC_SECRET, "md5")
    with pytest.raises(SaltInvocationError, match="secret is empty"):
        api.checksum("create", "", "")


@pytest.mark.parametrize(
    "given",
    [
        "https://bbb.example.com",
        "https://bbb.example.com/",
        "https://bbb.example.com/bigbluebutton",
        "https://bbb.example.com/bigbluebutton/api/",
    ],
)
def test_api_base_normalises(given):
    assert api.api_base(given) == "https://bbb.example.com/bigbluebutton/api/"


def test_call_without_parameters_signs_the_empty_query():
    url = api.api_url("https://bbb.example.com", "getMeetings", None, DOC_SECRET, "sha256")
    sig = hashlib.sha256(f"getMeetings{DOC_SECRET}".encode()).hexdigest()
    assert url == f"https://bbb.example.com/bigbluebutton/api/getMeetings?checksum={sig}"


# --------------------------------------------------------------------------- installer


def test_installer_flags_as_bbb_install_documents():
    args = install.installer_args(
        "jammy-300",
        "bbb.lab.example.org",
        "admin@lab.example.org",
        turn_host="turn.lab.example.org",
        turn_secret="s3cretTurnToken4711",
        greenlight=True,
        firewall=True,
    )
    assert args == [
        "-v",
        "jammy-300",
        "-s",
        "bbb.lab.example.org",
        "-e",
        "admin@lab.example.org",
        "-c",
        "turn.lab.example.org:s3cretTurnToken4711",
        "-g",
        "-w",
    ]
    shown = install.redact(args, ["s3cretTurnToken4711"])
    assert "s3cretTurnToken4711" not in shown
    assert "-c turn.lab.example.org:***" in shown


def test_installer_without_turn_greenlight_or_firewall():
    args = install.installer_args("focal-270", "bbb.example.org", "a@example.org", firewall=False)
    assert args == ["-v", "focal-270", "-s", "bbb.example.org", "-e", "a@example.org"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"version": "jammy"}, "installer:version 'jammy'"),
        ({"hostname": "bbb"}, "hostname 'bbb' is not a fully qualified"),
        ({"email": "admin"}, "email 'admin'"),
        ({"turn_host": "turn.example.org", "turn_secret": None}, "turn:secret: is missing"),
        ({"turn_host": "turn.example.org", "turn_secret": "short"}, "at least 16"),
    ],
)
def test_installer_bad_input_names_the_key(kwargs, message):
    base = {"version": "jammy-300", "hostname": "bbb.example.org", "email": "a@example.org"}
    base.update(kwargs)
    with pytest.raises(SaltInvocationError, match=message) as info:
        install.installer_args(base.pop("version"), base.pop("hostname"), base.pop("email"), **base)
    assert "short" not in str(info.value)


def test_secret_errors_never_show_the_value():
    with pytest.raises(SaltInvocationError) as info:
        bbb.check_turn_secret("bad secret with spaces")
    assert "bad secret" not in str(info.value)
    assert "coturn:static_auth_secret" in str(info.value)


def test_install_stamp_changes_with_secret_but_does_not_contain_it():
    one = install.install_stamp("jammy-300", ["-c", "t:secretAAAA"], "ab" * 32)
    two = install.install_stamp("jammy-300", ["-c", "t:secretBBBB"], "ab" * 32)
    assert one != two
    assert "secretAAAA" not in repr(one)


# --------------------------------------------------------------------------- dial-in number


@pytest.mark.parametrize("number", ["+49 711 12345678", "613-555-1234", "(0711) 123/456"])
def test_phone_numbers_accepted(number):
    assert bbb.phone_number(number) == number


@pytest.mark.parametrize("number", ["+49 711 1234x", "", "12", "+49 711 1234567890123456", "0;1"])
def test_malformed_phone_number_refused(number):
    with pytest.raises(SaltInvocationError, match="bigbluebutton:dialin:number: .* not a phone"):
        bbb.phone_number(number)


# --------------------------------------------------------------------------- properties


def test_properties_edit_on_bbb_defaults_changes_only_the_keys():
    text = (FIXTURES / "bigbluebutton.properties").read_text()
    footer = "<br><br>To join this meeting by phone, dial:<br>  %%DIALNUM%%"
    settings = {
        "allowStartStopRecording": False,
        "disableRecordingDefault": True,
        "defaultWelcomeMessageFooter": footer,
        "defaultDialAccessNumber": "+49 711 12345678",
    }
    new, changed = config.edit_properties(text, settings)
    assert sorted(changed) == sorted(settings)
    values = config.parse_properties(new)
    assert values["allowStartStopRecording"] == "false"
    assert values["disableRecordingDefault"] == "true"
    assert values["defaultWelcomeMessageFooter"] == footer
    assert values["defaultDialAccessNumber"] == "+49 711 12345678"
    # everything else, comments included, is untouched
    old_lines = [line for line in text.splitlines() if not line.startswith(tuple(settings))]
    new_lines = [line for line in new.splitlines() if not line.startswith(tuple(settings))]
    assert old_lines == new_lines
    again, changed_again = config.edit_properties(new, settings)
    assert (again, changed_again) == (new, [])


def test_properties_edit_appends_missing_and_removes_duplicates():
    new, changed = config.edit_properties("# c\na=1\nb=2\na=3\n", {"a": "9", "c": "x"})
    assert new == "# c\na=9\nb=2\nc=x\n"
    assert changed == ["a", "c"]


def test_properties_values_are_latin1_safe():
    new, _ = config.edit_properties("", {"defaultWelcomeMessageFooter": "Grüße"})
    assert new == "defaultWelcomeMessageFooter=Gr\\u00fc\\u00dfe\n"


def test_secret_and_server_url_from_override_before_defaults():
    defaults = FIXTURES / "bigbluebutton.properties"
    override = FIXTURES / "bbb-web.properties"
    assert config.secret(str(defaults), str(override)) == "Q7nVb2kLr9TzW4xYcP1mHs8dFg3jKa6e"
    assert config.server_url(str(defaults), str(override)) == "https://bbb.lab.test"
    assert config.secret(str(defaults), "/nonexistent") == "3895c0fc987abdd47edf0352fea2a458"
    with pytest.raises(CommandExecutionError, match="is BigBlueButton installed"):
        config.secret("/nonexistent", "/nonexistent")


# --------------------------------------------------------------------------- FreeSWITCH XML


def _xmllint_ok(text, tmp_path):
    path = tmp_path / "check.xml"
    path.write_text(text)
    cmd = ["xmllint", "--noout", str(path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    return proc.returncode == 0, proc.stderr


def test_energy_level_only_in_the_cdquality_profile(tmp_path):
    text = (FIXTURES / "freeswitch/autoload_configs/conference.conf.xml").read_text()
    scope = {"tag": "profile", "match": {"name": "cdquality"}}
    new, count = config.edit_xml_attribute(
        text, "param", {"name": "energy-level"}, "value", 50, scope=scope
    )
    assert count == 1
    cdquality = new[new.index('<profile name="cdquality">') :]
    default = new[: new.index('<profile name="cdquality">')]
    assert '<param name="energy-level" value="50"/>' in cdquality
    assert '<param name="energy-level" value="300"/>' in default
    assert len(new.splitlines()) == len(text.splitlines())
    assert _xmllint_ok(new, tmp_path)[0]
    again, count = config.edit_xml_attribute(
        new, "param", {"name": "energy-level"}, "value", 50, scope=scope
    )
    assert (again, count) == (new, 0)


def test_jitterbuffer_in_every_conference_extension(tmp_path):
    text = (FIXTURES / "freeswitch/dialplan/default/bbb_conference.xml").read_text()
    new, count = config.edit_xml_attribute(
        text, "action", {"application": "jitterbuffer"}, "data", "60"
    )
    assert count == 2
    assert new.count('<action application="jitterbuffer" data="60"/>') == 2
    assert _xmllint_ok(new, tmp_path)[0]


def test_opus_dtx_already_off_is_no_change():
    text = (FIXTURES / "freeswitch/autoload_configs/opus.conf.xml").read_text()
    new, count = config.edit_xml_attribute(text, "param", {"name": "use-dtx"}, "value", 0)
    assert (new, count) == (text, 0)


def test_missing_element_is_an_error():
    text = (FIXTURES / "freeswitch/autoload_configs/opus.conf.xml").read_text()
    with pytest.raises(CommandExecutionError, match='no element <param name="use-fec">'):
        config.edit_xml_attribute(text, "param", {"name": "use-fec"}, "value", 1)


def test_property_writer_refuses_newlines_and_escapes_backslashes():
    """The second line of defence behind the schema: no value adds a line or continues into one."""
    with pytest.raises(SaltInvocationError, match="one line"):
        config.edit_properties("a=1\n", {"defaultWelcomeMessageFooter": "x\nsecuritySalt=evil"})
    new, _ = config.edit_properties("a=1\nb=2\n", {"a": "ends in a backslash\\"})
    assert new.splitlines() == ["a=ends in a backslash\\\\", "b=2"]


@pytest.mark.parametrize(
    ("mapdata", "message"),
    [
        (
            {"installer": {"enabled": True, "sha256": None}},
            "bigbluebutton:installer:sha256: is missing",
        ),
        (
            {"dialin": {"enabled": True, "number": "12", "token": "Tok3nTok3n"}},
            "bigbluebutton:dialin:number: '12'",
        ),
        (
            {"dialin": {"enabled": True, "number": "+49 711 123456"}},
            "bigbluebutton:dialin:token: is missing",
        ),
        (
            {"mattermost": {"url": "https://chat.example.org"}},
            "bigbluebutton:mattermost:token: is missing",
        ),
        ({"restart_cmd": ["bbb-conf --restart; touch /tmp/x"]}, "bigbluebutton:restart_cmd:0: "),
        ({"restart_cmd": []}, "bigbluebutton:restart_cmd:0: "),
    ],
)
def test_validator_names_the_key(mapdata, message):
    base = {"installer": {"enabled": False}, "restart_cmd": ["bbb-conf", "--restart"]}
    base.update(mapdata)
    with pytest.raises(SaltInvocationError, match=re.escape(message)):
        bbb.validate(base)


def test_validator_accepts_the_defaults():
    assert bbb.validate({"installer": {"enabled": False}, "restart_cmd": ["bbb-conf", "--restart"]})


# --------------------------------------------------------------------------- apply-config.sh

# The apply-config.sh bbb-install.sh -w writes when there is none (its setup_ufw), as BBB's
# customize docs show it too.
SITE_HOOK = """#!/bin/bash

# Pull in the helper functions for configuring BigBlueButton
source /etc/bigbluebutton/bbb-conf/apply-lib.sh

enableUFWRules
"""


def _shell_checks(text, tmp_path):
    script = tmp_path / "apply-config.sh"
    script.write_text(text)
    subprocess.run(["bash", "-n", str(script)], check=True)
    subprocess.run(["sh", "-n", str(script)], check=True)
    proc = subprocess.run(
        ["shellcheck", "-S", "warning", "-e", "SC1091", str(script)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout


def test_hook_of_its_own_is_a_valid_script(tmp_path):
    conf = "/etc/bigbluebutton/bbb-conf"
    text = config.hook_text(None, config.hook_block(conf))
    assert text.startswith("#!/bin/bash\n")
    _shell_checks(text, tmp_path)
    command = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert command == [
        f"/usr/bin/python3 {conf}/labsalt-bbb_config.py {conf}/labsalt-settings.json"
    ]
    assert config.hook_removed(text) is None  # labsalt's alone: clean removes the script


def test_hook_keeps_the_sites_lines_and_is_idempotent(tmp_path):
    block = config.hook_block()
    text = config.hook_text(SITE_HOOK, block)
    assert text.startswith(SITE_HOOK)
    _shell_checks(text, tmp_path)
    assert config.hook_text(text, block) == text
    assert config.hook_removed(text) == SITE_HOOK


def test_hook_quotes_the_path_it_is_given(tmp_path):
    """A path with shell characters stays one quoted word, never code."""
    odd = "/tmp/x y/$(touch /tmp/labsalt-pwned)"
    text = config.hook_text(None, config.hook_block(odd))
    _shell_checks(text, tmp_path)
    line = [x for x in text.splitlines() if x.startswith("/usr/bin/python3")][0]
    assert line.split(" ", 1)[1] == (
        "'/tmp/x y/$(touch /tmp/labsalt-pwned)/labsalt-bbb_config.py' "
        "'/tmp/x y/$(touch /tmp/labsalt-pwned)/labsalt-settings.json'"
    )


def test_check_shell_refuses_a_broken_script():
    with pytest.raises(CommandExecutionError, match="-n refuses"):
        config.check_shell("#!/bin/bash\nif then fi\n")


def _seed_bbb(root):
    fs = root / "freeswitch"
    for rel in (
        "autoload_configs/opus.conf.xml",
        "autoload_configs/conference.conf.xml",
        "dialplan/default/bbb_conference.xml",
    ):
        (fs / rel).parent.mkdir(parents=True, exist_ok=True)
        (fs / rel).write_text((FIXTURES / "freeswitch" / rel).read_text())
    conf = root / "bbb-conf"
    conf.mkdir()
    return fs, conf


def test_apply_config_script_restores_the_edits_after_an_upgrade(tmp_path):
    """The applier copy runs without Salt, as bbb-conf runs apply-config.sh."""
    fs, conf = _seed_bbb(tmp_path)
    settings = {
        "xml": [
            {
                "path": str(fs / "autoload_configs/conference.conf.xml"),
                "tag": "param",
                "match": {"name": "energy-level"},
                "attribute": "value",
                "value": 50,
                "scope": {"tag": "profile", "match": {"name": "cdquality"}},
            }
        ]
    }
    written = config.apply_config_files(settings, bbb_conf=str(conf))
    assert sorted(written) == sorted(
        str(conf / name)
        for name in ("apply-config.sh", "labsalt-bbb_config.py", "labsalt-settings.json")
    )
    assert os.access(conf / "apply-config.sh", os.X_OK)
    assert config.apply_config_files(settings, bbb_conf=str(conf)) == []
    packaged = (fs / "autoload_configs/conference.conf.xml").read_text()
    # bbb-conf runs the script with BBB's packaged file as an upgrade left it
    env = {"PATH": "/usr/bin:/bin"}  # no Salt on this interpreter's path needed
    proc = subprocess.run(
        ["bash", str(conf / "apply-config.sh")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "set " in proc.stdout and "energy-level" in proc.stdout
    edited = (fs / "autoload_configs/conference.conf.xml").read_text()
    assert edited != packaged
    assert (
        config.edit_xml_attribute(
            edited,
            "param",
            {"name": "energy-level"},
            "value",
            50,
            scope=settings["xml"][0]["scope"],
        )[1]
        == 0
    )
    again = subprocess.run(
        ["bash", str(conf / "apply-config.sh")], capture_output=True, text=True, check=True
    )
    assert "in place" in again.stdout
    assert (fs / "autoload_configs/conference.conf.xml").read_text() == edited
    removed = config.apply_config_removed(str(conf))
    assert len(removed) == 3 and not any(conf.iterdir())


def test_apply_config_needs_bbbs_directory(tmp_path):
    with pytest.raises(CommandExecutionError, match="is BigBlueButton installed"):
        config.apply_config_files({"xml": []}, bbb_conf=str(tmp_path / "missing"))


def test_apply_config_data_file_is_json_of_the_settings(tmp_path):
    fs, conf = _seed_bbb(tmp_path)
    settings = {"xml": []}
    config.apply_config_files(settings, bbb_conf=str(conf))
    assert json.loads((conf / "labsalt-settings.json").read_text()) == settings


# --------------------------------------------------------------------------- raw recordings


def _tree(root):
    return sorted(
        str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() or p.is_symlink()
    )


def test_purge_removes_only_raw_entries_of_meetings(tmp_path):
    var = seed_recordings(tmp_path / "var")
    before = _tree(var)
    predicted = mods.bbb_recording.purge_raw(str(var), test=True)
    assert _tree(var) == before  # test mode deletes nothing
    done = mods.bbb_recording.purge_raw(str(var))
    assert done == predicted
    after = _tree(var)
    assert not [rel for rel in RAW_ENTRIES if rel in after]
    assert all(rel in after for rel in FOREIGN_ENTRIES)  # the rest stays
    assert mods.bbb_recording.purge_raw(str(var)) == {"removed": [], "kept": []}


def test_purge_keeps_recent_entries(tmp_path):
    var = seed_recordings(tmp_path / "var")
    fresh = var / next(iter(RAW_ENTRIES))
    fresh.write_text("<recording>still being archived</recording>")
    done = mods.bbb_recording.purge_raw(str(var), quiet_minutes=60)
    assert done["kept"] == [str(fresh.parent)]
    assert fresh.exists()


def test_purge_does_not_follow_symlinks(tmp_path):
    var = seed_recordings(tmp_path / "var")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("not BBB's")
    link = var / "bigbluebutton/recording/raw" / ("c" * 40 + "-1617000000003")
    link.symlink_to(outside)
    os.utime(link, (1, 1), follow_symlinks=False)
    mods.bbb_recording.purge_raw(str(var))
    assert not os.path.lexists(link)
    assert (outside / "precious").read_text() == "not BBB's"
