"""
No state builds a shell command from pillar (issue 15 item 2).

The rule, as this lint enforces it on every SLS under formulas/ (source text,
before Jinja):

* Shell strings are: ``onlyif``/``unless`` given as a string or as a list of
  strings (Salt runs each with ``python_shell=True``); ``check_cmd``; the
  command of ``cmd.run``/``cmd.wait``/``cmd.script`` (``name``, ``names``
  items, ``args``, or the state ID when there is no ``name``) unless it is a YAML
  list (argv form); and, inside Jinja, ``salt["cmd.run*"/"cmd.shell"/
  "cmd.retcode"](...)`` calls without ``python_shell=False``.
* Pillar-derived text is any ``{{ ... }}`` expression naming something other
  than Salt's own render variables (``tpldir``, ``sls``, ``slspath``, ...,
  ``grains``, ``opts``): mapdata, pillar, ``salt[...]`` results and variables set
  from them all count.
* Allowed: module-function form (``onlyif: [{fun: ..., args: [...]}]``), argv
  lists, and one exception for ``check_cmd``, which Salt runs without a shell
  (``file.mod_run_check_cmd`` -> ``cmd.run_all``, argv split by shlex): its first
  word may be a binary path taken from mapdata, ``{{ mapdata.x.y }}`` or a
  variable ``{% set v = mapdata.x.y ~ "/name" %}``, followed by static text, when
  the schema node of ``x.y`` has ``format: abspath`` (absolute, no ``..``, no
  control characters or newline).  Every other word of a check_cmd is static.
"""

import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
FORMULAS = sorted(
    p.name for p in (REPO / "formulas").iterdir() if p.is_dir() and (p / "init.sls").is_file()
)
SAFE_NAMES = {
    "tpldir", "tplfile", "tplpath", "tplroot", "sls", "slspath", "slsdotpath",
    "slscolonpath", "sls_path", "grains", "opts", "saltenv", "loop", "true", "false",
    "none", "True", "False", "None", "and", "or", "not", "in", "is", "if", "else",
    "split", "join", "replace", "lower", "upper", "format", "default",
}  # fmt: skip
SHELL_FUNS = ("cmd.run", "cmd.wait", "cmd.script")
JINJA_EXPR = re.compile(r"\{\{(.*?)\}\}")
NAME = re.compile(r"(?<![\w.'\"])([A-Za-z_]\w*)")
STRING = re.compile(r"'[^']*'|\"[^\"]*\"")
SET = re.compile(r"\{%-?\s*set\s+(\w+)\s*=\s*(.*?)\s*-?%\}")
MAPDATA_PATH = re.compile(r"^mapdata((?:\.\w+|\[['\"]\w+['\"]\])+)$")
OPTION = re.compile(r"^(\s*)-\s+(onlyif|unless|check_cmd|name|names|args|python_shell):\s*(.*)$")
FUNCTION = re.compile(r"^(\s*)([a-z_]+\.[a-z_]+):?\s*$")
STATE_ID = re.compile(r"^(\S.*?):\s*$")
JINJA_SHELL_CALL = re.compile(
    r"salt(?:\[\s*['\"](cmd\.(?:run\w*|shell|retcode))['\"]\s*\]|\.cmd\.(run\w*|shell|retcode))"
    r"\s*\((.*?)\)\s*(?:[|}%]|$)"
)


def tainted_names(expr):
    """Names in a Jinja expression that may carry pillar (not Salt's render variables)."""
    expr = STRING.sub("''", expr)
    names = set(NAME.findall(expr))
    return sorted(n for n in names if n not in SAFE_NAMES and not n.isdigit())


def is_tainted(text):
    return any(tainted_names(expr) for expr in JINJA_EXPR.findall(text))


def _mapdata_keys(expr, aliases):
    """``mapdata.a.b`` (or an alias of it) as ['a', 'b']; None when it is anything else."""
    expr = expr.strip()
    head, _, rest = expr.partition(".")
    if head in aliases and head != "mapdata":
        base = aliases[head]
        return None if base is None else base + ([k for k in rest.split(".") if k] if rest else [])
    match = MAPDATA_PATH.match(expr)
    if not match:
        return None
    return re.findall(r"\w+", match.group(1))


