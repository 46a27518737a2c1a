"""
coturn: checks beyond the schema, a turnserver.conf line writer that refuses
what the file format cannot hold, the exceptions for the server's own addresses
in denied peer ranges, the verify step (a real TURN client against the live
server), the host-firewall coexistence check, and the record of what labsalt
installed and replaced (so that ``coturn.clean`` undoes exactly that).

``validate``, ``conf_line``, ``own_peer_exceptions``, ``rest_credentials`` and
``verify_plan`` are pure; ``firewall_conflicts`` only reads (``nft -j list
ruleset``, or ``iptables-save`` where nft is missing) and is safe in test mode.
``_wrapper/coturn.py`` links here, so that under salt-ssh ``labsalt.mapdata``
runs the validator on the master.
"""

import base64
import hashlib
import hmac
import ipaddress
import json
import os
import re
import selectors
import shutil
import subprocess
import time

import salt.utils.data
from salt.exceptions import CommandExecutionError, SaltInvocationError

try:  # Salt >= 3008 masks pillar values outside of rendering
    from salt.utils.secret import expose as _expose
except ImportError:  # Salt 3006/3007

    def _expose(value):
        return value


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


# --------------------------------------------------------------------------- own addresses


def _range(text):
    """(first, last) of a coturn peer range: one address or ``first-last``."""
    first, _, last = str(text).partition("-")
    low = ipaddress.ip_address(first)
    return low, ipaddress.ip_address(last) if last else low


def _covering(address, ranges):
    """The first range of ``ranges`` (coturn notation) that holds ``address``, or None."""
    for text in ranges:
        low, high = _range(text)
        if low.version == address.version and low <= address <= high:
            return text
    return None


def _own_addresses(mapdata, host_addresses):
    """(address, where it comes from) of every address that is this server's own."""
    found = []
    if mapdata.get("external_ip"):
        found.append((mapdata["external_ip"], "external_ip"))
    # Without relay-ip, coturn relays from the address a client connected to:
    # the listening addresses, or with none configured, any of the host's.
    listening = [ip for ip in mapdata.get("listening_ips") or [] if ip not in ("0.0.0.0", "::")]
    if listening:
        found += [(ip, "listening_ips, the relay address") for ip in listening]
    else:
        found += [(ip, "a host address coturn relays from") for ip in host_addresses or []]
    seen, result = set(), []
    for text, source in found:
        try:
            address = ipaddress.ip_address(str(text).split("%")[0])
        except ValueError:
            continue
        if address.is_loopback or address.is_link_local or address.is_unspecified:
            continue  # coturn refuses loopback peers itself; never a relay address
        if address not in seen:
            seen.add(address)
            result.append((address, source))
    return result


def own_peer_exceptions(mapdata, host_addresses=()):
    """
    The server's own external or relay addresses that fall inside a denied peer
    range (a lab behind NAT: coturn/coturn#584, #1407): clients that relay to
    each other through this server send to the server's own relay (or
    external) address, which coturn then refuses as a denied peer.  Each is
    returned as ``{"address", "source", "range", "allowed"}``; ``allowed`` is
    ``coturn:allow_own_addresses`` (default true): the formula then writes
    ``allowed-peer-ip=<address>`` for exactly that address, nothing more of the
    range.  Addresses already covered by ``allowed_peer_ips`` are not listed.
    ``host_addresses`` (grains ipv4 + ipv6) count only when ``listening_ips``
    is empty.  Pure.

    CLI Example:

    .. code-block:: bash

        salt-call coturn.own_peer_exceptions "$(salt-call --out json labsalt.mapdata coturn)"
    """
    denied = mapdata.get("denied_peer_ips") or []
    allowed = mapdata.get("allowed_peer_ips") or []
    allow = mapdata.get("allow_own_addresses", True) is not False
    found = []
    for address, source in _own_addresses(mapdata, host_addresses):
        inside = _covering(address, denied)
        if inside and not _covering(address, allowed):
            found.append(
                {"address": str(address), "source": source, "range": inside, "allowed": allow}
            )
    return found


def own_exceptions_comment(exceptions):
    """The one-line comment of the state that reports ``own_peer_exceptions``."""
    if not exceptions:
        return "no own address of this server lies in a denied peer range"
    done = [e for e in exceptions if e["allowed"]]
    kept = [e for e in exceptions if not e["allowed"]]
    parts = []
    if done:
        parts.append(
            "allowed-peer-ip for the server's own address "
            + ", ".join(f"{e['address']} ({e['source']}; in denied {e['range']})" for e in done)
            + ": clients relaying to each other through this server reach it "
            "(coturn/coturn#584); the rest of the range stays denied"
        )
    if kept:
        parts.append(
            "coturn:allow_own_addresses is false: the server's own address "
            + ", ".join(f"{e['address']} (in denied {e['range']})" for e in kept)
            + " stays denied, so clients relaying to each other through this server fail"
        )
    return "; ".join(parts)


