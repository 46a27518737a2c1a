"""
States for a BigBlueButton host: the pinned installer, key edits of BBB's files,
the ``apply-config.sh`` hook that keeps them across BBB upgrades, the purge of
raw recordings, the API health check and the Mattermost plugin settings.  The
logic lives in the ``bbb*`` execution modules (``bbb`` validators, ``bbb_api``,
``bbb_config``, ``bbb_install``, ``bbb_mattermost``, ``bbb_recording``); these
states compare, predict in test mode and report.

Secrets are passed by pillar key (``turn_secret_pillar: coturn:static_auth_secret``),
never by value, so they are not in the rendered SLS, and they are shown as ``***``.
"""

import os

import salt.utils.data
from salt.exceptions import CommandExecutionError, SaltInvocationError

try:  # Salt >= 3008 masks pillar values outside of rendering
    from salt.utils.secret import expose as _expose
except ImportError:  # Salt 3006/3007

    def _expose(value):
        return value


__virtualname__ = "bbb"

REDACTED = "***"


def __virtual__():
    if "bbb_config.set_properties" not in __salt__:
        return (False, "the bbb_config execution module is not loaded")
    return __virtualname__


def _ret(name):
    return {"name": name, "result": True, "changes": {}, "comment": ""}


def _pillar_secret(key):
    """The value at pillar ``key`` (``a:b:c``), unmasked, or None."""
    if not key:
        return None
    return _expose(salt.utils.data.traverse_dict_and_list(__pillar__, key, None, delimiter=":"))


def properties(name, settings=None, secret_settings=None):
    """
    Set keys in a Java properties file of BBB (``/etc/bigbluebutton/bbb-web.properties``)
    and leave every other line alone.

    settings
        ``{key: value}`` to set.
    secret_settings
        ``{key: pillar_key}``: values taken from pillar and shown as ``***``.

    .. code-block:: yaml

        /etc/bigbluebutton/bbb-web.properties:
          bbb.properties:
            - settings:
                allowStartStopRecording: false
            - secret_settings:
                securitySalt: bigbluebutton:api:secret
    """
    ret = _ret(name)
    wanted = dict(settings or {})
    hidden = set()
    for key, pillar_key in (secret_settings or {}).items():
        value = _pillar_secret(pillar_key)
        if value in (None, ""):
            ret.update(result=False, comment=f"pillar {pillar_key} (for {key}) is empty")
            return ret
        wanted[key] = value
        hidden.add(key)
    try:
        changed = __salt__["bbb_config.set_properties"](name, wanted, test=__opts__["test"])
    except (CommandExecutionError, SaltInvocationError, OSError) as exc:
        ret.update(result=False, comment=f"{name}: {exc}")
        return ret
    if not changed:
        ret["comment"] = f"{len(wanted)} keys already set in {name}"
        return ret
    shown = {k: REDACTED if k in hidden else wanted[k] for k in changed}
    ret["changes"] = {"keys": shown}
    if __opts__["test"]:
        ret.update(result=None, comment=f"would set {', '.join(changed)} in {name}")
    else:
        ret["comment"] = f"set {', '.join(changed)} in {name}"
    return ret


