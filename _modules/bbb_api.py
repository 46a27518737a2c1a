"""
BigBlueButton's API: checksums, signed URLs and calls, with the checksum scheme of
BBB's API documentation (hash of call name + query string + shared secret; SHA-1,
or SHA-256/384/512 on BBB 2.4 and later).

Without an explicit URL or secret, this host's ``bigbluebutton.web.serverURL``
and ``securitySalt`` are read through ``bbb_config``.  The secret never appears
in a return value or an error message.
"""

import hashlib
import re
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

from salt.exceptions import CommandExecutionError, SaltInvocationError

__virtualname__ = "bbb_api"

ALGORITHMS = ("sha1", "sha256", "sha384", "sha512")


def __virtual__():
    return __virtualname__


def checksum(call, query, secret, algorithm="sha1"):
    """
    Return the checksum BBB expects for API ``call`` with the (already encoded)
    ``query`` string: the hex digest of ``call + query + secret``.

    CLI Example:

    .. code-block:: bash

        salt-call bbb_api.checksum create 'name=Test+Meeting&meetingID=abc123' mysecret sha256
    """
    if algorithm not in ALGORITHMS:
        raise SaltInvocationError(
            f"checksum algorithm '{algorithm}' is not one BBB supports ({', '.join(ALGORITHMS)})"
        )
    if not secret:
        raise SaltInvocationError("the BBB API secret is empty")
    return hashlib.new(algorithm, f"{call}{query}{secret}".encode()).hexdigest()


def encode_query(params=None):
    """
    Encode API parameters the way BBB's documentation does (``+`` for spaces), in
    the order given.

    CLI Example:

    .. code-block:: bash

        salt-call bbb_api.encode_query '{name: Test Meeting, meetingID: abc123}'
    """
    return urllib.parse.urlencode(list((params or {}).items()), quote_via=urllib.parse.quote_plus)


def api_base(url):
    """
    Normalise a server or API URL to ``.../bigbluebutton/api/``.

    CLI Example:

    .. code-block:: bash

        salt-call bbb_api.api_base https://bbb.example.org
    """
    if not re.match(r"https?://[^/\s]+", url or ""):
        raise SaltInvocationError(f"'{url}' is not an http(s) URL of a BigBlueButton server")
    url = url.rstrip("/")
    if url.endswith("/bigbluebutton/api"):
        return url + "/"
    if url.endswith("/bigbluebutton"):
        return url + "/api/"
    return url + "/bigbluebutton/api/"


def api_url(base_url, call, params=None, secret=None, algorithm="sha1"):
    """
    Build the signed URL of an API call.  Without ``secret`` the secret is read
    from this host's BBB properties (``bbb_config.secret``).

    CLI Example:

    .. code-block:: bash

        salt-call bbb_api.api_url https://bbb.example.org getMeetings
        salt-call bbb_api.api_url https://bbb.example.org isMeetingRunning '{meetingID: abc}'
    """
    query = encode_query(params)
    sig = checksum(call, query, secret or __salt__["bbb_config.secret"](), algorithm)
    return f"{api_base(base_url)}{call}?{query + '&' if query else ''}checksum={sig}"


def _xml_to_dict(element):
    children = list(element)
    if not children:
        return (element.text or "").strip()
    out = {}
    for child in children:
        value = _xml_to_dict(child)
        if child.tag in out:
            if not isinstance(out[child.tag], list):
                out[child.tag] = [out[child.tag]]
            out[child.tag].append(value)
        else:
            out[child.tag] = value
    return out


def call(name, params=None, base_url=None, secret=None, algorithm=None, timeout=10):  # noqa: PLR0917  (Salt 3006 cannot pass keyword-only args)
    """
    Call the BBB API and return its XML answer as a dict.  ``base_url`` and the
    secret default to this host's ``bigbluebutton.web.serverURL`` and
    ``securitySalt``.  A ``FAILED`` answer raises an error with BBB's message.

    CLI Example:

    .. code-block:: bash

        salt-call bbb_api.call getMeetings
    """
    base_url = base_url or __salt__["bbb_config.server_url"]()
    algorithm = algorithm or "sha1"
    url = api_url(base_url, name, params, secret, algorithm)
    shown = api_base(base_url) + name
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:  # noqa: S310 (http(s) only)
            body = answer.read()
    except urllib.error.HTTPError as exc:
        raise CommandExecutionError(f"BBB API {shown}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CommandExecutionError(f"BBB API {shown} is not reachable: {reason}") from None
    try:
        data = _xml_to_dict(ET.fromstring(body))
    except ET.ParseError as exc:
        raise CommandExecutionError(f"BBB API {shown} did not answer with XML: {exc}") from None
    if not isinstance(data, dict) or data.get("returncode") != "SUCCESS":
        message = data.get("message", data) if isinstance(data, dict) else data
        key = data.get("messageKey", "") if isinstance(data, dict) else ""
        raise CommandExecutionError(f"BBB API {name} failed: {key} {message}".replace("  ", " "))
    return data


def get_meetings(base_url=None, secret=None, algorithm=None):
    """
    List the running meetings (``getMeetings``) as a list of dicts.

    CLI Example:

    .. code-block:: bash

        salt-call bbb_api.get_meetings
    """
    data = call("getMeetings", None, base_url, secret, algorithm)
    meetings = data.get("meetings") or {}
    found = meetings.get("meeting", []) if isinstance(meetings, dict) else []
    return found if isinstance(found, list) else [found]


def is_meeting_running(meeting_id, base_url=None, secret=None, algorithm=None):
    """
    True when the meeting ``meeting_id`` is running (``isMeetingRunning``).

    CLI Example:

    .. code-block:: bash

        salt-call bbb_api.is_meeting_running abc123
    """
    data = call("isMeetingRunning", {"meetingID": meeting_id}, base_url, secret, algorithm)
    return data.get("running") == "true"


def health(base_url=None, secret=None, algorithm=None):
    """
    Check that the API answers a signed ``getMeetings`` and an
    ``isMeetingRunning`` for a meeting that does not exist; return what was seen.

    CLI Example:

    .. code-block:: bash

        salt-call bbb_api.health https://bbb.example.org
    """
    meetings = get_meetings(base_url, secret, algorithm)
    probe = "labsalt-health-probe"
    running = is_meeting_running(probe, base_url, secret, algorithm)
    return {
        "api": api_base(base_url or __salt__["bbb_config.server_url"]()),
        "meetings": len(meetings),
        probe: running,
    }