def _aliases(text):
    """``{% set v = mapdata.x ~ "/suffix" %}``: v -> (['x'], suffix is static)."""
    aliases = {}
    for name, expr in SET.findall(text):
        first = expr.split("~")[0].strip()
        rest = expr.split("~")[1:]
        static = all(re.fullmatch(r"\s*(['\"])[\w./+-]*\1\s*", part) for part in rest)
        keys = _mapdata_keys(first, aliases) if static else None
        aliases[name] = keys
    return aliases


def _schema_node(schema, keys):
    node = schema
    for key in keys:
        if not isinstance(node, dict):
            return None
        node = (node.get("keys") or {}).get(key)
    return node


def _check_cmd_ok(value, aliases, schema):
    """check_cmd: only the first word may come from mapdata, as an abspath-checked binary."""
    value = value.strip().strip("'\"")
    exprs = JINJA_EXPR.findall(value)
    words = JINJA_EXPR.sub("\x00", value).split()  # a Jinja expression is one word
    if not exprs:
        return True
    if not words or any("\x00" in word for word in words[1:]):
        return False  # pillar in an argument
    if not re.fullmatch(r"\x00[\w./+-]*", words[0]) or len(exprs) != 1:
        return False
    keys = _mapdata_keys(exprs[0], aliases)
    node = _schema_node(schema, keys) if keys else None
    return bool(node) and node.get("format") == "abspath"


def _block(lines, start, indent):
    """The lines after ``start`` indented deeper than ``indent``: (index, line) pairs."""
    out = []
    for index in range(start + 1, len(lines)):
        line = lines[index]
        if not line.strip() or line.lstrip().startswith(("#", "{%")):
            continue
        if len(line) - len(line.lstrip()) <= indent:
            break
        out.append((index, line))
    return out


def findings(text, schema=None):
    """[(line number, problem)] for one SLS file's source."""
    schema = schema or {}
    aliases = _aliases(text)
    lines = text.splitlines()
    found = []
    state_id, function, has_name = None, None, False

    def close_state():
        if function in SHELL_FUNS and not has_name and state_id and is_tainted(state_id[1]):
            found.append((state_id[0], f"{function} command (the state ID) from pillar"))

    for index, line in enumerate(lines):
        number = index + 1
        for call in JINJA_SHELL_CALL.finditer(line):
            args = call.group(3)
            if "python_shell=False" not in args.replace(" ", "") and tainted_names(
                STRING.sub("''", args)
            ):
                found.append((number, f"salt[{call.group(1) or call.group(2)}] with pillar"))
        if re.match(r"^\S", line) and not line.startswith(("{%", "{#", "#")):
            match = STATE_ID.match(line)
            if match:
                close_state()
                state_id, function, has_name = (number, match.group(1)), None, False
            continue
        match = FUNCTION.match(line)
        if match:
            close_state() if function else None
            function, has_name = match.group(2), False
            continue
        match = OPTION.match(line)
        if not match:
            continue
        indent, option, value = len(match.group(1)), match.group(2), match.group(3).strip()
        if option == "python_shell":
            continue
        if option in ("name", "names", "args"):
            has_name = has_name or option == "name"
            if function not in SHELL_FUNS:
                continue
        scalar = value in ("|", ">", "|-", ">-")
        block = _block(lines, index, indent) if not value or scalar else []
        if option in ("onlyif", "unless"):
            if value:
                if not value.startswith(("[{", "{")) and is_tainted(value):
                    found.append((number, f"{option} shell string from pillar"))
                continue
            items = [(i, ln) for i, ln in block if ln.lstrip().startswith("- ")]
            item_indent = min((len(ln) - len(ln.lstrip()) for _, ln in items), default=0)
            for i, ln in items:
                if len(ln) - len(ln.lstrip()) != item_indent:
                    continue
                item = ln.lstrip()[2:].strip()
                if re.match(r"^(\{|fun:|\w+:\s)", item):
                    continue  # module-function form
                if is_tainted(item):
                    found.append((i + 1, f"{option} shell string from pillar"))
            continue
        if option == "check_cmd":
            if value and not _check_cmd_ok(value, aliases, schema):
                found.append((number, "check_cmd from pillar (only an abspath binary may be)"))
            for i, ln in block:
                if is_tainted(ln):
                    found.append((i + 1, "check_cmd from pillar"))
            continue
        # name / names / args of cmd.run, cmd.wait, cmd.script
        if value.startswith("["):
            continue  # argv list
        if value and not scalar:
            if is_tainted(value):
                found.append((number, f"{function} {option} is a shell string from pillar"))
            continue
        for i, ln in block:
            stripped = ln.lstrip()
            if option == "names" and stripped.startswith("- ") and not stripped[2:].startswith("["):
                if is_tainted(stripped):
                    found.append((i + 1, f"{function} names item is a shell string from pillar"))
            elif scalar and is_tainted(ln):
                found.append((i + 1, f"{function} {option} is a shell string from pillar"))
    close_state()
    return found


