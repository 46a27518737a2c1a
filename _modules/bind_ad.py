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

:func:`render` turns the formula's parameters into ``{path: text}`` for the
named.conf fragments and the zone file, computing the zone serial so it changes
only when the zone's content does.  :func:`check_config` validates such a set
with ``named-checkconf -z`` in a temporary copy of the configuration before any
live file is replaced.
"""

import datetime
import ipaddress
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
    t_deleg, t_cname = ttl.get("delegation", 86400), ttl.get("cname", 86400)
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
    taken = {owner for owner, *_ in generated if owner != "@"}
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
        below = [s for s in subtrees if owner == s or owner.endswith("." + s)]
        if below:
            raise SaltInvocationError(
                f"{where}: {owner} lies in {below[0]}, which is delegated to the DCs"
            )
        if owner in taken:
            raise SaltInvocationError(f"{where}: {owner} is generated from the DC list already")
        data = str(entry["data"])
        if "\n" in data or (";" in data and rtype != "TXT"):
            raise SaltInvocationError(f"{where}: data {data!r} must be one line without ';'")
        extra.append((owner, int(entry.get("ttl", ttl.get("host", 3600))), rtype, data))
    return extra


# --------------------------------------------------------------------------- rendering


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
    rname = _fqdn(rname.replace("@", "."), "bind_ad:hostmaster")

    def render(serial):
        width = max(len(owner) for owner, *_ in plan_["records"])
        lines = [
            MANAGED,
            f"$ORIGIN {domain}.\n",
            f"$TTL {soa.get('minimum', 3600)}\n",
            f"@ IN SOA {mname}. {rname}. (\n",
            f"        {serial} ; serial\n",
            f"        {soa.get('refresh', 3600)} ; refresh\n",
            f"        {soa.get('retry', 900)} ; retry\n",
            f"        {soa.get('expire', 1209600)} ; expire\n",
            f"        {soa.get('minimum', 3600)} ; negative-cache TTL\n",
            "        )\n",
        ]
        for owner, ttl, rtype, data in plan_["records"]:
            lines.append(f"{owner:<{width}} {ttl:>6} IN {rtype:<5} {data}\n")
        return "".join(lines)

    old_serial = None
    if old_text:
        match = _SERIAL.search(old_text)
        if match:
            old_serial = int(match.group(2))
            if render(old_serial) == old_text:
                return old_text
    return render(next_serial(old_serial, today))


def _acl(items):
    return " ".join(f"{item};" for item in items) if items else "none;"


def options_text(params, plan_):
    """
    named.conf.options: listening addresses, recursion only for ``clients``,
    forwarders, DNSSEC validation with the AD domain excepted.

    CLI Example:

    .. code-block:: bash

        salt-call bind_ad.options_text "$(salt-call --out json labsalt.mapdata bind_ad)" ...
    """
    lines = [
        MANAGED.replace(";", "//", 1),
        "options {\n",
        f'    directory "{params.get("cache_dir", "/var/cache/bind")}";\n',
        f"    listen-on {{ {_acl(params.get('listen_on', ['any']))} }};\n",
        f"    listen-on-v6 {{ {_acl(params.get('listen_on_v6', ['any']))} }};\n",
        "    recursion yes;\n",
        "    // Recursion and cached answers only for the site's clients: no open resolver.\n",
        f"    allow-recursion {{ {_acl(params.get('clients', []))} }};\n",
        f"    allow-query-cache {{ {_acl(params.get('clients', []))} }};\n",
    ]
    if params.get("forwarders"):
        lines.append(f"    forwarders {{ {_acl(params['forwarders'])} }};\n")
        lines.append(f"    forward {params.get('forward', 'first')};\n")
    validation = params.get("dnssec_validation", "auto")
    validation = {True: "yes", False: "no"}.get(validation, validation)
    lines.append(f"    dnssec-validation {validation};\n")
    # The AD zones are unsigned and delegated without DS: validating them would fail.
    lines.append(f'    validate-except {{ "{plan_["domain"]}"; }};\n')
    if params.get("max_cache_ttl") is not None:
        lines.append(f"    max-cache-ttl {int(params['max_cache_ttl'])};\n")
    lines.append("};\n")
    return "".join(lines)


def local_text(params, plan_):
    """
    named.conf.local: the AD domain's zone (primary, or a forward zone to the DCs).

    CLI Example:

    .. code-block:: bash

        salt-call bind_ad.local_text "$(salt-call --out json labsalt.mapdata bind_ad)" ...
    """
    domain = plan_["domain"]
    lines = [MANAGED.replace(";", "//", 1), f'zone "{domain}" {{\n']
    if plan_["mode"] == "forward":
        dc_addrs = [a for dc in plan_["dcs"] for a in (dc["ipv4"], dc["ipv6"]) if a]
        lines += ["    type forward;\n", "    forward only;\n"]
        lines.append(f"    forwarders {{ {_acl(dc_addrs)} }};\n")
    else:
        lines += [
            "    type primary;\n",
            f'    file "{zone_path(params, domain)}";\n',
            "    // Follow the delegations to the DCs; never send them to the global forwarders.\n",
            "    forwarders { };\n",
            f"    allow-transfer {{ {_acl(params.get('allow_transfer', []))} }};\n",
        ]
        if params.get("dnssec_policy"):
            # A signed parent: the delegations carry no DS, so they stay insecure.
            lines.append(f"    dnssec-policy {params['dnssec_policy']};\n")
            lines.append("    inline-signing yes;\n")
    lines.append("};\n")
    return "".join(lines)


def _read(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def render(params):
    """
    The files of the formula as ``files: {path: text}`` (named.conf.options,
    named.conf.local and, for an authoritative setup, the zone file, whose path
    is also ``zone_file``) and the normalised ``domain``, from the
    merged parameters (``labsalt.mapdata bind_ad``).  Bad parameters raise one
    SaltInvocationError naming the key, so the SLS fails before anything runs.

    CLI Example:

    .. code-block:: bash

        salt-call bind_ad.render "$(salt-call --out json labsalt.mapdata bind_ad)"
    """
    plan_ = plan(params)
    conf = params.get("config_dir", "/etc/bind")
    files = {
        os.path.join(conf, "named.conf.options"): options_text(params, plan_),
        os.path.join(conf, "named.conf.local"): local_text(params, plan_),
    }
    path = None
    if plan_["mode"] != "forward":
        path = zone_path(params, plan_["domain"])
        files[path] = zone_text(plan_, params, _read(path))
    return {"domain": plan_["domain"], "files": files, "zone_file": path}


# --------------------------------------------------------------------------- checking


def _run(cmd):
    """Return code, stdout and stderr of ``cmd``; a missing program is a clear error."""
    if not salt.utils.path.which(cmd[0]):
        raise CommandExecutionError(f"{cmd[0]} not found: install the package that provides it")
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    return proc.returncode, proc.stdout, proc.stderr


def check_config(files, named_conf="/etc/bind/named.conf", checkconf="named-checkconf"):
    """
    Validate a set of new files together with the live configuration they belong
    to: the directories of ``named_conf`` and of every file are copied into a
    temporary tree at the same paths, the new texts replace their copies, and
    ``named-checkconf -z`` runs chrooted into that tree, loading every zone.
    Returns the checker's output; raises CommandExecutionError with it when the
    set is invalid.  Nothing outside the temporary tree is touched.

    CLI Example:

    .. code-block:: bash

        salt-call bind_ad.check_config '{/etc/bind/named.conf.local: "zone ..."}'
    """
    with tempfile.TemporaryDirectory(prefix="bind_ad-check-") as tmp:
        dirs = {os.path.dirname(named_conf)} | {os.path.dirname(path) for path in files}
        for directory in sorted(dirs):
            target = tmp + directory
            if os.path.isdir(directory):
                shutil.copytree(directory, target, symlinks=True, dirs_exist_ok=True)
            else:
                os.makedirs(target, exist_ok=True)
        for path, text in files.items():
            with open(tmp + path, "w", encoding="utf-8") as handle:
                handle.write(text)
        _copy_referenced(tmp)
        # Directories named.conf refers to (e.g. `directory`) must exist in the copy.
        for directory in re.findall(r'^\s*directory\s+"([^"]+)"', "\n".join(files.values()), re.M):
            os.makedirs(tmp + directory, exist_ok=True)
        code, out, err = _run([checkconf, "-z", "-t", tmp, named_conf])
    output = (out + err).strip().replace(tmp, "")
    if code != 0:
        raise CommandExecutionError(f"named-checkconf rejected the new configuration: {output}")
    return output


_REFERENCE = re.compile(r'\b(?:file|include)\s+"(/[^"]+)"')


def _copy_referenced(tmp):
    """Copy into ``tmp`` the files the copied configuration names elsewhere
    (Debian's root hints in /usr/share/dns, zone files in /var/lib/bind)."""
    pending = [os.path.join(d, f) for d, _, names in os.walk(tmp) for f in names]
    while pending:
        try:
            with open(pending.pop(), encoding="utf-8", errors="replace") as handle:
                text = handle.read()
        except OSError:
            continue
        for path in _REFERENCE.findall(text):
            if os.path.isfile(path) and not os.path.lexists(tmp + path):
                os.makedirs(os.path.dirname(tmp + path), exist_ok=True)
                shutil.copy2(path, tmp + path)
                pending.append(tmp + path)


def samba_conf_text(path, command):
    """
    The text of the Samba configuration ``path`` with ``dns update command``
    set to ``command`` in [global], or None when ``path`` is not the
    configuration of an AD domain controller (then there is nothing to set).

    CLI Example:

    .. code-block:: bash

        salt-call bind_ad.samba_conf_text /etc/samba/smb.conf \\
            '/usr/sbin/samba_dnsupdate --use-samba-tool'
    """
    text = _read(path)
    if text is None or not salt.utils.path.which("testparm"):
        return None
    # testparm's exit code also reflects unrelated checks (a missing cache directory).
    _, role, _ = _run(["testparm", "-s", "--parameter-name=server role", path])
    if role.strip().lower() != "active directory domain controller":
        return None
    lines = text.splitlines(keepends=True)
    setting = f"\tdns update command = {command}\n"
    section, start = None, None
    for index, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("["):
            section = stripped.strip("[]").strip().lower()
            if section == "global":
                start = index
            continue
        key = stripped.split("=", 1)[0].strip().lower()
        if section == "global" and key in ("dns update command", "dnsupdatecommand"):
            lines[index] = setting
            return "".join(lines)
    if start is None:
        return "".join(["[global]\n", setting, "\n", *lines])
    lines.insert(start + 1, setting)
    return "".join(lines)
