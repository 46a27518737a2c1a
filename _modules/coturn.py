"""
coturn: checks beyond the schema, a turnserver.conf line writer that refuses
what the file format cannot hold, the host-firewall coexistence check, and the
record of what labsalt installed and replaced (so that ``coturn.clean`` undoes
exactly that).

``validate`` and ``conf_line`` are pure; ``firewall_conflicts`` only reads
(``nft -j list ruleset``, or ``iptables-save`` where nft is missing) and is
safe in test mode.  ``_wrapper/coturn.py`` links here, so that under salt-ssh
``labsalt.mapdata`` runs the validator on the master.
"""

import json
import os
import re
import shutil
import subprocess

from salt.exceptions import CommandExecutionError, SaltInvocationError

__virtualname__ = "coturn"

# A turnserver.conf value: coturn reads ``option=value`` up to the end of the line
# and has no quoting, so a value is one word of printable ASCII (no '#': some
# coturn versions cut comments after it).
_CONF_VALUE = re.compile(r"[!-\"$-~]+")
_CONF_OPTION = re.compile(r"[a-z][a-z0-9_-]*")
# nft families whose input hook filters what reaches this host's sockets.
_INPUT_FAMILIES = ("inet", "ip", "ip6")


def __virtual__():
    return __virtualname__


def validate(mapdata):
    """
    Checks of the merged coturn parameters that the schema cannot express; raises
    SaltInvocationError("coturn:<key>: <problem>") (never shows the secret).
    ``labsalt.mapdata`` calls it (schema.yaml names it as the validator).

    CLI Example:

    .. code-block:: bash

        salt-call coturn.validate "$(salt-call --out json labsalt.mapdata coturn)"
    """
    tls = mapdata.get("tls") or {}
    if bool(tls.get("cert")) != bool(tls.get("pkey")):
        given, missing = ("cert", "pkey") if tls.get("cert") else ("pkey", "cert")
        raise SaltInvocationError(
            f"coturn:tls:{missing}: is missing (tls:{given} is set; a TLS listener needs both)"
        )
    ports = {"listening_port": mapdata.get("listening_port")}
    if tls.get("cert"):
        ports["tls_listening_port"] = mapdata.get("tls_listening_port")
        if ports["tls_listening_port"] == ports["listening_port"]:
            raise SaltInvocationError(
                f"coturn:tls_listening_port: {ports['listening_port']} is also listening_port"
            )
    low, high = mapdata.get("min_port"), mapdata.get("max_port")
    if isinstance(low, int) and isinstance(high, int):
        for key, port in ports.items():
            if isinstance(port, int) and low <= port <= high:
                raise SaltInvocationError(
                    f"coturn:{key}: {port} lies in the relay port range {low}-{high}"
                )
    firewall = mapdata.get("firewall") or {}
    ssh = firewall.get("ssh_port")
    in_range = isinstance(low, int) and isinstance(ssh, int) and low <= ssh <= high
    if firewall.get("enabled") and in_range:
        raise SaltInvocationError(
            f"coturn:firewall:ssh_port: {ssh} lies in the relay port range {low}-{high}"
        )
    return True


def conf_line(option, value, secret=False):
    """
    One ``option=value`` line of turnserver.conf, or an error when the value
    cannot be written safely: coturn's format has no quoting, so a value must be
    one word of printable ASCII (no whitespace, newline, control character or
    ``#``).  The second line of defence behind the schema: a value that slips
    past it cannot add an option to the live file.  A secret value is never
    shown in the error.

    CLI Example:

    .. code-block:: bash

        salt-call coturn.conf_line external-ip 198.51.100.7
    """
    if not isinstance(option, str) or not _CONF_OPTION.fullmatch(option):
        raise SaltInvocationError(f"turnserver.conf: '{option}' is not an option name")
    if isinstance(value, bool) or value is None:
        raise SaltInvocationError(f"turnserver.conf: {option} needs a value")
    text = str(value)
    if not _CONF_VALUE.fullmatch(text):
        shown = "(secret value)" if secret else repr(text)[:60]
        raise SaltInvocationError(
            f"turnserver.conf: {option}: {shown} is not one word of printable ASCII "
            "(no whitespace, newline, control character or '#'); not written"
        )
    return f"{option}={text}"


