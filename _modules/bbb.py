"""
BigBlueButton: API checksums and calls, the pinned installer, and key edits of BBB's files.

The lab notebook installs BBB with ``bbb-install.sh`` and then edits a handful of
settings by hand (``sed`` on ``bigbluebutton.properties``, FreeSWITCH XML).  This
module does the same as data: it composes the installer's command line, checks
the downloaded installer against a pinned sha256, edits single keys of BBB's
properties files and single attributes of FreeSWITCH's XML files (leaving the
rest of each file as BBB shipped it), and talks to the BBB API with the checksum
scheme of BBB's API documentation (hash of call name + query string + shared
secret; SHA-1, or SHA-256/384/512 on BBB 2.4 and later).

Secrets (the API secret, the TURN secret) never appear in return values meant
for display, in error messages or in logs: they are replaced by ``***``.

``_wrapper/bbb.py`` links here so that under salt-ssh the pure checks the SLS
files call from Jinja (``bbb.check_secret``, ``bbb.phone_number``) run on the
master without an SSH round trip (and without a secret on an SSH command line).
Only call pure functions from Jinja: the others read the host's files.
"""

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

from salt.exceptions import CommandExecutionError, SaltInvocationError

log = logging.getLogger(__name__)

__virtualname__ = "bbb"

ALGORITHMS = ("sha1", "sha256", "sha384", "sha512")
# BBB >= 2.4 reads its settings from the defaults shipped in the package and
# then from the override file that survives upgrades.
DEFAULT_PROPERTIES = "/usr/share/bbb-web/WEB-INF/classes/bigbluebutton.properties"
OVERRIDE_PROPERTIES = "/etc/bigbluebutton/bbb-web.properties"
REDACTED = "***"
# coturn's schema asks for as much (coturn:static_auth_secret min: 16).
TURN_SECRET_MIN = 16
# The first word of restart_cmd: a command name or an absolute path.
COMMAND = re.compile(r"/[A-Za-z0-9_./+-]+|[A-Za-z0-9_][A-Za-z0-9_.+-]*")
VERSION_LINE = re.compile(r"[a-z]+-\d{2,3}(-[a-z0-9]+)?")  # xenial-22, focal-270, jammy-300
EMAIL = re.compile(r"[^@\s]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
HOSTNAME = re.compile(
    r"(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)


def __virtual__():
    return __virtualname__


# --------------------------------------------------------------------------- API


def checksum(call, query, secret, algorithm="sha1"):
    """
    Return the checksum BBB expects for API ``call`` with the (already encoded)
    ``query`` string: the hex digest of ``call + query + secret``.

    CLI Example:

    .. code-block:: bash

        salt-call bbb.checksum create 'name=Test+Meeting&meetingID=abc123' mysecret sha256
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

        salt-call bbb.encode_query '{name: Test Meeting, meetingID: abc123}'
    """
    return urllib.parse.urlencode(list((params or {}).items()), quote_via=urllib.parse.quote_plus)


def api_base(url):
    """
    Normalise a server or API URL to ``.../bigbluebutton/api/``.

    CLI Example:

    .. code-block:: bash

        salt-call bbb.api_base https://bbb.example.org
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
    from this host's BBB properties (see :py:func:`secret`).

    CLI Example:

    .. code-block:: bash

        salt-call bbb.api_url https://bbb.example.org getMeetings
        salt-call bbb.api_url https://bbb.example.org isMeetingRunning '{meetingID: abc}'
    """
    query = encode_query(params)
    sig = checksum(call, query, secret or _host_secret(), algorithm)
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

        salt-call bbb.call getMeetings
    """
    base_url = base_url or server_url()
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

        salt-call bbb.get_meetings
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

        salt-call bbb.is_meeting_running abc123
    """
    data = call("isMeetingRunning", {"meetingID": meeting_id}, base_url, secret, algorithm)
    return data.get("running") == "true"


def health(base_url=None, secret=None, algorithm=None):
    """
    Check that the API answers a signed ``getMeetings`` and an
    ``isMeetingRunning`` for a meeting that does not exist; return what was seen.

    CLI Example:

    .. code-block:: bash

        salt-call bbb.health https://bbb.example.org
    """
    meetings = get_meetings(base_url, secret, algorithm)
    probe = "labsalt-health-probe"
    running = is_meeting_running(probe, base_url, secret, algorithm)
    return {"api": api_base(base_url or server_url()), "meetings": len(meetings), probe: running}


# --------------------------------------------------------------------------- properties


def parse_properties(text):
    """
    Return the ``key=value`` pairs of a Java properties text (the subset BBB
    uses: one entry per line, ``#`` comments, ``key=value`` or ``key = value``).

    CLI Example:

    .. code-block:: bash

        salt-call bbb.parse_properties "$(cat /etc/bigbluebutton/bbb-web.properties)"
    """
    values = {}
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "!")) or "=" not in stripped:
            continue
        key, value = stripped.split("=", 1)
        values[key.strip()] = value.strip()
    return values


