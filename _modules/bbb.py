"""
BigBlueButton: the checks of pillar values the formula's Jinja and schema call
(``bbb.validate`` is the schema's validator, ``bbb.check_turn_secret`` and
``bbb.phone_number`` run at render time).  Pure functions only, no file or
network access, so that ``_wrapper/bbb.py`` (a link here) runs them on the
salt-ssh master without an SSH round trip and without a secret on an SSH
command line.

The rest of the formula's logic lives in one module per seam:

- ``bbb_api``: API checksums, signed URLs and calls (``bbb_api.health``);
- ``bbb_config``: single keys of BBB's properties files, single attributes of
  its FreeSWITCH XML files, and the ``apply-config.sh`` hook that keeps those
  edits across BBB upgrades;
- ``bbb_install``: the pinned ``bbb-install.sh``, the restart command, UFW;
- ``bbb_mattermost``: the Mattermost plugin's settings;
- ``bbb_recording``: purging raw recordings when recording is disabled.

Secrets (the API secret, the TURN secret, tokens) never appear in return
values, error messages or logs.
"""

import re

from salt.exceptions import SaltInvocationError

__virtualname__ = "bbb"

# coturn's schema asks for as much (coturn:static_auth_secret min: 16).
TURN_SECRET_MIN = 16
# The first word of restart_cmd: a command name or an absolute path.
COMMAND = re.compile(r"/[A-Za-z0-9_./+-]+|[A-Za-z0-9_][A-Za-z0-9_.+-]*")


def __virtual__():
    return __virtualname__


def check_secret(value, key, purpose, charset="A-Za-z0-9_.~+/=-", min_length=8):
    """
    Refuse a missing or unusable secret with a message that names the pillar
    key and what it is for, but never shows the value.

    CLI Example:

    .. code-block:: bash

        salt-call bbb.check_secret "$TOKEN" bigbluebutton:dialin:token "the dial-in token"
    """
    if value is None or value == "":
        raise SaltInvocationError(f"{key}: is missing: {purpose}")
    if not isinstance(value, str):
        raise SaltInvocationError(f"{key}: must be a string (quote it in the pillar)")
    if len(value) < min_length or not re.fullmatch(f"[{charset}]+", value):
        raise SaltInvocationError(
            f"{key}: must be at least {min_length} characters of {charset} "
            f"(it has {len(value)} characters)"
        )
    return True


def check_turn_secret(value, key="coturn:static_auth_secret"):
    """
    Refuse a missing or unusable TURN shared secret (see :py:func:`check_secret`).

    CLI Example:

    .. code-block:: bash

        salt-call bbb.check_turn_secret "$SECRET"
    """
    return check_secret(
        value,
        key,
        "the TURN server and BigBlueButton need the same shared secret",
        min_length=TURN_SECRET_MIN,
    )


def phone_number(number, key="bigbluebutton:dialin:number"):
    """
    Check a dial-in number for the welcome message (digits, spaces, ``()/-.``,
    an optional leading ``+``; 4 to 15 digits as E.164 allows) and return it.

    CLI Example:

    .. code-block:: bash

        salt-call bbb.phone_number '+49 711 12345678'
    """
    text = str(number or "")
    digits = re.sub(r"\D", "", text)
    if not re.fullmatch(r"\+?[0-9(][0-9 ()/.-]*", text) or not 4 <= len(digits) <= 15:
        raise SaltInvocationError(
            f"{key}: '{text}' is not a phone number: use digits with optional spaces, "
            "( ) / - . and a leading +, 4 to 15 digits in all (e.g. +49 711 12345678)"
        )
    return text


def validate(mapdata):
    """
    Checks of the merged bigbluebutton parameters beyond the schema (the schema
    names this function as its validator): what an enabled feature needs, the
    dial-in number, and that ``restart_cmd`` starts with a command name or an
    absolute path.  Pure; raises SaltInvocationError("bigbluebutton:<key>: ...")
    and never shows a secret.

    CLI Example:

    .. code-block:: bash

        salt-call bbb.validate "$(salt-call --out json labsalt.mapdata bigbluebutton)"
    """
    key = "bigbluebutton"
    installer = mapdata.get("installer") or {}
    if installer.get("enabled") and not installer.get("sha256"):
        raise SaltInvocationError(
            f"{key}:installer:sha256: is missing: pin the sha256 of {installer.get('url')} "
            "(or set installer:enabled: false)"
        )
    dialin = mapdata.get("dialin") or {}
    if dialin.get("enabled"):
        phone_number(dialin.get("number"))
        check_secret(
            dialin.get("token"),
            f"{key}:dialin:token",
            "the SIP provider's calls are matched by it",
            "A-Za-z0-9",
        )
    api = mapdata.get("api") or {}
    if api.get("secret") is not None:
        check_secret(api["secret"], f"{key}:api:secret", "the BBB API secret", "A-Za-z0-9")
    mattermost = mapdata.get("mattermost") or {}
    if mattermost.get("url"):
        check_secret(
            mattermost.get("token"),
            f"{key}:mattermost:token",
            "Mattermost's API needs an admin token",
            "A-Za-z0-9",
        )
    argv = mapdata.get("restart_cmd") or []
    if not argv or not isinstance(argv[0], str) or not COMMAND.fullmatch(argv[0]):
        shown = repr(argv[0])[:60] if argv else "[]"
        raise SaltInvocationError(
            f"{key}:restart_cmd:0: {shown} is not a command name or absolute path "
            "(restart_cmd is an argument list, run without a shell)"
        )
    return True