# --------------------------------------------------------------------------- firewall


def _run(cmd):
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        first = (proc.stderr.strip().splitlines() or ["no output"])[0]
        raise CommandExecutionError(f"{' '.join(cmd)} failed: {first}")
    return proc.stdout


def _nft_conflicts(own_table, ruleset):
    items = ruleset.get("nftables", [])
    rules = {}
    for item in items:
        rule = item.get("rule")
        if rule:
            key = (rule.get("family"), rule.get("table"), rule.get("chain"))
            rules[key] = rules.get(key, 0) + 1
    found = []
    for item in items:
        chain = item.get("chain")
        if not chain or chain.get("hook") != "input":
            continue
        family, table = chain.get("family"), chain.get("table")
        if family not in _INPUT_FAMILIES or (family, table) == ("inet", own_table):
            continue
        count = rules.get((family, table, chain.get("name")), 0)
        policy = chain.get("policy", "accept")
        # An empty chain that accepts everything (Debian's default nftables.conf)
        # admits no less than before; anything else is a site policy of its own.
        if count or policy != "accept":
            found.append(
                f"table {family} {table} chain {chain.get('name')} "
                f"(input hook, policy {policy}, {count} rules)"
            )
    return found


def _iptables_conflicts(save):
    found = []
    for tool in (save, save.replace("iptables", "ip6tables")):
        if not shutil.which(tool):
            continue
        table = None
        for line in _run([tool]).splitlines():
            if line.startswith("*"):
                table = line[1:]
            elif table == "filter" and (
                line.startswith("-A INPUT ") or re.match(r":INPUT (DROP|REJECT)", line)
            ):
                found.append(f"{tool.removesuffix('-save')} filter INPUT rules")
                break
    return found


def firewall_conflicts(table="labsalt_coturn"):
    """
    What on this host a coturn firewall table (an input chain that drops all but
    SSH and TURN) would break: every other nftables base chain on the input hook
    (families inet, ip, ip6, including iptables-nft's INPUT chains) that has
    rules or a policy other than accept.  nftables drops a packet that any
    input chain drops, so with such a chain the site's rules and coturn's table
    would each cut off what the other admits.  Returns a list of findings (empty:
    no conflict).  Read-only; without ``nft`` it reads ``iptables-save``.

    CLI Example:

    .. code-block:: bash

        salt-call coturn.firewall_conflicts
    """
    nft = shutil.which("nft")
    if nft:
        return _nft_conflicts(table, json.loads(_run([nft, "-j", "list", "ruleset"]) or "{}"))
    if shutil.which("iptables-save"):
        return _iptables_conflicts("iptables-save")
    return []


# --------------------------------------------------------------------------- records


def read_record(path):
    """
    The names recorded in ``path`` (one a line), [] when there is no record
    (bigbluebutton's ufw rules; packages are ``labsalt_packages``'s).

    CLI Example:

    .. code-block:: bash

        salt-call coturn.read_record /var/lib/labsalt/bigbluebutton/ufw-rules
    """
    try:
        with open(path, encoding="utf-8") as handle:
            return [line.strip() for line in handle if line.strip()]
    except FileNotFoundError:
        return []


def write_record(path, names):
    """
    Record ``names`` (sorted, one a line) in ``path``, atomically.

    CLI Example:

    .. code-block:: bash

        salt-call coturn.write_record /var/lib/labsalt/bigbluebutton/ufw-rules "[5060/tcp]"
    """
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write("".join(f"{name}\n" for name in sorted(set(names))))
    os.replace(tmp, path)
    return True
