"""
BIND in front of an Active Directory domain: the zone data and named.conf files
that delegate the AD-specific subtrees to the domain controllers.

The lab notebook's recipe ("Using a BIND DNS server in an Active Directory
Environment"): ISC BIND stays the site's DNS server and is authoritative for the
AD domain's zone; only the subtrees the DCs maintain themselves (``_msdcs``,
``_sites``, ``DomainDnsZones``, ``ForestDnsZones``) are delegated to them, the
SRV names Unix clients look up in the domain itself are CNAMEs into
``dc._msdcs``, and ``_kpasswd`` SRV records are kept per DC because no
``_msdcs`` twin exists for them.  What a DC registers comes from Samba's
``dns_update_list`` (the same names a Windows DC's netlogon.dns lists).

:func:`render` turns the formula's parameters into ``{path: text}``: the
formula's own files (its zone statement in ``named.conf.labsalt-ad``, the
options AD needs in ``named.conf.labsalt-ad-options``, the zone file, whose
serial changes only when its content does) and the site's named.conf.options
and named.conf.local with one marked include line each; the site's zones and
options stay as they are, and an option the site sets differently stops the
run with one line naming it.  :func:`check_config` validates such a set with
``named-checkconf -z`` in a temporary copy of the configuration (named's files
only, bounded) before any live file is replaced.
"""

import datetime
import hashlib
import ipaddress
import json
import os
import re
import shutil
import subprocess
import tempfile

import salt.utils.path
from salt.exceptions import CommandExecutionError, SaltInvocationError

__virtualname__ = "bind_ad"

# Subtrees below the AD domain that only the DCs serve (forest-wide ones only in
# the forest root domain).
DOMAIN_SUBTREES = ("_msdcs", "_sites", "DomainDnsZones")
FOREST_SUBTREES = ("ForestDnsZones",)
# SRV names a DC registers in the domain itself, and where the same SRV records
# live below _msdcs.  _kerberos._udp has no _msdcs twin; the _tcp one has the
# same targets and port.  _gc._tcp lives only at the forest root.
SRV_CNAMES = {
    "_ldap._tcp": "_ldap._tcp.dc._msdcs",
    "_kerberos._tcp": "_kerberos._tcp.dc._msdcs",
    "_kerberos._udp": "_kerberos._tcp.dc._msdcs",
}
FOREST_SRV_CNAMES = {"_gc._tcp": "_ldap._tcp.gc._msdcs"}
KPASSWD_PORT = 464
RECORD_TYPES = ("A", "AAAA", "CNAME", "MX", "TXT", "SRV", "PTR", "CAA", "NS")
# RFC 2181 section 8: a TTL is an unsigned 31-bit number.
MAX_TTL = 2**31 - 1
_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")
_SERIAL = re.compile(r"^(\s*)(\d+)(\s*; serial)$", re.MULTILINE)
MANAGED = "; Managed by Salt (labsalt bind_ad): edit the pillar, not this file.\n"


def __virtual__():
    # Rendering needs nothing but Python; the checkers are looked up when used, so
    # the files can be planned (and test=True predicted) before bind9 is installed.
    return __virtualname__


# --------------------------------------------------------------------------- input


def _fqdn(name, where):
    """Lower-case ``name`` without a trailing dot, or raise naming ``where``."""
    if not isinstance(name, str) or not name.strip(". "):
        raise SaltInvocationError(f"{where}: {name!r} is not a DNS name")
    name = name.strip().rstrip(".").lower()
    if len(name) > 253 or not all(_LABEL.fullmatch(label) for label in name.split(".")):
        raise SaltInvocationError(
            f"{where}: {name!r} is not a DNS name (labels of letters, digits, '-' and '_', "
            "at most 63 characters each, separated by dots)"
        )
    return name


def _inside(name, domain):
    return name == domain or name.endswith("." + domain)


def _relative(name, zone):
    """Owner name relative to ``zone`` ('@' for the apex)."""
    return "@" if name == zone else name[: -len(zone) - 1]


def _address(value, version, where):
    if value in (None, ""):
        return None
    try:
        addr = ipaddress.ip_address(str(value))
    except ValueError:
        raise SaltInvocationError(f"{where}: {value!r} is not an IPv{version} address") from None
    if addr.version != version:
        raise SaltInvocationError(f"{where}: {value!r} is not an IPv{version} address")
    return str(addr)


def _hosts(entries, key, domain, must_be_inside):
    """Normalise a list of {name, ipv4, ipv6} entries; names without a dot join ``domain``."""
    hosts, seen_names, seen_addrs = [], {}, {}
    if not isinstance(entries, list):
        raise SaltInvocationError(f"bind_ad:{key}: must be a list of {{name, ipv4, ipv6}}")
    for index, entry in enumerate(entries):
        where = f"bind_ad:{key}:{index}"
        if not isinstance(entry, dict) or "name" not in entry:
            raise SaltInvocationError(f"{where}: must be a mapping with at least 'name'")
        name = str(entry["name"])
        name = _fqdn(name if "." in name else f"{name}.{domain}", f"{where}:name")
        where = f"{where} ({name})"
        if must_be_inside and not _inside(name, domain):
            raise SaltInvocationError(
                f"{where}: a DC's name must lie inside {domain}, so that BIND can serve its "
                "address as glue for the delegations to it"
            )
        if name in seen_names:
            raise SaltInvocationError(f"{where}: listed twice (also {key}:{seen_names[name]})")
        seen_names[name] = index
        ipv4 = _address(entry.get("ipv4"), 4, f"{where}:ipv4")
        ipv6 = _address(entry.get("ipv6"), 6, f"{where}:ipv6")
        if not ipv4 and not ipv6 and (must_be_inside or _inside(name, domain)):
            raise SaltInvocationError(f"{where}: has no address; give ipv4 and/or ipv6")
        for addr in filter(None, (ipv4, ipv6)):
            if addr in seen_addrs:
                raise SaltInvocationError(
                    f"{where}: address {addr} is also that of {seen_addrs[addr]}"
                )
            seen_addrs[addr] = name
        hosts.append({"name": name, "ipv4": ipv4, "ipv6": ipv6})
    return hosts