def formula_findings(formula):
    schema_file = REPO / "formulas" / formula / "parameters" / "schema.yaml"
    schema = yaml.safe_load(schema_file.read_text()) if schema_file.is_file() else {}
    out = []
    for path in sorted((REPO / "formulas" / formula).rglob("*.sls")):
        for number, problem in findings(path.read_text(), schema):
            out.append(f"{path.relative_to(REPO)}:{number}: {problem}")
    return out


@pytest.mark.parametrize("formula", FORMULAS)
def test_no_shell_string_from_pillar(formula):
    problems = formula_findings(formula)
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------- the rule itself

SCHEMA = {
    "type": "dict",
    "keys": {
        "checker": {"type": "str", "format": "abspath"},
        "libexec_dir": {"type": "str", "format": "abspath"},
        "service": {"type": "str", "format": "identifier"},
        "conf": {"type": "str"},
    },
}

FLAGGED = {
    "onlyif-string": "x:\n  cmd.run:\n    - name: /bin/true\n    - onlyif: systemctl is-active {{ mapdata.service }}\n",  # noqa: E501
    "unless-list-of-strings": "x:\n  file.managed:\n    - unless:\n      - test -e {{ mapdata.conf }}\n",  # noqa: E501
    "cmd-run-name": "x:\n  cmd.run:\n    - name: rm -rf {{ mapdata.conf }}\n    - python_shell: False\n",  # noqa: E501
    "cmd-run-id": "rm -f {{ pillar['x'] }}:\n  cmd.run\n",
    "cmd-run-id-block": "systemctl restart {{ svc }}:\n  cmd.run:\n    - onchanges: []\n",
    "check-cmd-args": "x:\n  file.managed:\n    - check_cmd: /usr/bin/check -f {{ mapdata.conf }}\n",  # noqa: E501
    "check-cmd-not-abspath": "x:\n  file.managed:\n    - check_cmd: {{ mapdata.conf }}\n",
    "check-cmd-filtered": "x:\n  file.managed:\n    - check_cmd: {{ mapdata.checker | default('x') }}\n",  # noqa: E501
    "jinja-cmd-run": "{%- set out = salt['cmd.run']('lsblk ' ~ mapdata.conf) %}\n",
    "block-scalar": "x:\n  cmd.run:\n    - name: |\n        echo {{ mapdata.conf }}\n",
}
CLEAN = {
    "module-form": "x:\n  cmd.run:\n    - name: [/bin/true]\n    - onlyif:\n      - fun: service.status\n        args: [{{ mapdata.service }}]\n",  # noqa: E501
    "argv-list": "x:\n  cmd.run:\n    - name: [systemctl, restart, '{{ mapdata.service }}']\n    - python_shell: False\n",  # noqa: E501
    "check-cmd-abspath": "x:\n  file.managed:\n    - check_cmd: {{ mapdata.checker }}\n",
    "check-cmd-alias": '{%- set checker = mapdata.libexec_dir ~ "/condor-config-check" %}\nx:\n  file.managed:\n    - check_cmd: {{ checker }} --quiet\n',  # noqa: E501
    "static-check-cmd": "x:\n  file.managed:\n    - check_cmd: /bin/sh -n\n",
    "tpldir-only": "x:\n  cmd.run:\n    - name: /usr/bin/echo {{ tpldir }}\n",
    "not-a-shell-state": "x:\n  file.managed:\n    - name: {{ mapdata.conf }}\n",
    "jinja-python-shell-false": "{%- set v = salt['cmd.run'](['lsblk', mapdata.conf], python_shell=False) %}\n",  # noqa: E501
}


@pytest.mark.parametrize("name", sorted(FLAGGED))
def test_rule_flags(name):
    assert findings(FLAGGED[name], SCHEMA), FLAGGED[name]


@pytest.mark.parametrize("name", sorted(CLEAN))
def test_rule_passes(name):
    assert findings(CLEAN[name], SCHEMA) == [], CLEAN[name]
