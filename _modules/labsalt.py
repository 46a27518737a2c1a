"""
Formula parameters for labsalt: one merge and one schema check that every formula shares.

This is template-formula v5's ``map.jinja`` stack done in Python: a formula's
``parameters/defaults.yaml`` is deep-merged with per-grain override files,
then the pillar's ``<formula>:lookup`` and ``<formula>`` data, then a per-minion
file, and the result is checked against ``parameters/schema.yaml``.  A formula's
SLS files only do::

    {%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}

The same file is linked into ``_wrapper/`` so that under salt-ssh, where SLS
files are rendered on the master, the merge also runs on the master and reads
the formulas from the master's file_roots instead of making an SSH round trip.
"""

import copy
import ipaddress
import logging
import math
import os
import re

import salt.utils.yaml
from salt.exceptions import SaltInvocationError

log = logging.getLogger(__name__)

__virtualname__ = "labsalt"

# Per-grain override files, applied in this order after defaults.yaml
# (template-formula v5's default ``map_jinja:sources``).
GRAIN_LAYERS = ("osarch", "os_family", "os", "osfinger")


def __virtual__():
    return __virtualname__


# --------------------------------------------------------------------------- merging


def deep_merge(base, update):
    """
    Return ``base`` updated recursively with ``update``: dicts merge key by key,
    everything else (lists included) is replaced.  Neither argument is modified.

    CLI Example:

    .. code-block:: bash

        salt-call labsalt.deep_merge '{a: {b: 1}}' '{a: {c: 2}}'
    """
    if not isinstance(base, dict) or not isinstance(update, dict):
        return copy.deepcopy(update)
    merged = copy.deepcopy(base)
    for key, value in update.items():
        merged[key] = deep_merge(merged[key], value) if key in merged else copy.deepcopy(value)
    return merged


def _read_formula_file(formula, relpath, saltenv):
    """Text of ``<formula>/<relpath>`` from the file server, or None when absent."""
    # A local file_roots tree (salt-call --local, or the master side of salt-ssh)
    # is read directly; a minion of a real master asks the master.
    for root in __opts__.get("file_roots", {}).get(saltenv, []):
        path = os.path.join(root, formula, relpath)
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as handle:
                return handle.read()
    if __opts__.get("file_client", "remote") == "local":
        return None
    text = __salt__["cp.get_file_str"](f"salt://{formula}/{relpath}", saltenv=saltenv)
    return text if text is not False else None