def plan(params):
    """
    Check the formula's parameters beyond the schema and return them normalised:
    ``domain``, ``dcs`` and ``nameservers`` as fully qualified lower-case names with
    their addresses, and ``records``, the zone's records as
    ``(owner, ttl, type, data)`` with owners relative to the domain.  Raises
    SaltInvocationError naming the first problem.

    CLI Example:

    .. code-block:: bash

        salt-call bind_ad.plan "$(salt-call --out json labsalt.mapdata bind_ad)"
    """
    domain = params.get("domain")
    if not domain:
        raise SaltInvocationError("bind_ad:domain: is required (the AD domain's DNS name)")
    domain = _fqdn(domain, "bind_ad:domain")
    if "." not in domain:
        raise SaltInvocationError(
            f"bind_ad:domain: {domain!r} is not a DNS domain name: an AD realm needs at least "
            "two labels (e.g. ad.example.org)"
        )
    dcs = _hosts(params.get("dcs") or [], "dcs", domain, must_be_inside=True)
    if not dcs:
        raise SaltInvocationError("bind_ad:dcs: list at least one domain controller")
    mode = params.get("mode", "authoritative")
    result = {"domain": domain, "dcs": dcs, "mode": mode, "nameservers": [], "records": []}
    if mode == "forward":
        return result
    nameservers = _hosts(params.get("nameservers") or [], "nameservers", domain, False)
    if not nameservers:
        raise SaltInvocationError(
            "bind_ad:nameservers: list at least this BIND server (name and address) for the "
            "zone's SOA and NS records"
        )
    clash = {n["name"] for n in nameservers} & {d["name"] for d in dcs}
    if clash:
        raise SaltInvocationError(
            f"bind_ad:nameservers: {', '.join(sorted(clash))} is listed as a DC too"
        )
    result["nameservers"] = nameservers
    result["records"] = _records(params, domain, dcs, nameservers)
    return result


def _records(params, domain, dcs, nameservers):
    ttl = params.get("ttl", {})
    t_deleg, t_cname = ttl.get("delegation", 3600), ttl.get("cname", 3600)
    t_srv, t_host = ttl.get("srv", 3600), ttl.get("host", 3600)
    forest_root = params.get("forest_root", True)
    records = []

    def add(owner, ttl_, rtype, data):
        records.append((owner, ttl_, rtype, data))

    # Apex: this BIND server and the DCs as name servers (a DC registers itself as
    # NS of its domain), and the domain name resolving to the DCs as on Windows.
    for host in nameservers + dcs:
        add("@", t_deleg, "NS", host["name"] + ".")
    for dc in dcs:
        for rtype, addr in (("A", dc["ipv4"]), ("AAAA", dc["ipv6"])):
            if addr:
                add("@", t_host, rtype, addr)
    # Addresses of the name servers and DCs inside the zone (glue for the delegations).
    for host in nameservers + dcs:
        if _inside(host["name"], domain) and host["name"] != domain:
            for rtype, addr in (("A", host["ipv4"]), ("AAAA", host["ipv6"])):
                if addr:
                    add(_relative(host["name"], domain), t_host, rtype, addr)
    subtrees = DOMAIN_SUBTREES + (FOREST_SUBTREES if forest_root else ())
    srv_style = params.get("srv_names", "cname")
    if srv_style == "delegate":
        subtrees += ("_tcp", "_udp")
    for subtree in subtrees:
        for dc in dcs:
            add(subtree, t_deleg, "NS", dc["name"] + ".")
    if srv_style == "cname":
        cnames = dict(SRV_CNAMES, **(FOREST_SRV_CNAMES if forest_root else {}))
        for owner, target in cnames.items():
            add(owner, t_cname, "CNAME", f"{target}.{domain}.")
        for proto in ("_tcp", "_udp"):
            for dc in dcs:
                add(f"_kpasswd.{proto}", t_srv, "SRV", f"0 100 {KPASSWD_PORT} {dc['name']}.")
    records.extend(_extra_records(params.get("records") or [], domain, subtrees, records, ttl))
    return records


def _extra_records(entries, domain, subtrees, generated, ttl):
    """The pillar's own records (names answered by BIND itself), checked for clashes."""
    taken = {owner.lower() for owner, *_ in generated if owner != "@"}
    lowered = [s.lower() for s in subtrees]
    extra = []
    for index, entry in enumerate(entries):
        where = f"bind_ad:records:{index}"
        if not isinstance(entry, dict) or not {"name", "type", "data"} <= set(entry):
            raise SaltInvocationError(f"{where}: must be a mapping with name, type and data")
        rtype = str(entry["type"]).upper()
        if rtype not in RECORD_TYPES:
            raise SaltInvocationError(
                f"{where}: type {entry['type']!r} is not one of {', '.join(RECORD_TYPES)}"
            )
        name = str(entry["name"])
        if name == "@":
            owner = "@"
        else:
            fqdn = _fqdn(name if name.endswith(".") else f"{name}.{domain}", f"{where}:name")
            if not _inside(fqdn, domain):
                raise SaltInvocationError(f"{where}: {name!r} is outside the zone {domain}")
            owner = _relative(fqdn, domain)
        # DNS names compare case-insensitively: x.DomainDnsZones is inside DomainDnsZones.
        below = [
            subtrees[i] for i, s in enumerate(lowered) if owner == s or owner.endswith("." + s)
        ]
        if below:
            raise SaltInvocationError(
                f"{where}: {owner} lies in {below[0]}, which is delegated to the DCs"
            )
        if owner in taken:
            raise SaltInvocationError(f"{where}: {owner} is generated from the DC list already")
        data = _record_data(entry["data"], rtype, f"{where}:data")
        record_ttl = entry.get("ttl", ttl.get("host", 3600))
        if (
            isinstance(record_ttl, bool)
            or not isinstance(record_ttl, int)
            or not (0 <= record_ttl <= MAX_TTL)
        ):
            raise SaltInvocationError(f"{where}:ttl: {record_ttl!r} is not a TTL (0..{MAX_TTL})")
        extra.append((owner, record_ttl, rtype, data))
    return extra


_TXT_QUOTED = re.compile(r'(?:"(?:[^"\\\x00-\x1f]|\\.)*"\s*)+')
_MX = re.compile(r"(\d{1,5})\s+(\S+)")
_SRV = re.compile(r"(\d{1,5})\s+(\d{1,5})\s+(\d{1,5})\s+(\S+)")
_CAA = re.compile(r'(\d{1,3})\s+([A-Za-z0-9]{1,15})\s+"[^"\\\x00-\x1f]*"')


def _target(value, where):
    """A domain name as record data: absolute ('x.'), relative ('x') or '@'."""
    if value == "@":
        return value
    _fqdn(value, where)
    return value


def _record_data(value, rtype, where):
    """
    The data of a record as it goes into the zone file, checked for its type: no
    value can start a new line, a comment, a parenthesised continuation or a
    directive in the zone file.  TXT data is quoted (backslash and double quote
    escaped) unless it is already a list of quoted strings.
    """
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise SaltInvocationError(f"{where}: must be a string, not {type(value).__name__}")
    data = str(value).strip()
    if re.search(r"[\x00-\x1f\x7f]", data):
        raise SaltInvocationError(f"{where}: holds a newline or control character")
    if len(data) > 2048:
        raise SaltInvocationError(f"{where}: is longer than 2048 characters")
    if rtype == "TXT":
        if _TXT_QUOTED.fullmatch(data):
            return data
        return '"' + data.replace("\\", "\\\\").replace('"', '\\"') + '"'
    bad = f"{where}: {data!r} is not valid {rtype} data"
    if rtype in ("A", "AAAA"):
        try:
            addr = ipaddress.ip_address(data)
        except ValueError:
            raise SaltInvocationError(bad) from None
        if addr.version != (4 if rtype == "A" else 6):
            raise SaltInvocationError(bad)
        return str(addr)
    if rtype in ("CNAME", "NS", "PTR"):
        try:
            return _target(data, where)
        except SaltInvocationError:
            raise SaltInvocationError(bad) from None
    match = {"MX": _MX, "SRV": _SRV, "CAA": _CAA}[rtype].fullmatch(data)
    if not match:
        raise SaltInvocationError(bad)
    if rtype in ("MX", "SRV"):
        numbers = [int(g) for g in match.groups()[:-1]]
        if any(n > 65535 for n in numbers):
            raise SaltInvocationError(bad)
        try:
            _target(match.groups()[-1], where)
        except SaltInvocationError:
            raise SaltInvocationError(bad) from None
        return " ".join(match.groups())
    return data


