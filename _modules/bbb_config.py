"""
BigBlueButton's configuration files: single keys of its properties files, single
attributes of its FreeSWITCH XML files, and the ``apply-config.sh`` hook that puts
those XML edits back after a BBB upgrade.

BBB documents two places for changes that must survive upgrades
(docs.bigbluebutton.org, administration/customize and configuration-files):

- ``/etc/bigbluebutton/bbb-web.properties`` overrides
  ``/usr/share/bbb-web/WEB-INF/classes/bigbluebutton.properties`` key by key;
  the lab's bbb-web settings go there (:py:func:`set_properties`), never into
  the packaged file.
- ``/etc/bigbluebutton/bbb-conf/apply-config.sh``, run by ``bbb-conf --restart``
  and ``--setip`` just before BBB starts, for changes to other packaged files
  (FreeSWITCH XML, ...) that package upgrades overwrite (bigbluebutton#9111).
  :py:func:`apply_config_files` keeps a marked block in that script (the rest of
  the script stays the site's) that runs a copy of this very file with a JSON
  data file of the edits: no pillar value ever becomes shell code, the block is
  fixed text plus quoted paths, checked with ``sh -n`` before it is written.

This file is self-contained (Python's standard library; Salt's exceptions when
Salt is there) because ``apply-config.sh`` runs it on a host without Salt:
``python3 labsalt-bbb_config.py labsalt-settings.json``.
"""

import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

try:
    from salt.exceptions import CommandExecutionError, SaltInvocationError
except ImportError:  # run by apply-config.sh, outside Salt

    class CommandExecutionError(Exception):
        """An edit failed (stand-in for Salt's exception)."""

    class SaltInvocationError(Exception):
        """Bad input (stand-in for Salt's exception)."""


__virtualname__ = "bbb_config"

# BBB >= 2.4 reads its settings from the defaults shipped in the package and
# then from the override file that survives upgrades.
DEFAULT_PROPERTIES = "/usr/share/bbb-web/WEB-INF/classes/bigbluebutton.properties"
OVERRIDE_PROPERTIES = "/etc/bigbluebutton/bbb-web.properties"
# bbb-conf runs <BBB_CONF>/apply-config.sh (bbb-config's package ships apply-lib.sh there).
BBB_CONF = "/etc/bigbluebutton/bbb-conf"
HOOK = "apply-config.sh"
APPLIER = "labsalt-bbb_config.py"
SETTINGS = "labsalt-settings.json"
BEGIN = "# BEGIN labsalt bigbluebutton: managed by Salt, do not edit this block"
END = "# END labsalt bigbluebutton"
PYTHON = "/usr/bin/python3"


def __virtual__():
    return __virtualname__


# --------------------------------------------------------------------------- properties


def parse_properties(text):
    """
    Return the ``key=value`` pairs of a Java properties text (the subset BBB
    uses: one entry per line, ``#`` comments, ``key=value`` or ``key = value``).

    CLI Example:

    .. code-block:: bash

        salt-call bbb_config.parse_properties "$(cat /etc/bigbluebutton/bbb-web.properties)"
    """
    values = {}
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "!")) or "=" not in stripped:
            continue
        key, value = stripped.split("=", 1)
        values[key.strip()] = value.strip()
    return values


def read_text(path):
    """
    The text of ``path``, or None when it does not exist.

    CLI Example:

    .. code-block:: bash

        salt-call bbb_config.read_text /etc/bigbluebutton/bbb-web.properties
    """
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

        salt-call bbb_config.read_properties /etc/bigbluebutton/bbb-web.properties
    """
    text = read_text(path)
    return parse_properties(text) if text is not None else {}


def effective_properties(defaults=DEFAULT_PROPERTIES, override=OVERRIDE_PROPERTIES):
    """
    The settings bbb-web uses: the packaged defaults overlaid with the override
    file.

    CLI Example:

    .. code-block:: bash

        salt-call bbb_config.effective_properties
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

        salt-call bbb_config.secret
    """
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

        salt-call bbb_config.server_url
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

        salt-call bbb_config.edit_properties 'a=1' '{a: 2, b: 3}'
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

        salt-call bbb_config.set_properties /etc/bigbluebutton/bbb-web.properties \\
            '{allowStartStopRecording: false, disableRecordingDefault: true}'
    """
    old = read_text(path)
    new, changed = edit_properties(old or "", settings)
    if old is None:
        changed = list(settings)
    if changed and not test:
        write_atomic(path, new, mode=0o644 if old is None else None)
    return changed


