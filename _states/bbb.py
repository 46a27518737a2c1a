"""
States for a BigBlueButton host: the pinned installer, key edits of BBB's files,
the API health check and the Mattermost plugin settings.  The logic lives in the
``bbb`` execution module; these states compare, predict in test mode and report.

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
    if "bbb.checksum" not in __salt__:
        return (False, "the bbb execution module is not loaded")
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
        changed = __salt__["bbb.set_properties"](name, wanted, test=__opts__["test"])
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


def xml_attribute(name, tag, match, attribute, value, scope=None):  # noqa: PLR0917  (Salt 3006 cannot pass keyword-only args)
    """
    Set one attribute of matching elements in a FreeSWITCH XML file, in place
    (comments and layout stay), the result checked to be well-formed.

    .. code-block:: yaml

        /opt/freeswitch/etc/freeswitch/autoload_configs/conference.conf.xml:
          bbb.xml_attribute:
            - tag: param
            - match: {name: energy-level}
            - attribute: value
            - value: 50
            - scope: {tag: profile, match: {name: cdquality}}
    """
    ret = _ret(name)
    what = f"<{tag} {' '.join(f'{k}={v}' for k, v in match.items())}> {attribute}={value}"
    if __opts__["test"] and not os.path.exists(name):
        # BBB not installed yet (the installer runs first): predict, do not fail.
        ret.update(
            result=None,
            changes={attribute: {"new": str(value)}},
            comment=f"would set {what} once {name} exists (BigBlueButton's installer makes it)",
        )
        return ret
    try:
        count = __salt__["bbb.set_xml_attribute"](
            name, tag, match, attribute, value, scope=scope, test=__opts__["test"]
        )
    except (CommandExecutionError, SaltInvocationError, OSError) as exc:
        ret.update(result=False, comment=f"{name}: {exc}")
        return ret
    if not count:
        ret["comment"] = f"{what} already set"
        return ret
    ret["changes"] = {attribute: {"new": str(value), "elements": count}}
    if __opts__["test"]:
        ret.update(result=None, comment=f"would set {what} ({count} elements)")
    else:
        ret["comment"] = f"set {what} ({count} elements)"
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
        args = __salt__["bbb.installer_args"](
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
    shown = "bbb-install.sh " + __salt__["bbb.redact"](args, [turn_secret])
    stamp_path = f"{workdir}/bbb-install.json"
    stamp = __salt__["bbb.install_stamp"](name, args, sha256)
    if __salt__["bbb.read_stamp"](stamp_path) == stamp:
        ret["comment"] = f"{shown}: already ran"
        return ret
    ret["changes"] = {"installer": shown}
    if __opts__["test"]:
        ret.update(result=None, comment=f"would download {url}, check its sha256, run {shown}")
        return ret
    script = f"{workdir}/bbb-install.sh"
    try:
        __salt__["bbb.fetch_installer"](url, sha256, script)
        __salt__["bbb.run_installer"](script, args, [turn_secret], log_file)
    except CommandExecutionError as exc:
        ret.update(result=False, changes={}, comment=str(exc))
        return ret
    __salt__["bbb.write_stamp"](stamp_path, stamp)
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
        secret = _pillar_secret(secret_pillar) or __salt__["bbb.secret"](
            default_properties, properties
        )
        url = url or __salt__["bbb.server_url"](default_properties, properties)
        seen = __salt__["bbb.health"](url, secret, algorithm)
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
        bbb_url = bbb_url or __salt__["bbb.server_url"](default_properties, properties)
        secret = __salt__["bbb.secret"](default_properties, properties)
        changed = __salt__["bbb.mattermost_plugin_settings"](
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
    done = __salt__["bbb.run_argv"](argv)
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
    if f"allow {name}" in __salt__["bbb.ufw_rules"]():
        ret["comment"] = f"ufw allows {name} already"
        return ret
    if __opts__["test"]:
        ret.update(result=None, changes={"ufw": f"allow {name}"}, comment=f"would allow {name}")
        return ret
    done = __salt__["bbb.run_argv"](["ufw", "allow", name])
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
    if f"allow {name}" not in __salt__["bbb.ufw_rules"]():
        ret["comment"] = f"no ufw rule allow {name}"
        return ret
    if __opts__["test"]:
        ret.update(result=None, changes={"ufw": f"delete allow {name}"}, comment="would delete")
        return ret
    done = __salt__["bbb.run_argv"](["ufw", "delete", "allow", name])
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