def _open_ranges(items):
    """The elements of an address match list that let every address in."""
    v4, v6, open_ = [], [], []
    for item in items:
        text = str(item).strip()
        if text.startswith("!"):
            continue
        if text.lower() == "any":
            open_.append(text)
            continue
        try:
            net = ipaddress.ip_network(text, strict=False)
        except ValueError:
            continue
        (v4 if net.version == 4 else v6).append((text, net))
        if net.prefixlen == 0:
            open_.append(text)
    if not open_:
        for nets in (v4, v6):
            if nets and list(ipaddress.collapse_addresses(n for _, n in nets))[0].prefixlen == 0:
                open_.append(", ".join(t for t, _ in nets))
    return open_


def validate(params):
    """
    The checks of bind_ad's parameters beyond the schema (named by
    ``validator`` in parameters/schema.yaml): everything :func:`plan` checks,
    no open resolver, directories that are not '/', an rndc program that is a
    name or an absolute path.  Read-only; raises SaltInvocationError with one
    line naming the key.

    CLI Example:

    .. code-block:: bash

        salt-call bind_ad.validate "$(salt-call --out json labsalt.mapdata bind_ad)"
    """
    for key in ("config_dir", "zone_dir", "cache_dir", "state_dir"):
        value = params.get(key)
        if value is not None and (not isinstance(value, str) or value.rstrip("/") == ""):
            raise SaltInvocationError(
                f"bind_ad:{key}: {value!r} is not a directory of BIND's (not '/')"
            )
    for key in ("clients",):
        open_ = _open_ranges(params.get(key) or [])
        if open_:
            raise SaltInvocationError(
                f"bind_ad:{key}: {open_[0]} lets every address recurse (an open resolver); "
                "list the site's networks instead"
            )
    rndc = params.get("rndc") or ["rndc"]
    program = str(rndc[0])
    if not (re.fullmatch(r"[A-Za-z0-9_.+-]+", program) or program.startswith("/")):
        raise SaltInvocationError(
            f"bind_ad:rndc:0: {program!r} is not a program name or an absolute path"
        )
    notify_value(params.get("notify", "explicit"))
    plan(params)
    return True


# --------------------------------------------------------------------------- rendering

# The formula's own files next to named.conf, and the marker on the one line it
# adds to each of the site's named.conf.options and named.conf.local.
ZONES_FILE = "named.conf.labsalt-ad"
OPTIONS_FILE = "named.conf.labsalt-ad-options"
# A block comment, so that the line also works inside a one-line options block.
MARKER = "/* labsalt bind_ad */"
_MARKED = re.compile(r'\n?[ \t]*include[ \t]+"[^"\n]*";[ \t]*' + re.escape(MARKER))


def zone_path(params, domain=None):
    """
    Path of the zone file for the AD domain.

    CLI Example:

    .. code-block:: bash

        salt-call bind_ad.zone_path '{zone_dir: /etc/bind/zones, domain: ad.example.org}'
    """
    domain = domain or _fqdn(params["domain"], "bind_ad:domain")
    return os.path.join(params.get("zone_dir", "/etc/bind/zones"), f"db.{domain}")


def next_serial(old, today=None):
    """
    The serial after ``old``: ``YYYYMMDDnn`` of today, or ``old + 1`` when that is
    not larger (several changes a day, or an older scheme with bigger numbers).

    CLI Example:

    .. code-block:: bash

        salt-call bind_ad.next_serial 2024010103
    """
    today = today or datetime.date.today()
    dated = int(today.strftime("%Y%m%d")) * 100
    return max(dated, (int(old) + 1) if old is not None else 0) % 2**32


def zone_serial(text):
    """The SOA serial written in a zone file's text (as this module writes it), or None."""
    match = _SERIAL.search(text or "")
    return int(match.group(2)) if match else None


def zone_text(plan_, params, old_text=None, today=None):
    """
    The zone file for ``plan_`` (see :func:`plan`).  The serial is that of
    ``old_text`` when nothing else differs, else the next one, so re-applying the
    same pillar leaves the file and the serial alone.

    CLI Example:

    .. code-block:: bash

        salt-call bind_ad.zone_text "$(salt-call --out json bind_ad.plan ...)" '{}'
    """
    domain = plan_["domain"]
    soa = params.get("soa", {})
    mname = plan_["nameservers"][0]["name"]
    rname = params.get("hostmaster") or f"hostmaster.{domain}"
    rname = _fqdn(str(rname).replace("@", "."), "bind_ad:hostmaster")
    numbers = {key: soa.get(key, default) for key, default in SOA_DEFAULTS.items()}
    for key, value in numbers.items():
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TTL:
            raise SaltInvocationError(f"bind_ad:soa:{key}: {value!r} is not in 0..{MAX_TTL}")

    def render(serial):
        width = max(len(owner) for owner, *_ in plan_["records"])
        lines = [
            MANAGED,
            f"$ORIGIN {domain}.\n",
            f"$TTL {numbers['minimum']}\n",
            f"@ IN SOA {mname}. {rname}. (\n",
            f"        {serial} ; serial\n",
            f"        {numbers['refresh']} ; refresh\n",
            f"        {numbers['retry']} ; retry\n",
            f"        {numbers['expire']} ; expire\n",
            f"        {numbers['minimum']} ; negative-cache TTL\n",
            "        )\n",
        ]
        for owner, ttl, rtype, data in plan_["records"]:
            # Second defence behind plan(): one record is one line, whatever the data.
            if re.search(r"[\x00-\x1f\x7f]", f"{owner}{ttl}{rtype}{data}"):
                raise SaltInvocationError(f"bind_ad:records: {owner} holds a control character")
            lines.append(f"{owner:<{width}} {int(ttl):>6} IN {rtype:<5} {data}\n")
        return "".join(lines)

    old_serial = zone_serial(old_text)
    if old_serial is not None and render(old_serial) == old_text:
        return old_text
    return render(next_serial(old_serial, today))


SOA_DEFAULTS = {"refresh": 3600, "retry": 900, "expire": 1209600, "minimum": 3600}
# One element of an address match list: an address, a network, a negation, an
# ACL name or a built-in (any, none, localhost, localnets).
_ACL_ITEM = re.compile(r"!?\s*[A-Za-z0-9_.:/-]{1,128}")


def _acl(items, key):
    """An address match list's body; each element checked again as a second defence."""
    out = []
    for item in items or []:
        text = str(item).strip()
        if not _ACL_ITEM.fullmatch(text):
            raise SaltInvocationError(f"bind_ad:{key}: {text!r} is not an address match element")
        out.append(f"{text};")
    return " ".join(out) if out else "none;"