def installed(  # noqa: PLR0917  (Salt 3006 cannot pass keyword-only args)
    name,
    url,
    sha256,
    hostname,
    email,
    turn_host=None,
    turn_secret_pillar=None,
    greenlight=False,
    firewall=True,
    extra_args=None,
    workdir="/var/lib/labsalt",
    log_file="/var/log/labsalt/bbb-install.log",
):
    """
    Run the pinned ``bbb-install.sh`` (version line ``name``) with flags composed
    from the arguments, when this version/flag set has not run yet.  The
    installer is downloaded from ``url`` and run only when its sha256 equals
    ``sha256``.  Upgrading is the same state with a newer version line.

    .. code-block:: yaml

        jammy-300:
          bbb.installed:
            - url: https://raw.githubusercontent.com/bigbluebutton/bbb-install/v3.0.x-release/bbb-install.sh
            - sha256: <pinned digest>
            - hostname: bbb.example.org
            - email: admin@example.org
            - turn_host: turn.example.org
            - turn_secret_pillar: coturn:static_auth_secret
    """
    ret = _ret(name)
    turn_secret = _pillar_secret(turn_secret_pillar) if turn_host else None
    try:
        if turn_host:
            __salt__["bbb.check_turn_secret"](turn_secret, turn_secret_pillar)
        args = __salt__["bbb_install.installer_args"](
            name,
            hostname,
            email,
            turn_host=turn_host,
            turn_secret=turn_secret,
            greenlight=greenlight,
            firewall=firewall,
            extra_args=extra_args,
        )
    except SaltInvocationError as exc:
        ret.update(result=False, comment=str(exc))
        return ret
    shown = "bbb-install.sh " + __salt__["bbb_install.redact"](args, [turn_secret])
    stamp_path = f"{workdir}/bbb-install.json"
    stamp = __salt__["bbb_install.install_stamp"](name, args, sha256)
    if __salt__["bbb_install.read_stamp"](stamp_path) == stamp:
        ret["comment"] = f"{shown}: already ran"
        return ret
    ret["changes"] = {"installer": shown}
    if __opts__["test"]:
        ret.update(result=None, comment=f"would download {url}, check its sha256, run {shown}")
        return ret
    script = f"{workdir}/bbb-install.sh"
    try:
        __salt__["bbb_install.fetch_installer"](url, sha256, script)
        __salt__["bbb_install.run_installer"](script, args, [turn_secret], log_file)
    except CommandExecutionError as exc:
        ret.update(result=False, changes={}, comment=str(exc))
        return ret
    __salt__["bbb_install.write_stamp"](stamp_path, stamp)
    ret["comment"] = f"ran {shown} (output in {log_file})"
    return ret


def api_healthy(  # noqa: PLR0917  (Salt 3006 cannot pass keyword-only args)
    name,
    url=None,
    secret_pillar=None,
    algorithm="sha1",
    properties="/etc/bigbluebutton/bbb-web.properties",
    default_properties="/usr/share/bbb-web/WEB-INF/classes/bigbluebutton.properties",
):
    """
    Check that BBB's API answers signed ``getMeetings`` and ``isMeetingRunning``
    calls.  ``url`` is the server URL (default: this host's
    ``bigbluebutton.web.serverURL``); the secret comes from ``secret_pillar`` or
    else this host's ``securitySalt`` (from ``properties`` over
    ``default_properties``).  Changes nothing; in test mode it only says what it
    would check.
    """
    ret = _ret(name)
    if __opts__["test"]:
        ret.update(result=None, comment="would check the BBB API with getMeetings")
        return ret
    try:
        secret = _pillar_secret(secret_pillar) or __salt__["bbb_config.secret"](
            default_properties, properties
        )
        url = url or __salt__["bbb_config.server_url"](default_properties, properties)
        seen = __salt__["bbb_api.health"](url, secret, algorithm)
    except (CommandExecutionError, SaltInvocationError) as exc:
        ret.update(result=False, comment=str(exc))
        return ret
    ret["comment"] = f"BBB API {seen['api']} answers: {seen['meetings']} meetings running"
    return ret


def mattermost_plugin(  # noqa: PLR0917  (Salt 3006 cannot pass keyword-only args)
    name,
    token_pillar,
    bbb_url=None,
    plugin_id="bigbluebutton",
    properties="/etc/bigbluebutton/bbb-web.properties",
    default_properties="/usr/share/bbb-web/WEB-INF/classes/bigbluebutton.properties",
):
    """
    Put this BBB server's API URL and secret into the Mattermost BigBlueButton
    plugin at Mattermost URL ``name``, with the admin token from pillar key
    ``token_pillar``.
    """
    ret = _ret(name)
    token = _pillar_secret(token_pillar)
    if not token:
        ret.update(result=False, comment=f"pillar {token_pillar} (Mattermost token) is empty")
        return ret
    if __opts__["test"]:
        ret.update(result=None, comment=f"would set the {plugin_id} plugin's URL and secret")
        return ret
    try:
        bbb_url = bbb_url or __salt__["bbb_config.server_url"](default_properties, properties)
        secret = __salt__["bbb_config.secret"](default_properties, properties)
        changed = __salt__["bbb_mattermost.mattermost_plugin_settings"](
            name, token, bbb_url, secret, plugin_id=plugin_id
        )
    except (CommandExecutionError, SaltInvocationError) as exc:
        ret.update(result=False, comment=str(exc))
        return ret
    if changed:
        ret["changes"] = {plugin_id: {"base_url": bbb_url, "salt": REDACTED}}
        ret["comment"] = f"set the {plugin_id} plugin's URL and secret"
    else:
        ret["comment"] = f"the {plugin_id} plugin's settings are current"
    return ret