def _load_yaml(formula, relpath, saltenv):
    text = _read_formula_file(formula, relpath, saltenv)
    if text is None:
        return None
    try:
        data = salt.utils.yaml.safe_load(text)
    except salt.utils.yaml.YAMLError as exc:
        raise SaltInvocationError(f"{formula}/{relpath}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SaltInvocationError(f"{formula}/{relpath}: must be a mapping, not {_kind(data)}")
    return data


def _formula_exists(formula, saltenv):
    return _read_formula_file(formula, "parameters/defaults.yaml", saltenv) is not None


def layers(formula, saltenv="base"):
    """
    List the parameter sources of ``formula`` in merge order, with what each adds.

    CLI Example:

    .. code-block:: bash

        salt-call labsalt.layers htcondor
    """
    return _layers(formula, saltenv, __pillar__, __opts__.get("id") or __grains__.get("id"))


def _layers(formula, saltenv, pillar_data, minion_id):
    if not _formula_exists(formula, saltenv):
        raise SaltInvocationError(
            f"unknown formula '{formula}': no {formula}/parameters/defaults.yaml in saltenv "
            f"'{saltenv}'"
        )
    sources = [("defaults.yaml", _load_yaml(formula, "parameters/defaults.yaml", saltenv))]
    for grain in GRAIN_LAYERS:
        value = __grains__.get(grain)
        if value:
            relpath = f"parameters/{grain}/{value}.yaml"
            sources.append((relpath[len("parameters/") :], _load_yaml(formula, relpath, saltenv)))
    pillar = pillar_data.get(formula, {})
    if not isinstance(pillar, dict):
        raise SaltInvocationError(f"{formula}: pillar must be a mapping, not {_kind(pillar)}")
    lookup = pillar.get("lookup", {})
    if not isinstance(lookup, dict):
        raise SaltInvocationError(f"{formula}:lookup: must be a mapping, not {_kind(lookup)}")
    sources.append((f"pillar {formula}:lookup", lookup))
    sources.append((f"pillar {formula}", {k: v for k, v in pillar.items() if k != "lookup"}))
    if minion_id:
        sources.append(
            (
                f"id/{minion_id}.yaml",
                _load_yaml(formula, f"parameters/id/{minion_id}.yaml", saltenv),
            )
        )
    return [{"source": name, "data": data} for name, data in sources if data is not None]


def _merged(formula, saltenv, pillar_data, minion_id):
    merged = {}
    for layer in _layers(formula, saltenv, pillar_data, minion_id):
        merged = deep_merge(merged, layer["data"])
    return merged


def _schema(formula, saltenv):
    schema = _load_yaml(formula, "parameters/schema.yaml", saltenv)
    if schema is None:
        raise SaltInvocationError(f"{formula}: parameters/schema.yaml is missing")
    return schema


def mapdata(formula, saltenv="base", validate=True):
    """
    Return the merged parameters of ``formula`` for this minion, checked against
    the formula's ``parameters/schema.yaml``.  A schema violation raises an error
    that names the key and the problem, so the SLS fails to render and no state
    runs.

    CLI Example:

    .. code-block:: bash

        salt-call labsalt.mapdata htcondor
    """
    merged = _merged(formula, saltenv, __pillar__, __opts__.get("id") or __grains__.get("id"))
    if validate:
        schema = _schema(formula, saltenv)
        errors = check_schema(merged, schema, formula)
        if errors:
            raise SaltInvocationError("; ".join(errors))
        _run_validator(formula, schema, merged)
    return merged


def _run_validator(formula, schema, merged):
    """
    Checks a schema cannot express (a file's magic, names that must agree) live in
    the formula's execution module; ``validator: <module>.<function>`` at the top
    of schema.yaml names it.  It gets the merged parameters and raises
    SaltInvocationError("<formula>:<key>: <problem>").  Under salt-ssh the master
    side may not have that module; the CLI's pre-check and the states' own calls
    still run it.
    """
    name = schema.get("validator")
    if not name:
        return
    try:
        function = __salt__[name]
    except KeyError:
        log.debug("validator %s of %s is not loaded here", name, formula)
        return
    function(merged)


# --------------------------------------------------------------------------- pre-check


def _one_line(text):
    """The first meaningful line of an error message (a traceback's last line)."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    if not lines:
        return "unknown error"
    return lines[-1] if lines[0].startswith("Traceback") else lines[0]


def _pillar_of(minion_id, saltenv):
    """The compiled pillar of ``minion_id`` (this minion's own, or compiled for that id)."""
    if minion_id == __opts__.get("id"):
        return dict(__pillar__)
    import salt.pillar  # noqa: PLC0415

    opts = dict(__opts__, id=minion_id)
    return salt.pillar.get_pillar(
        opts, __grains__, minion_id, saltenv=saltenv, pillarenv=__opts__.get("pillarenv")
    ).compile_pillar()


def _selected(minion_id, pillar_data, saltenv):
    """The formulas the top file gives ``minion_id`` (its highstate), or errors."""
    import salt.state  # noqa: PLC0415

    opts = dict(__opts__, id=minion_id, grains=__grains__, pillar=pillar_data)
    high = salt.state.HighState(opts, initial_pillar=pillar_data or {"_labsalt": True})
    try:
        top = high.get_top()
        errors = high.verify_tops(top)
        if errors:
            return [], [f"top file: {_one_line(e)}" for e in errors]
        matches = high.top_matches(top)
    finally:
        destroy = getattr(high, "destroy", None)
        if destroy:
            destroy()
    names = []
    for state in matches.get(saltenv, []):
        name = state.split(".")[0]
        if name not in names:
            names.append(name)
    return names, []


_ROLE = re.compile(r"I@labsalt:roles:([A-Za-z0-9_-]+)")
_SKIP = re.compile(r"I@labsalt:skip:([A-Za-z0-9_-]+)")


def roles_schema(saltenv="base"):
    """
    The schema of the ``labsalt:`` pillar (roles and skip), with the role and
    formula names the top file knows: a typo in a role would otherwise select
    nothing, silently.

    CLI Example:

    .. code-block:: bash

        salt-call labsalt.roles_schema
    """
    top = _read_formula_file("", "top.sls", saltenv) or ""
    roles = sorted(set(_ROLE.findall(top)))
    skippable = sorted(set(_SKIP.findall(top)))
    return {
        "type": "dict",
        "keys": {
            "roles": {"type": "list", "items": {"type": "str", "one_of": roles}},
            "skip": {"type": "list", "items": {"type": "str", "one_of": skippable}},
        },
    }


def check_formulas(states=None, ids=None, saltenv="base", show=False, show_secrets=False):
    """
    Check the pillar against the schemas (and validators) of the formulas a run
    would render, before Salt renders anything: the formulas named in ``states``
    (a comma-separated string or a list), or those the top file selects for each
    minion id (a highstate).  ``ids`` defaults to this minion; other ids get their
    pillar compiled here (the salt-ssh pre-check), with this machine's grains.

    Returns ``{"errors": [one line each], "formulas": {id: [formula, ...]}}``,
    plus ``"mapdata": {formula: parameters}`` when ``show`` is true, secret values
    masked unless ``show_secrets``.  The merge, schema and validator are the ones
    ``mapdata`` uses while the SLS files render.

    CLI Example:

    .. code-block:: bash

        salt-call labsalt.check_formulas
        salt-call labsalt.check_formulas htcondor,openmpi
    """
    if isinstance(states, str):
        states = [s for s in states.split(",") if s]
    if isinstance(ids, str):
        ids = [i for i in ids.split(",") if i]
    ids = ids or [__opts__.get("id")]
    errors, selected, shown = [], {}, {}

    def add(message, minion_id):
        line = _one_line(message)
        if len(ids) > 1:
            line = f"{minion_id}: {line}"
        if line not in errors:
            errors.append(line)

    for minion_id in ids:
        try:
            pillar_data = _pillar_of(minion_id, saltenv)
        except Exception as exc:  # noqa: BLE001 (reported as one line)
            add(f"pillar: {_one_line(exc)}", minion_id)
            continue
        pillar_errors = pillar_data.get("_errors")
        if pillar_errors:
            log_file = __opts__.get("log_file", "Salt's log")
            for error in pillar_errors if isinstance(pillar_errors, list) else [pillar_errors]:
                line = _one_line(error).replace(
                    "Please see master log for details.", f"(details in {log_file})"
                )
                add(f"pillar: {line}", minion_id)
            continue
        if states:
            names = []
            for state in states:
                name = str(state).split(".")[0]
                if name not in names:
                    names.append(name)
        else:
            if "labsalt" in pillar_data:
                problems = check_schema(pillar_data["labsalt"], roles_schema(saltenv), "labsalt")
                for problem in problems:
                    add(problem, minion_id)
                if problems:
                    continue
            try:
                names, top_errors = _selected(minion_id, pillar_data, saltenv)
            except Exception as exc:  # noqa: BLE001
                names, top_errors = [], [f"top file: {_one_line(exc)}"]
            for error in top_errors:
                add(error, minion_id)
        # an SLS tree without parameters/ (no mapdata, no schema) has nothing to check
        names = [name for name in names if _formula_exists(name, saltenv)]
        selected[minion_id] = names
        for formula in names:
            try:
                merged = _merged(formula, saltenv, pillar_data, minion_id)
                schema = _schema(formula, saltenv)
                problems = check_schema(merged, schema, formula)
                if not problems:
                    _run_validator(formula, schema, merged)
            except SaltInvocationError as exc:
                problems = [str(exc)]
            except Exception as exc:  # noqa: BLE001 (a validator's own failure, one line)
                problems = [f"{formula}: {type(exc).__name__}: {_one_line(exc)}"]
            for problem in problems:
                add(problem, minion_id)
            if show and not problems:
                shown[formula] = merged if show_secrets else masked(merged, schema)
    result = {"errors": errors, "formulas": selected}
    if show:
        result["mapdata"] = shown
    return result


def apply_checked(mods=None, test=None, **kwargs):
    """
    ``state.apply`` preceded by ``check_formulas`` in the same process: when the
    pillar breaks a schema (or a validator) of a formula this run would render,
    nothing is rendered, the return is a one-item list with the first problem
    (and how many more there are), and the exit code is 2.  What ``labsalt
    apply`` runs: one Salt start-up for the check and the run.

    CLI Example:

    .. code-block:: bash

        salt-call labsalt.apply_checked htcondor test=True
    """
    states = [s for s in mods.split(",") if s] if isinstance(mods, str) else list(mods or [])
    result = check_formulas(states=states or None)
    errors = result["errors"]
    if errors:
        __context__["retcode"] = 2
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        return [errors[0] + more]
    passed = {k: v for k, v in kwargs.items() if not k.startswith("__")}
    if test is not None:
        passed["test"] = test
    return __salt__["state.apply"](*([",".join(states)] if states else []), **passed)


# --------------------------------------------------------------------------- schema

_TYPES = {
    "str": (str,),
    "int": (int,),
    "number": (int, float),
    "bool": (bool,),
    "list": (list,),
    "dict": (dict,),
}

# Limits that hold unless a schema node sets its own ``max``: a pillar value is
# written by a person, so a megabyte string or a list of a million items is a
# mistake (or an attack), never a setting.
DEFAULT_MAX_STR = 4096
DEFAULT_MAX_ITEMS = 1000
INT_LIMIT = 2**63 - 1

_HOSTNAME = re.compile(
    r"(?=.{1,253}\.?$)(?!-)[A-Za-z0-9_-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9_-]{1,63}(?<!-))*\.?"
)
# Package, service, unit, user, group and interface names: what reaches an argv
# or a config line as one word.
_IDENTIFIER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+:@-]{0,254}")
_URL = re.compile(r"(https?|ftp|tftp)://[^\s/\"'`$;\\<>|{}]+(/[^\s\"'`$;\\<>|{}]*)?")
# C0 controls and DEL; a one-line value holds none of them.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_MULTILINE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _kind(value):
    if value is None:
        return "null"
    for name, types in _TYPES.items():
        if isinstance(value, types) and not (name != "bool" and isinstance(value, bool)):
            return name
    return type(value).__name__


def _show(value, secret=False):
    """A value as it appears in an error line: quoted, short, never a secret."""
    if secret:
        return "(secret value)"
    text = repr(value)
    return text if len(text) <= 60 else text[:50] + f"...' ({len(value)} characters)"


def _abspath(value):
    parts = value.split("/")
    if not value.startswith("/") or ".." in parts or "." in parts:
        raise ValueError
    return value


def _filename(value):
    if not value or "/" in value or value in (".", ".."):
        raise ValueError
    return value


def _iprange(value):
    """coturn's peer ranges: one address or ``first-last`` of the same family."""
    first, _, last = value.partition("-")
    low = ipaddress.ip_address(first)
    high = ipaddress.ip_address(last) if last else low
    if low.version != high.version or low > high:
        raise ValueError
    return value


_FORMATS = {
    "ipv4": (ipaddress.IPv4Address, "an IPv4 address"),
    "ipv6": (ipaddress.IPv6Address, "an IPv6 address"),
    "ip": (ipaddress.ip_address, "an IP address"),
    "cidr": (lambda v: ipaddress.ip_network(v, strict=False), "a network in CIDR notation"),
    "iprange": (_iprange, "an IP address or a range first-last"),
    "hostname": (lambda v: _HOSTNAME.fullmatch(v) or _fail(), "a host or domain name"),
    "abspath": (_abspath, "an absolute path without '.' or '..' components"),
    "device": (
        lambda v: (_abspath(v).startswith("/dev/") and v) or _fail(),
        "a device path under /dev/",
    ),
    "filename": (_filename, "a file name (no '/', not '.' or '..')"),
    "identifier": (
        lambda v: _IDENTIFIER.fullmatch(v) or _fail(),
        "a name of letters, digits and _.+:@- (package, service, user or unit name)",
    ),
    "sha256": (
        lambda v: re.fullmatch(r"[0-9a-fA-F]{64}", v) or _fail(),
        "a sha256 hex digest (64 hex digits)",
    ),
    "url": (lambda v: _URL.fullmatch(v) or _fail(), "a URL (http, https, ftp or tftp)"),
}


def _check_format(fmt, value):
    """Return None when ``value`` matches the named format, else what it should be."""
    if fmt not in _FORMATS:
        return f"an unknown format '{fmt}' in the schema"
    check, wanted = _FORMATS[fmt]
    try:
        check(value)
    except ValueError:
        return wanted
    return None


def _fail():
    raise ValueError


def check_schema(data, schema, path=""):
    """
    Check ``data`` against a labsalt schema and return a list of error lines,
    each naming the key path and the problem.  An empty list means valid.

    A schema node is a mapping with ``type`` (str, int, number, bool, list, dict,
    any) and optionally: ``one_of`` (allowed values), ``min``/``max`` (numbers, or
    lengths of str/list), ``pattern`` (regular expression the whole string must
    match), ``format`` (ipv4, ipv6, ip, cidr, iprange, hostname, abspath, device,
    filename, identifier, sha256, url), ``multiline`` (a str may hold newlines and
    tabs), ``secret`` (never shown in an error), ``nullable``; for dicts ``keys``
    (schema per known key, each may carry ``required: true``), ``values`` (schema
    for any other key; without it, unknown keys are errors) and ``ordered`` (pairs
    of keys whose values must not decrease: ``[[min_port, max_port]]``); for lists
    ``items``.  At the top of a formula's schema, ``validator`` names a module
    function for checks beyond these (see ``_run_validator``).

    Rules that hold for every node: a str holds no control character (no newline
    unless ``multiline``) and is at most 4096 characters, a list at most 1000
    items, unless ``max`` says otherwise; numbers are finite and ints fit in 64
    bits.

    CLI Example:

    .. code-block:: bash

        salt-call labsalt.check_schema '{policy: numaa}' \\
            '{type: dict, keys: {policy: {type: str, one_of: [numa, l3]}}}'
    """
    errors = []
    _check_node(data, schema, path, errors)
    return errors


def _check_node(value, schema, path, errors):  # noqa: PLR0912 (one branch per rule)
    where = path or "(top)"
    secret = schema.get("secret", False)
    if value is None:
        if not schema.get("nullable", False) and schema.get("type", "any") != "any":
            errors.append(f"{where}: must be {schema['type']}, not null")
        return
    expected = schema.get("type", "any")
    if expected != "any":
        types = _TYPES[expected]
        wrong_bool = isinstance(value, bool) and expected != "bool"
        if not isinstance(value, types) or wrong_bool:
            shown = "" if secret else " " + _show(value)
            errors.append(f"{where}: must be {expected}, not {_kind(value)}{shown}")
            return
    if isinstance(value, float) and not math.isfinite(value):
        errors.append(f"{where}: {value!r} is not a finite number")
        return
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > INT_LIMIT:
        errors.append(f"{where}: {_show(value)} is out of range")
        return
    if isinstance(value, str):
        control = _CONTROL_MULTILINE if schema.get("multiline") else _CONTROL
        if control.search(value):
            what = "newline or control character" if "\n" in value else "control character"
            errors.append(f"{where}: {_show(value, secret)} holds a {what}")
            return
        if "max" not in schema and len(value) > DEFAULT_MAX_STR:
            errors.append(f"{where}: length {len(value)} is above the maximum {DEFAULT_MAX_STR}")
            return
    if isinstance(value, list) and "max" not in schema and len(value) > DEFAULT_MAX_ITEMS:
        errors.append(f"{where}: {len(value)} items is above the maximum {DEFAULT_MAX_ITEMS}")
        return
    if "one_of" in schema and value not in schema["one_of"]:
        allowed = ", ".join(str(option) for option in schema["one_of"])
        errors.append(f"{where}: {_show(value, secret)} is not one of {allowed}")
        return
    measure = len(value) if isinstance(value, (str, list, dict)) else value
    what = "length" if isinstance(value, (str, list, dict)) else "value"
    if isinstance(measure, (int, float)) and not isinstance(measure, bool):
        if "min" in schema and measure < schema["min"]:
            errors.append(f"{where}: {what} {measure} is below the minimum {schema['min']}")
        if "max" in schema and measure > schema["max"]:
            errors.append(f"{where}: {what} {measure} is above the maximum {schema['max']}")
    if isinstance(value, str):
        if "pattern" in schema and not re.fullmatch(schema["pattern"], value):
            shown = _show(value, secret)
            errors.append(f"{where}: {shown} does not match {schema['pattern']}")
        if "format" in schema:
            wanted = _check_format(schema["format"], value)
            if wanted:
                errors.append(f"{where}: {_show(value, secret)} is not {wanted}")
    if isinstance(value, dict):
        _check_dict(value, schema, path, errors)
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            _check_node(item, schema["items"], _join(path, index), errors)


def _check_dict(value, schema, path, errors):
    known = schema.get("keys", {})
    for key, spec in known.items():
        if spec.get("required") and key not in value:
            errors.append(f"{_join(path, key)}: is required")
    before = len(errors)
    for key, item in value.items():
        if key in known:
            _check_node(item, known[key], _join(path, key), errors)
        elif "values" in schema:
            _check_node(item, schema["values"], _join(path, key), errors)
        elif schema.get("type") == "dict" and known:
            errors.append(f"{_join(path, key)}: unknown key (known: {', '.join(sorted(known))})")
    if len(errors) > before:
        return  # cross-field rules only between values that are valid themselves
    for low, high in schema.get("ordered", []):
        low_value, high_value = value.get(low), value.get(high)
        if low_value is not None and high_value is not None and low_value > high_value:
            errors.append(
                f"{_join(path, low)}: {low_value!r} is above {_join(path, high)} {high_value!r}"
            )


def masked(data, schema, mask="***"):
    """
    Return a copy of ``data`` with every value whose schema node says
    ``secret: true`` replaced by ``mask``: what ``labsalt mapdata`` prints.

    CLI Example:

    .. code-block:: bash

        salt-call labsalt.masked '{secret: s3cr3t}' '{type: dict, keys: {secret: {secret: true}}}'
    """
    if not isinstance(schema, dict):
        return copy.deepcopy(data)
    if schema.get("secret") and data is not None:
        return mask
    if isinstance(data, dict):
        known = schema.get("keys", {})
        return {
            key: masked(item, known.get(key, schema.get("values", {})), mask)
            for key, item in data.items()
        }
    if isinstance(data, list):
        return [masked(item, schema.get("items", {}), mask) for item in data]
    return copy.deepcopy(data)


def _join(path, key):
    return f"{path}:{key}" if path else str(key)