def _qstr(value, key):
    """A named.conf quoted string: refuse what cannot be quoted, escape the rest."""
    text = str(value)
    if re.search(r"[\x00-\x1f\x7f]", text):
        raise SaltInvocationError(f"bind_ad:{key}: holds a newline or control character")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def wanted_options(params, plan_):
    """
    The options BIND needs for the AD domain, as ``[(option, value, pillar key)]``
    in named.conf syntax: ``validate-except`` for the domain always, the others
    only when the pillar sets them (otherwise the site's settings, or BIND's
    defaults, stay in force).

    CLI Example:

    .. code-block:: bash

        salt-call bind_ad.wanted_options "$(salt-call --out json labsalt.mapdata bind_ad)" ...
    """
    domain = plan_["domain"]
    # The AD subtrees are unsigned and delegated without DS: validating them would fail.
    wanted = [("validate-except", f"{{ {_qstr(domain, 'domain')}; }}", "domain")]
    if params.get("cache_dir"):
        wanted.append(("directory", _qstr(params["cache_dir"], "cache_dir"), "cache_dir"))
    for key, option in (("listen_on", "listen-on"), ("listen_on_v6", "listen-on-v6")):
        if params.get(key) is not None:
            wanted.append((option, f"{{ {_acl(params[key], key)} }}", key))
    if params.get("clients") is not None:
        # Recursion and cached answers only for the site's clients: no open resolver.
        if _open_ranges(params["clients"]):
            raise SaltInvocationError("bind_ad:clients: would make BIND an open resolver")
        body = f"{{ {_acl(params['clients'], 'clients')} }}"
        wanted += [("allow-recursion", body, "clients"), ("allow-query-cache", body, "clients")]
    if params.get("forwarders"):
        wanted.append(("forwarders", f"{{ {_acl(params['forwarders'], 'forwarders')} }}",
                       "forwarders"))  # fmt: skip
        forward = params.get("forward") or "first"
        if forward not in ("first", "only"):
            raise SaltInvocationError(f"bind_ad:forward: {forward!r} is not first or only")
        wanted.append(("forward", forward, "forward"))
    validation = params.get("dnssec_validation")
    if validation is not None:
        validation = {True: "yes", False: "no"}.get(validation, validation)
        if validation not in ("auto", "yes", "no"):
            raise SaltInvocationError(f"bind_ad:dnssec_validation: {validation!r} is not valid")
        wanted.append(("dnssec-validation", validation, "dnssec_validation"))
    if params.get("max_cache_ttl") is not None:
        wanted.append(("max-cache-ttl", str(int(params["max_cache_ttl"])), "max_cache_ttl"))
    return wanted


# --------------------------------------------------------------------------- named.conf parsing

_TOKEN = re.compile(
    r'(?P<ws>\s+)|(?P<comment>//[^\n]*|#[^\n]*|/\*.*?\*/)|(?P<str>"(?:[^"\\]|\\.)*")'
    r"|(?P<punct>[{};])|(?P<word>(?:[^\s{};\"#/]|/(?![/*]))+)",
    re.S,
)


def _tokens(text):
    """named.conf tokens as (text, start, end), comments and whitespace dropped."""
    pos, out = 0, []
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:  # an unterminated string or comment: the rest is one token
            out.append((text[pos:], pos, len(text)))
            break
        if match.lastgroup not in ("ws", "comment"):
            out.append((match.group(), match.start(), match.end()))
        pos = match.end()
    return out


def _statements(tokens, start):
    """Statements of the block whose body starts at ``tokens[start]``, as word lists."""
    statements, words, depth, index = [], [], 0, start
    while index < len(tokens):
        tok = tokens[index][0]
        if tok == "}" and depth == 0:
            return statements, index
        words.append(tok)
        if tok == "{":
            depth += 1
        elif tok == "}":
            depth -= 1
        elif tok == ";" and depth == 0:
            statements.append(words[:-1])
            words = []
        index += 1
    return statements, index


def _options_block(text):
    """(index just after the '{' of the options block, its statements) or (None, [])."""
    tokens = _tokens(text)
    depth = 0
    for index, (tok, _start, _end) in enumerate(tokens):
        following = tokens[index + 1][0] if index + 1 < len(tokens) else None
        if depth == 0 and tok == "options" and following == "{":
            statements, _ = _statements(tokens, index + 2)
            return tokens[index + 1][2], statements
        if tok == "{":
            depth += 1
        elif tok == "}":
            depth -= 1
    return None, []


def _normal(words):
    return " ".join(words).replace("{ ", "{").replace(" }", "}").replace(" ;", ";").lower()


def _without_marked(text):
    """``text`` without the line this formula added (a marked include): what it was before."""
    if not text:
        return text
    match = _MARKED.search(text)
    if not match:
        return text
    end = match.end()
    if match.start() == 0 and not match.group().startswith("\n") and text[end : end + 1] == "\n":
        end += 1  # the line was the whole file: take its newline too
    return text[: match.start()] + text[end:]


def _marked_line(path):
    return f"include {_qstr(path, 'config_dir')}; {MARKER}"


def options_edit(text, fragment, wanted, options_path="named.conf.options"):
    """
    The site's named.conf.options ``text`` with one marked line including
    ``fragment`` as the first statement of its options block, and the options of
    ``wanted`` (see :func:`wanted_options`) that belong in the fragment: an
    option the site already sets to the same value is left to the site, one it
    sets differently stops the run with one line naming the option.  Returns
    ``(new text, [(option, value)])``.

    CLI Example:

    .. code-block:: bash

        salt-call bind_ad.options_edit "$(cat /etc/bind/named.conf.options)" \\
            /etc/bind/named.conf.labsalt-ad-options \\
            '[["validate-except", "{ \\"ad.example.org\\"; }", "domain"]]'
    """
    site = _without_marked(text)
    brace, statements = _options_block(site)
    if brace is None:
        raise SaltInvocationError(
            f"bind_ad:config_dir: {options_path} has no options {{ }} block to add the AD "
            "options to"
        )
    site_options = {}
    for words in statements:
        if words and words[0] != "include":
            site_options[words[0].lower()] = words[1:]
    keep = []
    for option, value, key in wanted:
        if option not in site_options:
            keep.append((option, value))
            continue
        theirs = site_options[option]
        if _normal(theirs) == _normal(_tokens_words(value)):
            continue
        if option == "validate-except":
            names = {w.strip('"').rstrip(".").lower() for w in theirs if w not in "{};"}
            if value.split('"')[1] in names:
                continue
            raise SaltInvocationError(
                f"bind_ad:{key}: {options_path} already sets validate-except without "
                f"{value.split(chr(34))[1]}; add it there"
            )
        raise SaltInvocationError(
            f"bind_ad:{key}: {options_path} already sets {option} to "
            f"{' '.join(theirs).replace(' ;', ';')[:60]}, not {value[:60]}; drop bind_ad:{key} "
            "or that option"
        )
    new = site[:brace] + "\n\t" + _marked_line(fragment) + site[brace:]
    return new, keep