def argv_run(name, argv):
    """
    Run ``argv`` (an argument list, no shell), e.g. ``[bbb-conf, --restart]``
    with ``onchanges``.  Test mode runs nothing and says what would run.
    """
    ret = _ret(name)
    shown = " ".join(str(a) for a in argv)
    if __opts__["test"]:
        ret.update(result=None, changes={"argv": shown}, comment=f"would run {shown}")
        return ret
    done = __salt__["bbb_install.run_argv"](argv)
    if done["retcode"] != 0:
        ret.update(result=False, comment=f"{shown} exited {done['retcode']}: {done['output']}")
        return ret
    ret.update(changes={"argv": shown, "retcode": 0}, comment=f"ran {shown}")
    return ret


def ufw_allowed(name, record=None):
    """
    Allow ``name`` (``5060/tcp``) in UFW, unless ``ufw show added`` lists it
    already; a rule it added goes to ``record`` (one a line), so that
    ``bbb.ufw_removed`` deletes only that.  No shell; test mode only reads.
    """
    ret = _ret(name)
    if f"allow {name}" in __salt__["bbb_install.ufw_rules"]():
        ret["comment"] = f"ufw allows {name} already"
        return ret
    if __opts__["test"]:
        ret.update(result=None, changes={"ufw": f"allow {name}"}, comment=f"would allow {name}")
        return ret
    done = __salt__["bbb_install.run_argv"](["ufw", "allow", name])
    if done["retcode"] != 0:
        ret.update(result=False, comment=f"ufw allow {name} failed: {done['output']}")
        return ret
    if record:
        __salt__["coturn.write_record"](record, [*__salt__["coturn.read_record"](record), name])
    ret.update(changes={"ufw": f"allow {name}"}, comment=f"ufw allows {name}")
    return ret


def ufw_removed(name, record=None):
    """
    Delete the UFW rule ``allow name`` (no shell) if ``ufw show added`` lists it
    and, with ``record``, only if ``bbb.ufw_allowed`` recorded adding it: a rule
    the site had stays.
    """
    ret = _ret(name)
    recorded = __salt__["coturn.read_record"](record) if record else [name]
    if name not in recorded:
        ret["comment"] = f"ufw allow {name} was not added by labsalt: left as it is"
        return ret
    if f"allow {name}" not in __salt__["bbb_install.ufw_rules"]():
        ret["comment"] = f"no ufw rule allow {name}"
        return ret
    if __opts__["test"]:
        ret.update(result=None, changes={"ufw": f"delete allow {name}"}, comment="would delete")
        return ret
    done = __salt__["bbb_install.run_argv"](["ufw", "delete", "allow", name])
    if done["retcode"] != 0:
        ret.update(result=False, comment=f"ufw delete allow {name} failed: {done['output']}")
        return ret
    if record:
        rest = [rule for rule in recorded if rule != name]
        if rest:
            __salt__["coturn.write_record"](record, rest)
        else:
            os.unlink(record)
    ret.update(changes={"ufw": f"delete allow {name}"}, comment=f"deleted ufw allow {name}")
    return ret