# --------------------------------------------------------------------------- verify

# Peers that are never real hosts (RFC 5737, RFC 3849): preferred for the
# "denied peer is refused" check, so that a server that wrongly lets it
# through sends nothing into the lab.
_DOCUMENTATION = [
    ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
] + [ipaddress.ip_network("2001:db8::/32")]


def verify_target(mapdata):
    """(address, port) where the verify client reaches the live server."""
    port = int(mapdata.get("listening_port") or 3478)
    listening = mapdata.get("listening_ips") or []
    specific = [ip for ip in listening if ip not in ("0.0.0.0", "::")]
    if specific:
        return specific[0], port
    if listening and "0.0.0.0" not in listening:
        return "::1", port  # listening on :: only
    return "127.0.0.1", port


def _candidates(low, high):
    """A few addresses of the range first+1 .. last (not its ends first)."""
    step = int(high) - int(low)
    for offset in dict.fromkeys((1, step // 2, step - 1, 0, step)):
        if 0 <= offset <= step:
            yield type(low)(int(low) + offset)


def denied_probe(mapdata, family, exceptions=()):
    """
    (address, range) of a peer in a denied range (of IP ``family``, 4 or 6)
    that nothing allows, for the verify step to ask the server for; a
    documentation address where one is denied.  None when there is none.
    """
    allowed = list(mapdata.get("allowed_peer_ips") or [])
    allowed += [e["address"] for e in exceptions if e.get("allowed")]
    found = []
    for text in mapdata.get("denied_peer_ips") or []:
        low, high = _range(text)
        if low.version != family:
            continue
        for address in _candidates(low, high):
            if (
                address.is_loopback
                or address.is_unspecified
                or address.is_multicast
                or (family == 4 and address in ipaddress.ip_network("0.0.0.0/8"))
                or _covering(address, allowed)
            ):
                continue
            found.append((str(address), text, any(address in n for n in _DOCUMENTATION)))
            break
    for address, text, documentation in found:
        if documentation:
            return address, text
    return (found[0][0], found[0][1]) if found else None


def rest_credentials(secret, user="labsalt-verify", lifetime=60, now=None):
    """
    TURN REST API credentials (use-auth-secret) for ``user``, valid for
    ``lifetime`` seconds: username ``<expiry>:<user>``, password
    base64(HMAC-SHA1(secret, username)), as coturn checks them.  The secret
    itself never leaves this function.
    """
    expiry = int(time.time() if now is None else now) + int(lifetime)
    username = f"{expiry}:{user}"
    digest = hmac.new(str(secret).encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


def verify_plan(mapdata, host_addresses=()):
    """
    What the verify step asks the live server: ``{"server", "port", "probe",
    "range"}`` (``probe`` None when no denied range of the server address's
    family is left to test).  Pure; test mode shows it.
    """
    server, port = verify_target(mapdata)
    family = ipaddress.ip_address(server).version
    exceptions = own_peer_exceptions(mapdata, host_addresses)
    probe = denied_probe(mapdata, family, exceptions)
    return {
        "server": server,
        "port": port,
        "probe": probe[0] if probe else None,
        "range": probe[1] if probe else None,
    }


def verify_checks(mapdata, host_addresses=()):
    """The checks the verify step makes, in words (for test mode's comment)."""
    plan = verify_plan(mapdata, host_addresses)
    checks = [
        f"turnutils_uclient with credentials from the pillar's static_auth_secret "
        f"allocates a relay at {plan['server']}:{plan['port']}/udp"
    ]
    if plan["probe"]:
        checks.append(f"a peer in a denied range ({plan['probe']}, {plan['range']}) is refused")
    return checks


def _lines(proc, deadline):
    """Lines of ``proc``'s output until it ends or ``deadline`` (monotonic) passes."""
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        pending = b""
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                if pending:
                    yield pending.decode(errors="replace")
                return
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                if pending:
                    yield pending.decode(errors="replace")
                return
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for line in complete:
                yield line.decode(errors="replace")


def _uclient(server, port, credentials, peer, timeout):
    """
    Run turnutils_uclient (one UDP client, one message, no RTCP) until it shows
    the verdict on the channel binding to ``peer``; stop it there so that it
    sends no data.  Returns ``{"relay", "refused", "bound", "auth_failed",
    "unreachable", "timed_out", "errors"}``.
    """
    username, password = credentials
    cmd = ["turnutils_uclient", "-v", "-c", "-m", "1", "-n", "1", "-l", "32"]
    # The derived, time-limited REST credentials go on argv (turnutils_uclient
    # reads them nowhere else); the shared secret itself never does (no -W).
    cmd += ["-p", str(port), "-u", username, "-w", password, "-e", peer, "-r", "9", server]
    found = {
        "relay": None,
        "refused": False,
        "bound": False,
        "auth_failed": False,
        "unreachable": False,
        "timed_out": False,
        "errors": [],
    }
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        binding = False
        for line in _lines(proc, time.monotonic() + timeout):
            text = line.replace(password, "****").replace(username, "****")
            if "Received relay addr:" in text and not found["relay"]:
                found["relay"] = text.split("Received relay addr:", 1)[1].strip()
            elif "channel bind sent" in text:
                binding = True
            elif "403" in text and "Forbidden IP" in text:
                found["refused"] = True
                break
            elif binding and re.search(r": success: 0x", text):
                found["bound"] = True
                break
            elif "Cannot complete Allocation" in text:
                found["auth_failed"] = True
                break
            elif "Connection refused" in text:
                found["unreachable"] = True
                break
            elif re.search(r"error \d{3}|ERROR", text):
                found["errors"].append(text.split(": ", 2)[-1].strip()[:120])
        else:
            found["timed_out"] = proc.poll() is None
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stdout.close()
    return found


def _why(found, timeout):
    if found["errors"]:
        return found["errors"][0]
    if found["timed_out"]:
        return f"no answer within {timeout} s"
    return "turnutils_uclient ended without one"


def verify(mapdata, host_addresses=(), secret=None, timeout=None):
    """
    Use the live server as a client does: ``turnutils_uclient`` with TURN REST
    credentials made from the pillar's ``static_auth_secret`` (valid for the
    run only) allocates a relay at the server's listening address, and a peer
    in a denied range (``denied_probe``) is refused with 403 Forbidden IP.
    Returns a one-line summary; raises CommandExecutionError with one line
    naming what does not work.  Nothing is changed on the server beyond one
    short-lived allocation.

    CLI Example:

    .. code-block:: bash

        salt-call coturn.verify "$(salt-call --out json labsalt.mapdata coturn)"
    """
    if not shutil.which("turnutils_uclient"):
        raise CommandExecutionError("turnutils_uclient is not installed (package coturn)")
    if secret is None:
        # unmasked, straight from the minion's pillar: never an argument, never shown
        pillar = __pillar__  # noqa: F821
        secret = _expose(
            salt.utils.data.traverse_dict_and_list(pillar, "coturn:static_auth_secret", None)
        )
    if not secret:
        raise CommandExecutionError("coturn:static_auth_secret: is not set in pillar")
    if timeout is None:
        timeout = int((mapdata.get("verify") or {}).get("timeout") or 10)
    plan = verify_plan(mapdata, host_addresses)
    server, port = plan["server"], plan["port"]
    where = f"{server}:{port}/udp"
    family = ipaddress.ip_address(server).version
    # Without a denied range to test, ask for a loopback peer (coturn refuses
    # those itself): the allocation is what is checked then.
    peer = plan["probe"] or ("127.0.0.1" if family == 4 else "::1")
    credentials = rest_credentials(secret, lifetime=timeout + 60)
    found = _uclient(server, port, credentials, peer, timeout)
    service = mapdata.get("service") or "coturn"
    if found["unreachable"] and not found["relay"]:
        raise CommandExecutionError(
            f"no TURN server answers at {where} (connection refused): is {service} running?"
        )
    if found["auth_failed"]:
        raise CommandExecutionError(
            f"the TURN server at {where} refuses credentials made from the pillar's "
            "static_auth_secret (Cannot complete Allocation): does it run with another secret?"
        )
    if not found["relay"]:
        raise CommandExecutionError(f"no relay allocated at {where}: {_why(found, timeout)}")
    if not plan["probe"]:
        return (
            f"turnutils_uclient with the pillar's secret got a relay ({found['relay']}) "
            f"from {where}; no denied range of IPv{family} to check"
        )
    if found["bound"]:
        raise CommandExecutionError(
            f"a peer in a denied range is not refused: {where} let a client bind a channel "
            f"to {plan['probe']} (denied_peer_ips {plan['range']})"
        )
    if not found["refused"]:
        raise CommandExecutionError(
            f"no verdict on a peer in a denied range ({plan['probe']}) from {where}: "
            + _why(found, timeout)
        )
    return (
        f"turnutils_uclient with the pillar's secret got a relay ({found['relay']}) from "
        f"{where}; a peer in a denied range ({plan['probe']}, {plan['range']}) is refused "
        "(403 Forbidden IP)"
    )


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