def _tokens_words(value):
    return [tok for tok, _, _ in _tokens(value)]


def local_edit(text, fragment):
    """The site's named.conf.local ``text`` with one marked line including ``fragment`` last."""
    site = _without_marked(text or "")
    line = _marked_line(fragment)
    if not site:
        return line + "\n"
    return site + line + "\n" if site.endswith("\n") else site + "\n" + line


def fragment_options_text(keep):
    """The formula's options fragment: statements included inside the options block."""
    lines = [MANAGED.replace(";", "//", 1)]
    lines += [f"{option} {value};\n" for option, value in keep]
    return "".join(lines)


def zones_text(params, plan_):
    """
    The formula's zone statement (primary, or a forward zone to the DCs), in its
    own file included from named.conf.local.

    CLI Example:

    .. code-block:: bash

        salt-call bind_ad.zones_text "$(salt-call --out json labsalt.mapdata bind_ad)" ...
    """
    domain = plan_["domain"]
    lines = [MANAGED.replace(";", "//", 1), f"zone {_qstr(domain, 'domain')} {{\n"]
    if plan_["mode"] == "forward":
        dc_addrs = [a for dc in plan_["dcs"] for a in (dc["ipv4"], dc["ipv6"]) if a]
        lines += ["    type forward;\n", "    forward only;\n"]
        lines.append(f"    forwarders {{ {_acl(dc_addrs, 'dcs')} }};\n")
    else:
        lines += [
            "    type primary;\n",
            f"    file {_qstr(zone_path(params, domain), 'zone_dir')};\n",
            "    // Follow the delegations to the DCs; never send them to the global forwarders.\n",
            "    forwarders { };\n",
            f"    allow-transfer {{ {_acl(params.get('allow_transfer'), 'allow_transfer')} }};\n",
            "    // The DCs are NS of the zone, not its secondaries: no NOTIFY to them.\n",
            f"    notify {notify_value(params.get('notify', 'explicit'))};\n",
        ]
        policy = params.get("dnssec_policy")
        if policy:
            if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", str(policy)):
                raise SaltInvocationError(f"bind_ad:dnssec_policy: {policy!r} is not a name")
            # A signed parent: the delegations carry no DS, so they stay insecure.
            lines.append(f"    dnssec-policy {_qstr(policy, 'dnssec_policy')};\n")
            lines.append("    inline-signing yes;\n")
    lines.append("};\n")
    return "".join(lines)


def notify_value(value):
    """
    The zone's ``notify`` setting from ``bind_ad:notify``: explicit (the default:
    NOTIFY only to also-notify, so never to the DCs), no, or yes; YAML's
    booleans stand for yes and no.
    """
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value not in ("explicit", "yes", "no"):
        raise SaltInvocationError(f"bind_ad:notify: {value!r} is not one of explicit, no, yes")
    return value


def _read(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except (FileNotFoundError, NotADirectoryError):
        return None


def paths(params):
    """
    Where the formula writes: its own files (``own``: zones fragment, options
    fragment, zone file) and the site's files it adds one line to (``site``).

    CLI Example:

    .. code-block:: bash

        salt-call bind_ad.paths "$(salt-call --out json labsalt.mapdata bind_ad)"
    """
    conf = params.get("config_dir", "/etc/bind")
    own = [os.path.join(conf, ZONES_FILE), os.path.join(conf, OPTIONS_FILE)]
    if params.get("mode", "authoritative") != "forward" and params.get("domain"):
        own.append(zone_path(params))
    return {
        "named_conf": os.path.join(conf, "named.conf"),
        "options": os.path.join(conf, "named.conf.options"),
        "local": os.path.join(conf, "named.conf.local"),
        "own": own,
    }


def render(params):
    """
    The files of the formula as ``files: {path: text}``, from the merged
    parameters (``labsalt.mapdata bind_ad``) and the site's files as they are
    now: the formula's own files (the zone statement in named.conf.labsalt-ad,
    the AD options in named.conf.labsalt-ad-options, the zone file) and the
    site's named.conf.options and named.conf.local with one marked include line
    each.  ``missing`` lists site files that do not exist (yet: bind9 not
    installed).  Reads only; bad parameters or an option that conflicts with the
    site's raise one SaltInvocationError naming the key.

    CLI Example:

    .. code-block:: bash

        salt-call bind_ad.render "$(salt-call --out json labsalt.mapdata bind_ad)"
    """
    plan_ = plan(params)
    where = paths(params)
    conf = params.get("config_dir", "/etc/bind")
    zones_fragment = os.path.join(conf, ZONES_FILE)
    options_fragment = os.path.join(conf, OPTIONS_FILE)
    files, missing = {}, []
    wanted = wanted_options(params, plan_)
    options = _read(where["options"])
    if options is None:
        missing.append(where["options"])
        keep = [(option, value) for option, value, _ in wanted]
    else:
        files[where["options"]], keep = options_edit(
            options, options_fragment, wanted, where["options"]
        )
    files[options_fragment] = fragment_options_text(keep)
    local = _read(where["local"])
    if local is None:
        missing.append(where["local"])
    elif local.startswith(MANAGED.replace(";", "//", 1)):
        # Written whole by an earlier bind_ad (the AD zone and nothing else): now
        # the zone lives in the formula's own file, and this one only includes it.
        local = ""
    files[where["local"]] = local_edit(local, zones_fragment)
    files[zones_fragment] = zones_text(params, plan_)
    path = None
    if plan_["mode"] != "forward":
        path = zone_path(params, plan_["domain"])
        files[path] = zone_text(plan_, params, _read(path))
    return {"domain": plan_["domain"], "files": files, "zone_file": path, "missing": missing}


def cleaned(params):
    """
    What ``bind_ad.clean`` leaves: ``{path: text}`` for the site's files (the
    marked lines removed; only files that hold one) and ``remove``, the
    formula's own files that exist (zone file and what BIND wrote next to it).

    CLI Example:

    .. code-block:: bash

        salt-call bind_ad.cleaned "$(salt-call --out json labsalt.mapdata bind_ad)"
    """
    where = paths(params)
    files = {}
    for site in (where["options"], where["local"]):
        text = _read(site)
        if text is not None and _without_marked(text) != text:
            files[site] = _without_marked(text)
    remove = [p for p in where["own"] if os.path.lexists(p)]
    if params.get("domain") and params.get("mode", "authoritative") != "forward":
        zone = zone_path(params)
        for suffix in (".jnl", ".jbk", ".signed", ".signed.jnl"):
            if os.path.lexists(zone + suffix):
                remove.append(zone + suffix)
    return {"files": files, "remove": remove}


# --------------------------------------------------------------------------- checking

# The check copies named's configuration into a temporary tree file by file,
# following include/file references from named.conf: never whole directories.
MAX_COPY_FILES = 500
MAX_COPY_BYTES = 256 * 2**20
CHECKCONF = "/usr/bin/named-checkconf"
CHECKZONE = "/usr/bin/named-checkzone"


def _run(cmd, timeout=120):
    """Return code, stdout and stderr of ``cmd`` (an argument list, no shell)."""
    if not (os.path.isabs(cmd[0]) and os.access(cmd[0], os.X_OK)) and not salt.utils.path.which(
        cmd[0]
    ):
        raise CommandExecutionError(f"{cmd[0]} not found: install the package that provides it")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=timeout)
    except subprocess.TimeoutExpired:
        return 124, "", f"{cmd[0]} timed out after {timeout} s"
    return proc.returncode, proc.stdout, proc.stderr