def apply_config(name, xml_edits=None):
    """
    Set single attributes in BBB's packaged FreeSWITCH XML files now, and keep
    them across BBB upgrades the way BBB documents it: BBB's
    ``<name>/apply-config.sh`` (``name``: ``/etc/bigbluebutton/bbb-conf``), run
    by ``bbb-conf --restart``/``--setip`` before BBB starts, gets a marked block
    that runs a copy of the ``bbb_config`` module with the edits as JSON data
    (no pillar value becomes shell code; the script is checked with ``sh -n``
    before it replaces the live one; the site's own lines stay).

    xml_edits
        ``[{path, tag, match, attribute, value, scope}]``, see
        ``bbb_config.edit_xml_attribute``.

    .. code-block:: yaml

        /etc/bigbluebutton/bbb-conf:
          bbb.apply_config:
            - xml_edits:
              - path: /opt/freeswitch/etc/freeswitch/autoload_configs/opus.conf.xml
                tag: param
                match: {name: use-dtx}
                attribute: value
                value: 0
    """
    ret = _ret(name)
    test = __opts__["test"]
    settings = {"xml": list(xml_edits or [])}
    try:
        edits = __salt__["bbb_config.apply_settings"](settings, test=test)
        if test and not os.path.isdir(name):
            # BBB not installed yet (the installer runs first): predict, do not fail.
            files = [f"{name}/apply-config.sh (once BigBlueButton's installer made {name})"]
        else:
            files = __salt__["bbb_config.apply_config_files"](settings, bbb_conf=name, test=test)
    except (CommandExecutionError, SaltInvocationError, OSError, KeyError) as exc:
        ret.update(result=False, comment=f"{name}: {exc}")
        return ret
    if edits:
        ret["changes"]["edits"] = edits
    if files:
        ret["changes"]["files"] = files
    verb = "would set" if test else "set"
    said = [f"{verb} {what}" for what in edits]
    said += [f"{'would write' if test else 'wrote'} {path}" for path in files]
    if not said:
        ret["comment"] = f"{len(settings['xml'])} edits in place, apply-config.sh hook current"
        return ret
    if test:
        ret["result"] = None
    ret["comment"] = "; ".join(said)
    return ret


def apply_config_absent(name):
    """
    Take labsalt's block out of ``<name>/apply-config.sh`` (the script goes if
    nothing of the site's is left in it) and remove labsalt's module copy and
    settings file there.  The edits stay in BBB's files (BBB's next upgrade
    restores its packaged files).
    """
    ret = _ret(name)
    try:
        gone = __salt__["bbb_config.apply_config_removed"](name, test=__opts__["test"])
    except (CommandExecutionError, OSError) as exc:
        ret.update(result=False, comment=f"{name}: {exc}")
        return ret
    if not gone:
        ret["comment"] = f"no labsalt hook in {name}"
        return ret
    ret["changes"] = {"removed": gone}
    if __opts__["test"]:
        ret.update(result=None, comment=f"would remove labsalt's hook: {', '.join(gone)}")
    else:
        ret["comment"] = f"removed labsalt's hook: {', '.join(gone)}"
    return ret


def raw_recordings_purged(name, quiet_minutes=60):
    """
    Purge BBB's raw recordings (bigbluebutton#9202) under ``name`` (``/var``),
    only in BBB's recording directories and only entries named after a meeting
    (see ``bbb_recording.purge_raw``); entries changed within
    ``quiet_minutes`` stay.  Meant for hosts where recording is disabled.  Test
    mode lists what would go and deletes nothing.
    """
    ret = _ret(name)
    try:
        done = __salt__["bbb_recording.purge_raw"](
            name, quiet_minutes=quiet_minutes, test=__opts__["test"]
        )
    except (CommandExecutionError, OSError) as exc:
        ret.update(result=False, comment=str(exc))
        return ret
    kept = f" ({len(done['kept'])} changed within {quiet_minutes} min kept)" if done["kept"] else ""
    if not done["removed"]:
        ret["comment"] = f"no raw recordings to purge{kept}"
        return ret
    ret["changes"] = {"removed": done["removed"]}
    count = len(done["removed"])
    if __opts__["test"]:
        ret.update(result=None, comment=f"would purge {count} raw recording entries{kept}")
    else:
        ret["comment"] = f"purged {count} raw recording entries{kept}"
    return ret