def write_atomic(path, text, mode=None):
    """
    Replace ``path`` with ``text`` atomically (a temp file in the same directory,
    renamed), keeping an existing file's mode and owner; a new file gets ``mode``
    (default 0644).

    CLI Example:

    .. code-block:: bash

        salt-call bbb_config.write_atomic /tmp/x.properties "a=1"
    """
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

        salt-call bbb_config.edit_xml_attribute "$(cat opus.conf.xml)" \\
            param '{name: use-dtx}' value 0
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

        salt-call bbb_config.set_xml_attribute \\
            /opt/freeswitch/etc/freeswitch/autoload_configs/opus.conf.xml \\
            param '{name: use-dtx}' value 0
    """
    text = read_text(path)
    if text is None:
        raise CommandExecutionError(f"{path} does not exist: is BigBlueButton installed?")
    new, count = edit_xml_attribute(text, tag, match, attribute, value, scope=scope)
    if count and not test:
        write_atomic(path, new)
    return count


# --------------------------------------------------------------------------- apply-config.sh


def _edit_text(edit):
    match = " ".join(f"{k}={v}" for k, v in (edit.get("match") or {}).items())
    return f"{edit['path']} <{edit['tag']} {match}> {edit['attribute']}={edit['value']}"


def apply_settings(settings, test=False):
    """
    Apply a settings document (what ``labsalt-settings.json`` holds):
    ``{"xml": [{"path", "tag", "match", "attribute", "value", "scope"}, ...]}``,
    each one attribute set with :py:func:`set_xml_attribute`.  Return
    ``{description: elements changed}`` for the edits that changed something (or
    would, with ``test=True``).  In test mode a file that does not exist yet
    (BBB not installed) is predicted as changed, not an error.

    CLI Example:

    .. code-block:: bash

        salt-call bbb_config.apply_settings \\
            "$(cat /etc/bigbluebutton/bbb-conf/labsalt-settings.json)"
    """
    if isinstance(settings, str):
        settings = json.loads(settings)
    changed = {}
    for edit in settings.get("xml") or []:
        if test and not os.path.exists(edit["path"]):
            changed[_edit_text(edit)] = "once the file exists"
            continue
        count = set_xml_attribute(
            edit["path"],
            edit["tag"],
            edit.get("match") or {},
            edit["attribute"],
            edit["value"],
            scope=edit.get("scope"),
            test=test,
        )
        if count:
            changed[_edit_text(edit)] = count
    return changed


def hook_block(bbb_conf=BBB_CONF):
    """
    The lines labsalt keeps in ``apply-config.sh``: fixed text and two quoted
    paths (this module's copy and its data file), nothing from pillar values.

    CLI Example:

    .. code-block:: bash

        salt-call bbb_config.hook_block
    """
    applier = shlex.quote(os.path.join(bbb_conf, APPLIER))
    data = shlex.quote(os.path.join(bbb_conf, SETTINGS))
    return "\n".join(
        [
            BEGIN,
            "# Puts the lab's edits of BBB's packaged files back after an upgrade",
            "# (bigbluebutton formula; data in the JSON file, no shell from pillar).",
            f"{PYTHON} {applier} {data}",
            END,
        ]
    )


def hook_text(current, block):
    """
    ``apply-config.sh`` with labsalt's ``block``: replaced in place where the
    markers are, appended otherwise; a new script (``current`` None) is a bash
    script with only the block.  Every other line stays the site's.

    CLI Example:

    .. code-block:: bash

        salt-call bbb_config.hook_text "$(cat apply-config.sh)" "$(salt-call bbb_config.hook_block)"
    """
    if current is None:
        return f"#!/bin/bash\n\n{block}\n"
    rest = hook_removed(current)
    rest = rest if rest is not None else "#!/bin/bash\n"
    return rest.rstrip("\n") + f"\n\n{block}\n"


def hook_removed(current):
    """
    ``apply-config.sh`` without labsalt's block; None when nothing but the
    script header labsalt wrote would be left (the script was labsalt's own).

    CLI Example:

    .. code-block:: bash

        salt-call bbb_config.hook_removed "$(cat apply-config.sh)"
    """
    lines = current.splitlines()
    if BEGIN in lines and END in lines[lines.index(BEGIN) :]:
        first = lines.index(BEGIN)
        last = first + lines[first:].index(END)
        lines = lines[:first] + lines[last + 1 :]
    while lines and not lines[-1].strip():
        lines.pop()
    if not [line for line in lines if line.strip() and line.strip() != "#!/bin/bash"]:
        return None
    return "\n".join(lines) + "\n"


def check_shell(text):
    """
    Refuse a shell script that ``sh -n`` (bash's when there) does not parse,
    with the shell's message.

    CLI Example:

    .. code-block:: bash

        salt-call bbb_config.check_shell "$(cat apply-config.sh)"
    """
    shell = "/bin/bash" if os.path.exists("/bin/bash") else "/bin/sh"
    proc = subprocess.run([shell, "-n"], input=text, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise CommandExecutionError(f"{shell} -n refuses the script: {proc.stderr.strip()}")
    return True


def _own_source():
    path = __file__[:-1] if __file__.endswith(".pyc") else __file__
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def apply_config_files(settings, bbb_conf=BBB_CONF, test=False):
    """
    Keep BBB's ``apply-config.sh`` hook: write this module's copy
    (``labsalt-bbb_config.py``), the settings (``labsalt-settings.json``, see
    :py:func:`apply_settings`) and labsalt's block in ``apply-config.sh``
    (created, mode 0755, when missing; checked with ``sh -n`` before it
    replaces the live script).  Return the files that changed (or would).
    ``bbb_conf`` must exist (BBB's bbb-config package makes it).

    CLI Example:

    .. code-block:: bash

        salt-call bbb_config.apply_config_files '{xml: [...]}'
    """
    if not os.path.isdir(bbb_conf):
        raise CommandExecutionError(f"{bbb_conf} does not exist: is BigBlueButton installed?")
    hook = os.path.join(bbb_conf, HOOK)
    current = read_text(hook)
    wanted = {
        os.path.join(bbb_conf, APPLIER): (_own_source(), 0o644),
        os.path.join(bbb_conf, SETTINGS): (
            json.dumps(settings, indent=1, sort_keys=True) + "\n",
            0o644,
        ),
        hook: (hook_text(current, hook_block(bbb_conf)), 0o755),
    }
    changed = [path for path, (text, _) in wanted.items() if read_text(path) != text]
    if current is not None and not os.access(hook, os.X_OK) and hook not in changed:
        changed.append(hook)
    if test or not changed:
        return changed
    check_shell(wanted[hook][0])
    for path in changed:
        text, mode = wanted[path]
        write_atomic(path, text, mode=mode)
        if path == hook:
            os.chmod(hook, os.stat(hook).st_mode | 0o111)
    return changed


def apply_config_removed(bbb_conf=BBB_CONF, test=False):
    """
    Undo :py:func:`apply_config_files`: labsalt's block leaves
    ``apply-config.sh`` (the script goes when nothing of the site's is left in
    it), the module copy and the settings file go.  Return what changed.

    CLI Example:

    .. code-block:: bash

        salt-call bbb_config.apply_config_removed
    """
    hook = os.path.join(bbb_conf, HOOK)
    changed = []
    current = read_text(hook)
    if current is not None:
        rest = hook_removed(current)
        if rest != current:
            changed.append(hook)
            if not test:
                if rest is None:
                    os.unlink(hook)
                else:
                    check_shell(rest)
                    write_atomic(hook, rest)
    for name in (APPLIER, SETTINGS):
        path = os.path.join(bbb_conf, name)
        if os.path.lexists(path):
            changed.append(path)
            if not test:
                os.unlink(path)
    return changed


def _main(argv):
    """``python3 labsalt-bbb_config.py SETTINGS.json``: what apply-config.sh runs."""
    if len(argv) != 2:
        print(f"usage: {argv[0]} SETTINGS.json", file=sys.stderr)
        return 2
    try:
        with open(argv[1], encoding="utf-8") as handle:
            settings = json.load(handle)
        changed = apply_settings(settings)
    except (OSError, ValueError, KeyError, CommandExecutionError, SaltInvocationError) as exc:
        print(f"  - labsalt: the lab's BBB settings were not applied: {exc}", file=sys.stderr)
        return 1
    for what in changed:
        print(f"  - labsalt: set {what}")
    if not changed:
        print("  - labsalt: the lab's BBB settings are in place")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv))