def _read(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def read_properties(path=OVERRIDE_PROPERTIES):
    """
    Return the settings of one properties file ({} when it does not exist).

    CLI Example:

    .. code-block:: bash

        salt-call bbb.read_properties /etc/bigbluebutton/bbb-web.properties
    """
    text = _read(path)
    return parse_properties(text) if text is not None else {}


def effective_properties(defaults=DEFAULT_PROPERTIES, override=OVERRIDE_PROPERTIES):
    """
    The settings bbb-web uses: the packaged defaults overlaid with the override
    file.

    CLI Example:

    .. code-block:: bash

        salt-call bbb.effective_properties
    """
    merged = read_properties(defaults)
    merged.update(read_properties(override))
    return merged


def secret(defaults=DEFAULT_PROPERTIES, override=OVERRIDE_PROPERTIES):
    """
    The API shared secret (``securitySalt``) this host's bbb-web uses, as
    ``bbb-conf --secret`` prints it.  Meant for other modules and states; it is
    a secret, so do not print it.

    CLI Example:

    .. code-block:: bash

        salt-call bbb.secret
    """
    return _host_secret(defaults, override)


def _host_secret(defaults=DEFAULT_PROPERTIES, override=OVERRIDE_PROPERTIES):
    value = effective_properties(defaults, override).get("securitySalt")
    if not value:
        raise CommandExecutionError(
            f"no securitySalt in {override} or {defaults}: is BigBlueButton installed?"
        )
    return value


def server_url(defaults=DEFAULT_PROPERTIES, override=OVERRIDE_PROPERTIES):
    """
    The server URL (``bigbluebutton.web.serverURL``) this host's bbb-web uses.

    CLI Example:

    .. code-block:: bash

        salt-call bbb.server_url
    """
    value = effective_properties(defaults, override).get("bigbluebutton.web.serverURL")
    if not value:
        raise CommandExecutionError(f"no bigbluebutton.web.serverURL in {override} or {defaults}")
    return value


def edit_properties(text, settings):
    """
    Return ``(new_text, changed_keys)``: ``text`` with each key of ``settings``
    set.  An existing ``key=...`` line is rewritten in place (its first
    occurrence; later duplicates are removed, since the last one would win);
    missing keys are appended.  Comments and all other lines stay as they are.

    CLI Example:

    .. code-block:: bash

        salt-call bbb.edit_properties 'a=1' '{a: 2, b: 3}'
    """
    lines = text.splitlines()
    changed = []
    for key, raw in settings.items():
        value = _property_value(raw)
        pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
        hits = [i for i, line in enumerate(lines) if pattern.match(line)]
        wanted = f"{key}={value}"
        if not hits:
            lines.append(wanted)
            changed.append(key)
            continue
        first, *dupes = hits
        if lines[first] != wanted or dupes:
            changed.append(key)
        lines[first] = wanted
        for index in reversed(dupes):
            del lines[index]
    new = "\n".join(lines) + "\n" if lines else ""
    return new, changed


def _property_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    value = str(value)
    if re.search(r"[\x00-\x1f\x7f]", value):
        raise SaltInvocationError(
            "a BBB property value must be one line without control characters"
        )
    # A backslash escapes in Java properties (at the end of a line it would
    # continue the value into the next key): write it escaped.  Java reads the
    # file as ISO-8859-1: escape everything beyond ASCII.
    value = value.replace("\\", "\\\\")
    return "".join(ch if ord(ch) < 0x80 else f"\\u{ord(ch):04x}" for ch in value)


def set_properties(path, settings, test=False):
    """
    Set keys in a properties file (created, mode 0644, when missing); return the
    list of keys that changed (or would change with ``test=True``).

    CLI Example:

    .. code-block:: bash

        salt-call bbb.set_properties /etc/bigbluebutton/bbb-web.properties \\
            '{allowStartStopRecording: false, disableRecordingDefault: true}'
    """
    old = _read(path)
    new, changed = edit_properties(old or "", settings)
    if old is None:
        changed = list(settings)
    if changed and not test:
        _write_atomic(path, new, mode=0o644 if old is None else None)
    return changed


def _write_atomic(path, text, mode=None):
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    current = os.stat(path) if os.path.exists(path) else None
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".labsalt-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        if current is not None:
            os.chmod(tmp, current.st_mode & 0o7777)
            os.chown(tmp, current.st_uid, current.st_gid)
        else:
            os.chmod(tmp, mode or 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# --------------------------------------------------------------------------- FreeSWITCH XML


def _tag_span(text, tag, match, start=0, end=None):
    """(start, end) of every ``<tag ...>`` start tag in text[start:end] whose attributes
    include all of ``match``."""
    end = len(text) if end is None else end
    spans = []
    for found in re.finditer(rf"<{re.escape(tag)}(\s[^<>]*?)?/?>", text[start:end]):
        attrs = dict(re.findall(r'([\w:-]+)\s*=\s*"([^"]*)"', found.group(0)))
        if all(attrs.get(k) == str(v) for k, v in (match or {}).items()):
            spans.append((start + found.start(), start + found.end()))
    return spans


def edit_xml_attribute(text, tag, match, attribute, value, scope=None):  # noqa: PLR0917  (Salt 3006 cannot pass keyword-only args)
    """
    Return ``(new_text, count)``: in XML ``text``, set ``attribute`` to ``value``
    on every ``<tag>`` element whose attributes include ``match``; with
    ``scope`` (``{"tag": ..., "match": {...}}``) only inside that element.  The
    edit is textual (one attribute in one start tag), so comments, layout and
    FreeSWITCH's pre-processor lines stay as BBB shipped them.  No matching
    element is an error; the result must still be well-formed XML.

    CLI Example:

    .. code-block:: bash

        salt-call bbb.edit_xml_attribute "$(cat opus.conf.xml)" param '{name: use-dtx}' value 0
    """
    start, end = 0, len(text)
    where = f"<{tag} {_attrs(match)}>"
    if scope:
        outer = _tag_span(text, scope["tag"], scope.get("match"))
        if len(outer) != 1:
            raise CommandExecutionError(
                f"expected one <{scope['tag']} {_attrs(scope.get('match'))}>, found {len(outer)}"
            )
        start = outer[0][1]
        close = text.find(f"</{scope['tag']}>", start)
        end = close if close >= 0 else len(text)
        where += f" inside <{scope['tag']} {_attrs(scope.get('match'))}>"
    spans = _tag_span(text, tag, match, start, end)
    if not spans:
        raise CommandExecutionError(f"no element {where} to set {attribute}= on")
    value = _xml_escape(str(value))
    pieces, last, count = [], 0, 0
    for begin, finish in spans:
        element = text[begin:finish]
        attr = re.compile(rf'(\s{re.escape(attribute)}\s*=\s*")([^"]*)(")')
        if attr.search(element):
            new_element = attr.sub(lambda m: m.group(1) + value + m.group(3), element, count=1)
        else:
            tail = "/>" if element.endswith("/>") else ">"
            new_element = element[: -len(tail)].rstrip() + f' {attribute}="{value}"' + tail
        count += new_element != element
        pieces += [text[last:begin], new_element]
        last = finish
    new = "".join(pieces) + text[last:]
    try:
        ET.fromstring(new)
    except ET.ParseError as exc:
        raise CommandExecutionError(
            f"setting {attribute} on {where} breaks the XML: {exc}"
        ) from None
    return new, count


def _attrs(match):
    return " ".join(f'{k}="{v}"' for k, v in (match or {}).items())


def _xml_escape(value):
    return value.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")


def set_xml_attribute(path, tag, match, attribute, value, scope=None, test=False):  # noqa: PLR0917  (Salt 3006 cannot pass keyword-only args)
    """
    Set one attribute in a FreeSWITCH XML file (see
    :py:func:`edit_xml_attribute`); return how many elements changed (or would).

    CLI Example:

    .. code-block:: bash

        salt-call bbb.set_xml_attribute \\
            /opt/freeswitch/etc/freeswitch/autoload_configs/opus.conf.xml \\
            param '{name: use-dtx}' value 0
    """
    text = _read(path)
    if text is None:
        raise CommandExecutionError(f"{path} does not exist: is BigBlueButton installed?")
    new, count = edit_xml_attribute(text, tag, match, attribute, value, scope=scope)
    if count and not test:
        _write_atomic(path, new)
    return count


# --------------------------------------------------------------------------- installer


def installer_args(  # noqa: PLR0917  (Salt 3006 cannot pass keyword-only args)
    version,
    hostname,
    email,
    turn_host=None,
    turn_secret=None,
    greenlight=False,
    firewall=True,
    extra_args=None,
):
    """
    Compose ``bbb-install.sh``'s arguments (the flags its README documents):
    ``-v`` version line, ``-s`` hostname, ``-e`` e-mail for Let's Encrypt,
    ``-c host:secret`` for an external TURN server, ``-g`` Greenlight, ``-w``
    firewall (UFW).  Bad values raise an error naming the pillar key.

    CLI Example:

    .. code-block:: bash

        salt-call bbb.installer_args jammy-300 bbb.example.org admin@example.org \\
            turn_host=turn.example.org turn_secret=...
    """
    key = "bigbluebutton"
    if not isinstance(version, str) or not VERSION_LINE.fullmatch(version):
        raise SaltInvocationError(
            f"{key}:installer:version '{version}' is not a bbb-install version line "
            "such as jammy-300 or focal-270"
        )
    if not isinstance(hostname, str) or not HOSTNAME.fullmatch(hostname):
        raise SaltInvocationError(f"{key}:hostname '{hostname}' is not a fully qualified host name")
    if not isinstance(email, str) or not EMAIL.fullmatch(email):
        raise SaltInvocationError(f"{key}:email '{email}' is not an e-mail address")
    args = ["-v", version, "-s", hostname, "-e", email]
    if turn_host:
        if not HOSTNAME.fullmatch(str(turn_host)):
            raise SaltInvocationError(
                f"{key}:turn:host '{turn_host}' is not a fully qualified host name"
            )
        check_turn_secret(turn_secret, f"{key}:turn:secret")
        args += ["-c", f"{turn_host}:{turn_secret}"]
    if greenlight:
        args.append("-g")
    if firewall:
        args.append("-w")
    args += [str(a) for a in extra_args or []]
    return args


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


def redact(args, secrets):
    """
    Return ``args`` as one display string with every secret replaced by ``***``.

    CLI Example:

    .. code-block:: bash

        salt-call bbb.redact '[-c, "turn:s3cret"]' '[s3cret]'
    """
    text = " ".join(args)
    for value in secrets:
        if value:
            text = text.replace(str(value), REDACTED)
    return text


def fetch_installer(url, sha256, dest, timeout=60):
    """
    Download the installer from ``url`` and write it to ``dest`` (mode 0700)
    only when its sha256 equals the pinned ``sha256``; otherwise raise an error
    and leave ``dest`` untouched.

    CLI Example:

    .. code-block:: bash

        salt-call bbb.fetch_installer "$INSTALLER_URL" "$PINNED_SHA256" \\
            /var/lib/labsalt/bbb-install.sh
    """
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:  # noqa: S310
            body = answer.read()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CommandExecutionError(f"cannot download the BBB installer {url}: {reason}") from None
    digest = hashlib.sha256(body).hexdigest()
    if digest != str(sha256).lower():
        raise CommandExecutionError(
            f"the BBB installer at {url} has sha256 {digest}, but pillar "
            f"bigbluebutton:installer:sha256 pins {sha256}: nothing was run. Check the "
            "script and update the pin, or fix the URL."
        )
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    _write_atomic(dest, body.decode("utf-8", "replace"), mode=0o700)
    os.chmod(dest, 0o700)
    return digest


def install_stamp(version, args, sha256):
    """
    What a finished installer run is recorded as: the version line, the
    installer's sha256 and a digest of the full argument list (so the secret
    is not stored, but changing it reruns the installer).

    CLI Example:

    .. code-block:: bash

        salt-call bbb.install_stamp jammy-300 '[-v, jammy-300]' <sha256>
    """
    digest = hashlib.sha256(json.dumps(args).encode()).hexdigest()
    return {"version": version, "installer_sha256": str(sha256).lower(), "args_sha256": digest}


def read_stamp(path):
    """
    The stamp of the last successful installer run, or None.

    CLI Example:

    .. code-block:: bash

        salt-call bbb.read_stamp /var/lib/labsalt/bbb-install.json
    """
    text = _read(path)
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def write_stamp(path, stamp):
    """
    Record a finished installer run (see :py:func:`install_stamp`).

    CLI Example:

    .. code-block:: bash

        salt-call bbb.write_stamp /var/lib/labsalt/bbb-install.json '{version: jammy-300}'
    """
    _write_atomic(path, json.dumps(stamp, sort_keys=True) + "\n", mode=0o600)
    return True


def run_installer(script, args, secrets=(), log_file="/var/log/labsalt/bbb-install.log"):
    """
    Run the installer script with ``args`` (as root, no shell), its output going
    to ``log_file`` (mode 0600).  Nothing is logged through Salt: the arguments
    hold the TURN secret.  A failure raises an error with the redacted last
    lines of the output.

    CLI Example:

    .. code-block:: bash

        salt-call bbb.run_installer /var/lib/labsalt/bbb-install.sh '[-v, jammy-300, ...]'
    """
    os.makedirs(os.path.dirname(log_file), exist_ok=True)
    fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        proc = subprocess.run(
            ["bash", script, *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    if proc.returncode != 0:
        tail = (_read(log_file) or "").splitlines()[-5:]
        shown = redact(["\n".join(tail)], secrets)
        raise CommandExecutionError(
            f"the BBB installer exited {proc.returncode} (full output in {log_file}):\n{shown}"
        )
    return True


# --------------------------------------------------------------------------- Mattermost


def mattermost_plugin_settings(  # noqa: PLR0917  (Salt 3006 cannot pass keyword-only args)
    url, token, bbb_url, bbb_secret=None, plugin_id="bigbluebutton", timeout=10
):
    """
    Put BBB's API URL and secret into the Mattermost BigBlueButton plugin's
    settings through Mattermost's REST API (``PUT /api/v4/config/patch``, needs
    a system admin token).  Return True when the settings changed, False when
    they were already set.

    CLI Example:

    .. code-block:: bash

        salt-call bbb.mattermost_plugin_settings https://chat.example.org "$TOKEN" \\
            https://bbb.example.org/bigbluebutton/
    """
    bbb_secret = bbb_secret or _host_secret()
    base = url.rstrip("/") + "/api/v4/config"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    current = _mm_request(base, headers, timeout)
    plugins = (current.get("PluginSettings") or {}).get("Plugins") or {}
    # The plugin's setting keys BASE_URL and SALT (its plugin.json); Mattermost
    # stores plugin settings with lower-cased keys.
    wanted = {"base_url": api_base(bbb_url).rstrip("/"), "salt": bbb_secret}
    have = plugins.get(plugin_id) or {}
    if all(have.get(k) == v for k, v in wanted.items()):
        return False
    patch = {"PluginSettings": {"Plugins": {plugin_id: {**have, **wanted}}}}
    _mm_request(base + "/patch", headers, timeout, method="PUT", body=patch)
    return True


def _mm_request(url, headers, timeout, method="GET", body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
            return json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as exc:
        raise CommandExecutionError(f"Mattermost {method} {url}: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CommandExecutionError(f"Mattermost at {url} is not reachable: {reason}") from None


# --------------------------------------------------------------------------- dial-in


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


# --------------------------------------------------------------------------- pillar


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


# --------------------------------------------------------------------------- commands


def run_argv(argv, timeout=600):
    """
    Run a command given as an argument list (no shell); return its exit code and
    the last lines of its output.

    CLI Example:

    .. code-block:: bash

        salt-call bbb.run_argv '[bbb-conf, --restart]'
    """
    try:
        proc = subprocess.run(
            [str(a) for a in argv],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"retcode": 127, "output": str(exc)}
    tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-5:])
    return {"retcode": proc.returncode, "output": tail}


def ufw_rules():
    """
    The rules added to UFW (``ufw show added``) as ufw argument strings
    (``allow 5060/tcp``); [] when ufw is not installed.  Read-only.

    CLI Example:

    .. code-block:: bash

        salt-call bbb.ufw_rules
    """
    ufw = shutil.which("ufw")
    if not ufw:
        return []
    proc = subprocess.run([ufw, "show", "added"], capture_output=True, text=True, check=False)
    return [line[4:].strip() for line in proc.stdout.splitlines() if line.startswith("ufw ")]
