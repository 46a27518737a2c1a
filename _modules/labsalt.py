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
    pillar = __pillar__.get(formula, {})
    if not isinstance(pillar, dict):
        raise SaltInvocationError(f"{formula}: pillar must be a mapping, not {_kind(pillar)}")
    lookup = pillar.get("lookup", {})
    if not isinstance(lookup, dict):
        raise SaltInvocationError(f"{formula}:lookup: must be a mapping, not {_kind(lookup)}")
    sources.append((f"pillar {formula}:lookup", lookup))
    sources.append((f"pillar {formula}", {k: v for k, v in pillar.items() if k != "lookup"}))
    minion_id = __opts__.get("id") or __grains__.get("id")
    if minion_id:
        sources.append(
            (
                f"id/{minion_id}.yaml",
                _load_yaml(formula, f"parameters/id/{minion_id}.yaml", saltenv),
            )
        )
    return [{"source": name, "data": data} for name, data in sources if data is not None]


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
    merged = {}
    for layer in layers(formula, saltenv):
        merged = deep_merge(merged, layer["data"])
    if validate:
        schema = _load_yaml(formula, "parameters/schema.yaml", saltenv)
        if schema is None:
            raise SaltInvocationError(f"{formula}: parameters/schema.yaml is missing")
        errors = check_schema(merged, schema, formula)
        if errors:
            raise SaltInvocationError("; ".join(errors))
    return merged


# --------------------------------------------------------------------------- schema

_TYPES = {
    "str": (str,),
    "int": (int,),
    "number": (int, float),
    "bool": (bool,),
    "list": (list,),
    "dict": (dict,),
}

_HOSTNAME = re.compile(
    r"(?=.{1,253}\.?$)(?!-)[A-Za-z0-9_-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9_-]{1,63}(?<!-))*\.?"
)


def _kind(value):
    if value is None:
        return "null"
    for name, types in _TYPES.items():
        if isinstance(value, types) and not (name != "bool" and isinstance(value, bool)):
            return name
    return type(value).__name__


def _check_format(fmt, value):
    """Return None when ``value`` matches the named format, else what it should be."""
    checks = {
        "ipv4": ipaddress.IPv4Address,
        "ipv6": ipaddress.IPv6Address,
        "ip": ipaddress.ip_address,
        "cidr": lambda v: ipaddress.ip_network(v, strict=False),
        "hostname": lambda v: _HOSTNAME.fullmatch(v) or _fail(),
        "abspath": lambda v: v.startswith("/") or _fail(),
        "sha256": lambda v: re.fullmatch(r"[0-9a-fA-F]{64}", v) or _fail(),
        "url": lambda v: re.fullmatch(r"(https?|ftp|tftp)://[^\s/]+(/\S*)?", v) or _fail(),
    }
    if fmt not in checks:
        return f"an unknown format '{fmt}' in the schema"
    try:
        checks[fmt](value)
    except ValueError:
        return {
            "ipv4": "an IPv4 address",
            "ipv6": "an IPv6 address",
            "ip": "an IP address",
            "cidr": "a network in CIDR notation",
            "hostname": "a host or domain name",
            "abspath": "an absolute path",
            "sha256": "a sha256 hex digest (64 hex digits)",
            "url": "a URL",
        }[fmt]
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
    match), ``format`` (ipv4, ipv6, ip, cidr, hostname, abspath, sha256, url),
    ``nullable``; for dicts ``keys`` (schema per known key, each may carry
    ``required: true``) and ``values`` (schema for any other key; without it,
    unknown keys are errors); for lists ``items``.

    CLI Example:

    .. code-block:: bash

        salt-call labsalt.check_schema '{policy: numaa}' \\
            '{type: dict, keys: {policy: {type: str, one_of: [numa, l3]}}}'
    """
    errors = []
    _check_node(data, schema, path, errors)
    return errors


def _check_node(value, schema, path, errors):
    where = path or "(top)"
    if value is None:
        if not schema.get("nullable", False) and schema.get("type", "any") != "any":
            errors.append(f"{where}: must be {schema['type']}, not null")
        return
    expected = schema.get("type", "any")
    if expected != "any":
        types = _TYPES[expected]
        wrong_bool = isinstance(value, bool) and expected != "bool"
        if not isinstance(value, types) or wrong_bool:
            errors.append(f"{where}: must be {expected}, not {_kind(value)} {value!r}")
            return
    if "one_of" in schema and value not in schema["one_of"]:
        allowed = ", ".join(str(option) for option in schema["one_of"])
        errors.append(f"{where}: {value!r} is not one of {allowed}")
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
            errors.append(f"{where}: {value!r} does not match {schema['pattern']}")
        if "format" in schema:
            wanted = _check_format(schema["format"], value)
            if wanted:
                errors.append(f"{where}: {value!r} is not {wanted}")
    if isinstance(value, dict):
        known = schema.get("keys", {})
        for key, spec in known.items():
            if spec.get("required") and key not in value:
                errors.append(f"{_join(path, key)}: is required")
        for key, item in value.items():
            if key in known:
                _check_node(item, known[key], _join(path, key), errors)
            elif "values" in schema:
                _check_node(item, schema["values"], _join(path, key), errors)
            elif expected == "dict" and known:
                errors.append(
                    f"{_join(path, key)}: unknown key (known: {', '.join(sorted(known))})"
                )
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            _check_node(item, schema["items"], _join(path, index), errors)


def _join(path, key):
    return f"{path}:{key}" if path else str(key)