_REFERENCE = re.compile(r'\b(?:file|include)\s+"([^"\n]+)"')
_DIRECTORY = re.compile(r'\bdirectory\s+"(/[^"\n]+)"')


def check_config(files, named_conf="/etc/bind/named.conf", checkconf=CHECKCONF):
    """
    Validate a set of new files together with the live configuration they belong
    to: ``named_conf`` and every file it includes or names as a zone file are
    copied (file by file, at most 500 files and 256 MiB) into a temporary tree at
    the same paths, the new texts replace their copies, and ``named-checkconf -z``
    runs chrooted into that tree, loading every zone.  Returns the checker's
    output; raises CommandExecutionError with it when the set is invalid.
    Nothing outside the temporary tree is touched.

    CLI Example:

    .. code-block:: bash

        salt-call bind_ad.check_config '{/etc/bind/named.conf.local: "zone ..."}'
    """
    with tempfile.TemporaryDirectory(prefix="bind_ad-check-") as tmp:
        for path, text in files.items():
            os.makedirs(os.path.dirname(tmp + path), exist_ok=True)
            with open(tmp + path, "w", encoding="utf-8") as handle:
                handle.write(text)
        budget = {"files": MAX_COPY_FILES, "bytes": MAX_COPY_BYTES}
        _copy_file(named_conf, tmp, budget)
        _copy_referenced(tmp, [tmp + named_conf, *(tmp + p for p in files)], budget)
        # Directories named.conf refers to (e.g. `directory`) must exist in the copy.
        for text in _texts(tmp):
            for directory in _DIRECTORY.findall(text):
                os.makedirs(tmp + directory, exist_ok=True)
        code, out, err = _run([checkconf, "-z", "-t", tmp, named_conf])
    output = (out + err).strip().replace(tmp, "")
    if code != 0:
        raise CommandExecutionError(f"named-checkconf rejected the new configuration: {output}")
    return output


def _texts(tmp):
    for directory, _, names in os.walk(tmp):
        for name in names:
            text = _read_any(os.path.join(directory, name))
            if text is not None:
                yield text


def _read_any(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read(4 * 2**20)
    except OSError:
        return None


def _copy_file(path, tmp, budget):
    """Copy one regular file into ``tmp`` unless already there; False when absent."""
    if not os.path.isabs(path) or not os.path.isfile(path) or os.path.lexists(tmp + path):
        return False
    size = os.path.getsize(path)
    budget["files"] -= 1
    budget["bytes"] -= size
    if budget["files"] < 0 or budget["bytes"] < 0:
        raise CommandExecutionError(
            f"named's configuration names more than {MAX_COPY_FILES} files or "
            f"{MAX_COPY_BYTES // 2**20} MiB; not copying it for the check"
        )
    os.makedirs(os.path.dirname(tmp + path), exist_ok=True)
    shutil.copy2(path, tmp + path)
    return True


def _copy_referenced(tmp, pending, budget):
    """Copy into ``tmp`` the files the copied configuration names (included files,
    Debian's root hints in /usr/share/dns, zone files), relative ones against
    the configured ``directory``."""
    pending, seen = list(pending), set()
    # `directory` is usually set in a file read after the ones naming relative paths.
    directories = [d for path in pending for d in _DIRECTORY.findall(_read_any(path) or "")]
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        text = _read_any(current)
        if text is None:
            continue
        directories += _DIRECTORY.findall(text)
        for ref in _REFERENCE.findall(text):
            candidates = (
                [ref] if ref.startswith("/") else [os.path.join(d, ref) for d in directories]
            )
            for path in map(os.path.normpath, candidates):
                if _copy_file(path, tmp, budget) or os.path.isfile(tmp + path):
                    pending.append(tmp + path)
                    break


def _rndc(rndc, *args):
    return _run([*[str(a) for a in rndc], *args], timeout=60)


def served_serial(rndc, domain):
    """
    The serial of ``domain`` that named serves now (``rndc zonestatus``; for a
    signed zone, the serial of the unsigned zone file), or None when named does
    not serve the zone (or cannot be reached).  Read-only.

    CLI Example:

    .. code-block:: bash

        salt-call bind_ad.served_serial '[rndc]' ad.example.org
    """
    try:
        code, out, _ = _rndc(rndc, "zonestatus", domain)
    except CommandExecutionError:  # rndc not installed (yet): named serves nothing of ours
        return None
    if code != 0:
        return None
    match = re.search(r"^serial:\s*(\d+)", out, re.M)
    return int(match.group(1)) if match else None


def rndc(rndc_cmd, *args):
    """
    Run ``rndc`` (an argument list, e.g. ``[rndc, -s, 127.0.0.1]``) with ``args``;
    raises CommandExecutionError with rndc's message when it fails.

    CLI Example:

    .. code-block:: bash

        salt-call bind_ad.rndc '[rndc]' reconfig
    """
    code, out, err = _rndc(rndc_cmd, *args)
    if code != 0:
        raise CommandExecutionError(
            f"rndc {' '.join(args)} failed: {(err or out).strip().splitlines()[-1:] or code}"
        )
    return out.strip()


def config_digest(files, zone_file=None):
    """sha256 over the named.conf texts of ``files`` (the zone file left out)."""
    digest = hashlib.sha256()
    for path in sorted(files):
        if path != zone_file:
            digest.update(path.encode() + b"\0" + files[path].encode() + b"\0")
    return digest.hexdigest()


# --------------------------------------------------------------------------- packages


# --------------------------------------------------------------------------- samba


def _samba_global_setting(lines):
    """Index of the ``dns update command`` line in [global], or None."""
    section = None
    for index, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("["):
            section = stripped.strip("[]").strip().lower()
            continue
        key = stripped.split("=", 1)[0].strip().lower()
        if section == "global" and key in ("dns update command", "dnsupdatecommand"):
            return index
    return None


def _is_dc(path):
    if not salt.utils.path.which("testparm"):
        return False
    # testparm's exit code also reflects unrelated checks (a missing cache directory).
    _, role, _ = _run(["testparm", "-s", "--parameter-name=server role", path])
    return role.strip().lower() == "active directory domain controller"


def samba_conf_text(path, command):
    """
    The text of the Samba configuration ``path`` with ``dns update command``
    set to ``command`` in [global] (that one line changed or added, nothing
    else), or None when ``path`` is not the configuration of an AD domain
    controller (then there is nothing to set).

    CLI Example:

    .. code-block:: bash

        salt-call bind_ad.samba_conf_text /etc/samba/smb.conf \\
            '/usr/sbin/samba_dnsupdate --use-samba-tool'
    """
    text = _read(path)
    if text is None or not _is_dc(path):
        return None
    if re.search(r"[\x00-\x1f\x7f]", command):
        raise SaltInvocationError("bind_ad:samba:dns_update_command: holds a control character")
    lines = text.splitlines(keepends=True)
    setting = f"\tdns update command = {command}\n"
    index = _samba_global_setting(lines)
    if index is not None:
        lines[index] = setting
        return "".join(lines)
    start = next(
        (i for i, line in enumerate(lines) if line.strip().strip("[]").strip().lower() == "global"
         and line.strip().startswith("[")),
        None,
    )  # fmt: skip
    if start is None:
        return "".join(["[global]\n", setting, "\n", *lines])
    lines.insert(start + 1, setting)
    return "".join(lines)


def samba_previous(path):
    """
    What to record before the edit: JSON with the current ``dns update command``
    line of [global] (null when there is none), so that clean can put it back.

    CLI Example:

    .. code-block:: bash

        salt-call bind_ad.samba_previous /etc/samba/smb.conf
    """
    text = _read(path) or ""
    lines = text.splitlines(keepends=True)
    index = _samba_global_setting(lines)
    return json.dumps({"line": lines[index] if index is not None else None}) + "\n"


def samba_restore_text(path, record):
    """
    The Samba configuration ``path`` with the ``dns update command`` line as it
    was before bind_ad set it (from ``record``, see :func:`samba_previous`), or
    None when there is no record or nothing to restore.

    CLI Example:

    .. code-block:: bash

        salt-call bind_ad.samba_restore_text /etc/samba/smb.conf \\
            /var/lib/labsalt/bind_ad/samba-dns-update-command
    """
    text, saved = _read(path), _read(record)
    if text is None or saved is None:
        return None
    try:
        previous = json.loads(saved)["line"]
    except (ValueError, KeyError, TypeError):
        return None
    lines = text.splitlines(keepends=True)
    index = _samba_global_setting(lines)
    if index is None:
        return None
    if previous is None:
        del lines[index]
    else:
        lines[index] = previous
    return "".join(lines)


# --------------------------------------------------------------------------- verify

DIG = "/usr/bin/dig"
# What a listed DC must answer on: DNS (for the delegations) and Kerberos.
DC_PORTS = (53, 88)
_DIG_STATUS = re.compile(r"status: ([A-Z]+)")
_DIG_FLAGS = re.compile(r";; flags:([^;]*);")


def verify_server(params):
    """
    ``(address, port)`` where this named listens, the address its own clients
    on this host use: 127.0.0.1 when named listens there (BIND's default), else
    the first plain address of ``bind_ad:listen_on`` (or of the site's
    ``listen-on``), else ``::1`` or the first address of ``listen_on_v6``.
    Read-only.

    CLI Example:

    .. code-block:: bash

        salt-call bind_ad.verify_server "$(salt-call --out json labsalt.mapdata bind_ad)"
    """
    site = {}
    options = _read(paths(params)["options"])
    if options is not None:
        _, statements = _options_block(_without_marked(options))
        site = {w[0].lower(): w[1:] for w in statements if w}
    for key, option, loopback in (
        ("listen_on", "listen-on", "127.0.0.1"),
        ("listen_on_v6", "listen-on-v6", "::1"),
    ):
        port, items = 53, params.get(key)
        if items is None:
            words = site.get(option)
            if words is None:
                if key == "listen_on":
                    return loopback, 53  # BIND's default: every IPv4 interface
                continue
            if len(words) > 1 and words[0].lower() == "port" and words[1].isdigit():
                port, words = int(words[1]), words[2:]
            items = [w for w in words if w not in ("{", "}", ";")]
        address = _listen_address(items, loopback)
        if address:
            return address, port
    return "127.0.0.1", 53


def _listen_address(items, loopback):
    plain = []
    for item in items:
        text = str(item).strip()
        if text.startswith("!"):
            continue
        if text.lower() in ("any", "localhost"):
            return loopback
        try:
            net = ipaddress.ip_network(text, strict=False)
        except ValueError:
            continue
        if ipaddress.ip_address(loopback) in net:
            return loopback
        if net.num_addresses == 1:
            plain.append(str(net.network_address))
    return plain[0] if plain else None


def _dig(server, port, rtype, name, *, recurse=False, timeout=2):
    """
    One query with dig (the real client, an argument list) to ``server``: the
    response's status, flags and sections as ``(owner, ttl, type, data)``, or
    ``{"error": ...}`` when named did not answer.
    """
    cmd = [
        DIG, f"@{server}", "-p", str(port), "+norec" if not recurse else "+rec",
        f"+time={timeout}", f"+tries={2 if recurse else 1}", "+nocookie", rtype, name,
    ]  # fmt: skip
    code, out, err = _run(cmd, timeout=timeout * 3 + 5)
    status = _DIG_STATUS.search(out)
    if code != 0 or not status:
        lines = [ln.strip("; ") for ln in (out + err).splitlines() if ln.strip("; ")]
        reason = next((ln for ln in lines if "timed out" in ln or "refused" in ln), None)
        return {"error": reason or (lines[-1] if lines else f"dig exited {code}")}
    flags = _DIG_FLAGS.search(out)
    sections = {"answer": [], "authority": [], "additional": []}
    current = None
    for line in out.splitlines():
        if line.startswith(";; ") and line.rstrip().endswith("SECTION:"):
            current = line[3:].split()[0].lower()
            continue
        if not line.strip():
            current = None
            continue
        if line.startswith(";") or current not in sections:
            continue
        parts = line.split(None, 4)
        if len(parts) >= 4:
            data = parts[4].strip() if len(parts) > 4 else ""
            sections[current].append((parts[0].lower().rstrip("."), int(parts[1]), parts[3], data))
    return {
        "status": status.group(1),
        "flags": set(flags.group(1).split()) if flags else set(),
        **sections,
    }


def _probe(address, port, timeout):
    """True when a TCP connection to ``address``:``port`` opens within ``timeout``."""
    import socket  # noqa: PLC0415

    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            return sock.connect_ex((address, port)) == 0
        except OSError:
            return False


class _VerifyFailed(Exception):
    pass


def verify_checks(params):
    """
    What :func:`verify` checks, in words (what test mode reports).  Read-only.

    CLI Example:

    .. code-block:: bash

        salt-call bind_ad.verify_checks "$(salt-call --out json labsalt.mapdata bind_ad)"
    """
    plan_ = plan(params)
    domain = plan_["domain"]
    server, port = verify_server(params)
    checks = [f"named answers on {server}#{port}"]
    if plan_["mode"] != "forward":
        checks.append(f"{domain} SOA (authoritative)")
        checks.append(f"referrals to the DCs for {', '.join(_subtrees(params))}")
        if params.get("srv_names", "cname") == "cname":
            checks.append("SRV CNAMEs into _msdcs and _kpasswd SRV")
        checks.append("each DC's address")
    checks.append(f"each DC on {'/'.join(map(str, DC_PORTS))} (a warning when it does not answer)")
    checks.append(
        f"_ldap._tcp.dc._msdcs.{domain} and _kerberos._udp.{domain} SRV through named "
        "when a DC answers on 53"
    )
    return checks


def _subtrees(params):
    subtrees = DOMAIN_SUBTREES + (FOREST_SUBTREES if params.get("forest_root", True) else ())
    if params.get("srv_names", "cname") == "delegate":
        subtrees += ("_tcp", "_udp")
    return subtrees


def verify(params):
    """
    Use the running named the way its clients do, after the run: query it at
    its own listen address (:func:`verify_server`) with dig, and nothing else
    over DNS.  Checked without the DCs: the zone's SOA answered
    authoritatively, the referrals for the delegated subtrees (NS to every DC;
    an address added to them must be the DC's), the SRV CNAMEs into ``_msdcs`` and the
    ``_kpasswd`` SRV records, each DC's A/AAAA.  Each DC is probed by a TCP
    connection on 53 and 88 (a short timeout): one that does not answer is
    named in ``warnings``.  When a DC answers on 53,
    ``_ldap._tcp.dc._msdcs.<domain>`` and ``_kerberos._udp.<domain>`` SRV must
    resolve through named (recursion, following the delegation).  Returns
    ``{"server", "checked", "warnings", "error"}``, ``error`` being None or one
    line naming what does not work.  Read-only (queries and TCP connects).

    CLI Example:

    .. code-block:: bash

        salt-call bind_ad.verify "$(salt-call --out json labsalt.mapdata bind_ad)"
    """
    plan_ = plan(params)
    server, port = verify_server(params)
    timeout = int((params.get("verify") or {}).get("timeout", 2))
    result = {"server": f"{server}#{port}", "checked": [], "warnings": [], "error": None}
    try:
        _verify(params, plan_, (server, port, timeout), result)
    except _VerifyFailed as exc:
        result["error"] = str(exc)
    except CommandExecutionError as exc:
        result["error"] = f"{exc} (bind9-dnsutils)"
    return result


def _verify(params, plan_, where, result):
    server, port, timeout = where
    domain, dcs = plan_["domain"], plan_["dcs"]
    at = f"named at {server}#{port}"

    def query(rtype, name, recurse=False):
        resp = _dig(server, port, rtype, name, recurse=recurse, timeout=timeout)
        if "error" in resp:
            raise _VerifyFailed(f"{at} does not answer {name} {rtype}: {resp['error']}")
        return resp

    def expect(name, rtype, resp, *, section, want_type, want, what):
        got = {d.lower() for o, _, t, d in resp[section] if t == want_type and o == name}
        if resp["status"] != "NOERROR" or got != {w.lower() for w in want}:
            shown = ", ".join(sorted(got)) or resp["status"]
            raise _VerifyFailed(
                f"{name} {rtype}: {at} answers {shown}, expected {what} {', '.join(sorted(want))}"
            )

    if plan_["mode"] == "forward":
        query("NS", ".")  # any answer: named is up
        result["checked"].append("named answers")
    else:
        resp = query("SOA", domain)
        if resp["status"] != "NOERROR" or "aa" not in resp["flags"]:
            raise _VerifyFailed(
                f"{domain} SOA: {at} answers {resp['status']}"
                f"{'' if 'aa' in resp['flags'] else ' without authority'}, it does not serve "
                "the zone"
            )
        dc_names = {dc["name"] for dc in dcs}
        for subtree in _subtrees(params):
            name = f"{subtree}.{domain}".lower()
            resp = query("NS", name)
            want = {f"{n}." for n in dc_names}
            expect(name, "NS", resp, section="authority", want_type="NS", want=want,
                   what="a referral to")  # fmt: skip
            # BIND 9.18 adds no address for an NS target that lies beside the
            # delegation (dc1.<domain>, not below _msdcs): resolvers ask BIND for
            # it, checked below; an address it does add must be the DC's.
            for dc in dcs:
                for rtype, addr in (("A", dc["ipv4"]), ("AAAA", dc["ipv6"])):
                    glue = {d for o, _, t, d in resp["additional"] if (o, t) == (dc["name"], rtype)}
                    if glue and addr not in glue:
                        raise _VerifyFailed(
                            f"{name} NS: {at} gives {rtype} {', '.join(sorted(glue))} for "
                            f"{dc['name']}, not {addr or 'none'}"
                        )
        result["checked"].append(f"{domain} SOA and the referrals to the DCs")
        if params.get("srv_names", "cname") == "cname":
            cnames = dict(SRV_CNAMES, **(FOREST_SRV_CNAMES if params.get("forest_root", True)
                                         else {}))  # fmt: skip
            for owner, target in cnames.items():
                name = f"{owner}.{domain}"
                expect(name, "SRV", query("SRV", name), section="answer", want_type="CNAME",
                       want={f"{target}.{domain}."}, what="CNAME")  # fmt: skip
            for proto in ("_tcp", "_udp"):
                name = f"_kpasswd.{proto}.{domain}"
                want = {f"0 100 {KPASSWD_PORT} {dc['name']}." for dc in dcs}
                expect(name, "SRV", query("SRV", name), section="answer", want_type="SRV",
                       want=want, what="SRV")  # fmt: skip
            result["checked"].append("SRV CNAMEs into _msdcs and _kpasswd SRV")
        for dc in dcs:
            for rtype, addr in (("A", dc["ipv4"]), ("AAAA", dc["ipv6"])):
                if addr:
                    expect(dc["name"], rtype, query(rtype, dc["name"]), section="answer",
                           want_type=rtype, want={addr}, what=rtype)  # fmt: skip
        result["checked"].append("the DCs' addresses")
    dns_up = []
    for dc in dcs:
        silent = []
        for addr in filter(None, (dc["ipv4"], dc["ipv6"])):
            for dc_port in DC_PORTS:
                if _probe(addr, dc_port, timeout):
                    if dc_port == 53:
                        dns_up.append(dc["name"])
                else:
                    silent.append(f"{addr} port {dc_port}")
        if silent:
            result["warnings"].append(
                f"DC {dc['name']} does not answer on {', '.join(silent)} (TCP)"
            )
    if not dns_up:
        result["warnings"].append(
            "no DC answers on 53: lookups through the delegations were not checked"
        )
        return
    for name in (f"_ldap._tcp.dc._msdcs.{domain}", f"_kerberos._udp.{domain}"):
        resp = query("SRV", name, recurse=True)
        if "ra" not in resp["flags"]:
            result["warnings"].append(
                f"{at} does not recurse for this host (bind_ad:clients): lookups through the "
                "delegations were not checked"
            )
            return
        srv = [d for _, _, t, d in resp["answer"] if t == "SRV"]
        if resp["status"] != "NOERROR" or not srv:
            raise _VerifyFailed(
                f"{name} SRV: {at} answers {resp['status']} with no SRV record through the "
                f"delegation (DCs answering on 53: {', '.join(sorted(set(dns_up)))})"
            )
    result["checked"].append("_ldap._tcp.dc._msdcs and _kerberos._udp SRV through the DCs")
