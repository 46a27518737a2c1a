"""
Egress filter for the processes of a VirtualBox VM behind NAT.

VirtualBox NAT runs in user space: the VM's traffic leaves the host from the
VBoxHeadless process's own sockets, so a firewall must match that process.  The
lab notebook did it with a cgroup v1 ``net_cls`` classid and an iptables OUTPUT
chain.  Current hosts have cgroup v2, where net_cls does not exist; there the
VM runs in a dedicated cgroup (a systemd slice, or a directory in the unified
hierarchy without systemd) and nftables matches it with ``socket cgroupv2``.

Modes:

``systemd``  systemd is PID 1 (unified hierarchy at /sys/fs/cgroup, or a hybrid
             layout's /sys/fs/cgroup/unified): the slice ``<name>.slice``, which
             systemd nests by its dashes (``a-b.slice`` in ``a.slice``); the
             wrapper uses ``systemd-run --scope --slice``.
``cgroup2``  a cgroup2 mount without systemd (also a hybrid layout's
             /sys/fs/cgroup/unified): cgroup directory ``<mount>/<name>``.
``cgroup1``  fallback: a net_cls hierarchy, classid on ``<net_cls>/<name>``,
             iptables/ip6tables ``-m cgroup --cgroup`` jumping to a chain.

Rules are compared with what is loaded by loading the wanted rules into a
throw-away network namespace (``unshare --net``) and listing them there: the
kernel's own canonical form, so a second apply changes nothing.
"""

import ipaddress
import logging
import os
import re
import shlex
import shutil
import subprocess

from salt.exceptions import CommandExecutionError, SaltInvocationError

log = logging.getLogger(__name__)

__virtualname__ = "vbox_egress"

MODES = ("auto", "systemd", "cgroup2", "cgroup1")
NFT_CGROUP_PREFIX = "/sys/fs/cgroup"  # nft resolves `socket cgroupv2` paths below this
NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
CHAIN = re.compile(r"^[A-Za-z0-9_]{1,28}$")
# Replies to connections that came in (VirtualBox NAT port forwards, VRDE) and
# ICMP errors about allowed connections leave from the VM's process too: they
# must pass before the rejects.  A connection the VM opens itself to a
# destination that is not allowed is rejected at its first packet, so it never
# becomes established.
NFT_CT_ACCEPT = "ct state established,related accept"


def __virtual__():
    if not shutil.which("unshare"):
        return (False, "vbox_egress: unshare (util-linux) is missing")
    return __virtualname__


def _run(cmd, stdin=None, check=True):
    proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise CommandExecutionError(
            f"{' '.join(cmd)} failed (exit {proc.returncode}): {proc.stderr.strip()}"
        )
    return proc


def _mounts():
    with open("/proc/self/mounts", encoding="utf-8") as handle:
        for line in handle:
            dev, path, fstype, opts = line.split()[:4]
            yield dev, path.replace("\\040", " "), fstype, opts.split(",")


# --------------------------------------------------------------------------- discovery


def cgroup2_mount():
    """
    Where the cgroup2 (unified) hierarchy is mounted, or None.

    CLI Example:

    .. code-block:: bash

        salt-call vbox_egress.cgroup2_mount
    """
    for _, path, fstype, _ in _mounts():
        if fstype == "cgroup2":
            return path
    return None


def net_cls_mount():
    """
    Where a cgroup v1 hierarchy with the net_cls controller is mounted, or None.

    CLI Example:

    .. code-block:: bash

        salt-call vbox_egress.net_cls_mount
    """
    for _, path, fstype, opts in _mounts():
        if fstype == "cgroup" and "net_cls" in opts:
            return path
    return None


def detect_mode(mode="auto"):
    """
    The mode to use: ``mode`` itself when given and possible, else the first that
    the host supports of systemd, cgroup2, cgroup1.

    CLI Example:

    .. code-block:: bash

        salt-call vbox_egress.detect_mode
    """
    if mode not in MODES:
        raise SaltInvocationError(f"vbox_egress mode {mode!r} is not one of {', '.join(MODES)}")
    unified = cgroup2_mount()
    in_reach = unified is not None and (unified + "/").startswith(NFT_CGROUP_PREFIX + "/")
    systemd = os.path.isdir("/run/systemd/system") and in_reach
    possible = {
        "systemd": systemd,
        "cgroup2": cgroup2_mount() is not None,
        "cgroup1": net_cls_mount() is not None,
    }
    if mode != "auto":
        if not possible[mode]:
            why = {
                "systemd": "systemd is not running (no /run/systemd/system) or its cgroup2 "
                f"hierarchy is not below {NFT_CGROUP_PREFIX}",
                "cgroup2": "no cgroup2 file system is mounted",
                "cgroup1": "no cgroup v1 hierarchy with net_cls is mounted",
            }[mode]
            raise CommandExecutionError(f"vbox_egress mode {mode} is not possible: {why}")
        return mode
    for name in ("systemd", "cgroup2", "cgroup1"):
        if possible[name]:
            return name
    raise CommandExecutionError(
        "vbox_egress: this host has neither a cgroup2 mount nor a net_cls hierarchy"
    )


def slice_units(name):
    """
    The slices systemd nests ``<name>.slice`` in, outermost first: dashes mean
    nesting, so ``labsalt-vbox`` is ``labsalt.slice/labsalt-vbox.slice``.

    CLI Example:

    .. code-block:: bash

        salt-call vbox_egress.slice_units labsalt-vbox
    """
    if name.startswith("-") or name.endswith("-") or "--" in name:
        raise SaltInvocationError(
            f"vbox_egress cgroup name {name!r} is not a valid systemd slice name "
            "(no leading, trailing or double '-')"
        )
    parts = name.split("-")
    return ["-".join(parts[: depth + 1]) + ".slice" for depth in range(len(parts))]


def cgroup(name, mode="auto"):
    """
    Where the VM's cgroup lives: ``{mode, path, procs_file, nft_path, level}``.
    ``nft_path``/``level`` are what ``socket cgroupv2 level N "path"`` needs (the
    path is relative to /sys/fs/cgroup, the level is the depth in the cgroup2 tree).

    CLI Example:

    .. code-block:: bash

        salt-call vbox_egress.cgroup labsalt-vbox
    """
    if not NAME.match(str(name)):
        raise SaltInvocationError(
            f"vbox_egress cgroup name {name!r}: use letters, digits, '_', '.', '-' (max 64)"
        )
    mode = detect_mode(mode)
    if mode == "cgroup1":
        path = os.path.join(net_cls_mount(), name)
        return {"mode": mode, "path": path, "procs_file": os.path.join(path, "tasks")}
    root = cgroup2_mount()
    nested = slice_units(name) if mode == "systemd" else [name]
    path = os.path.join(root, *nested)
    if not path.startswith(NFT_CGROUP_PREFIX + "/"):
        raise CommandExecutionError(
            f"cgroup2 is mounted at {root}, outside {NFT_CGROUP_PREFIX}: nft cannot resolve "
            "`socket cgroupv2` paths there"
        )
    return {
        "mode": mode,
        "path": path,
        "procs_file": os.path.join(path, "cgroup.procs"),
        "nft_path": os.path.relpath(path, NFT_CGROUP_PREFIX),
        "level": len(nested),
    }


# --------------------------------------------------------------------------- validation


def validate(mapdata):
    """
    Checks of the merged parameters beyond the schema (``validator:`` in
    schema.yaml; read-only): destinations (ports need tcp or udp), the cgroup
    name as a systemd slice name, the classid's range, the table name.  Raises
    SaltInvocationError with one line naming the key.

    CLI Example:

    .. code-block:: bash

        salt-call vbox_egress.validate "$(salt-call --out json labsalt.mapdata vbox_egress)"
    """
    destinations(mapdata.get("allow") or [])
    name = str(mapdata.get("cgroup", ""))
    if mapdata.get("mode") in ("auto", "systemd"):
        try:
            slice_units(name)
        except SaltInvocationError as exc:
            raise SaltInvocationError(f"vbox_egress:cgroup: {exc}") from None
    if not CHAIN.match(str(mapdata.get("table", ""))):
        raise SaltInvocationError("vbox_egress:table: letters, digits and '_' only (max 28)")
    try:
        _parse_classid(mapdata.get("classid", "0x00100001"))
    except SaltInvocationError as exc:
        raise SaltInvocationError(f"vbox_egress:classid: {exc}") from None
    return True


# --------------------------------------------------------------------------- destinations


def destinations(allow):
    """
    Check and normalise the allowed destinations: a list of
    ``{address: IP or network, ports: [int, ...] (empty: all), protocol: tcp|udp|any}``.

    CLI Example:

    .. code-block:: bash

        salt-call vbox_egress.destinations '[{address: 10.0.0.0/8, ports: [443]}]'
    """
    if not isinstance(allow, list):
        raise SaltInvocationError("vbox_egress:allow must be a list of destinations")
    result = []
    for index, item in enumerate(allow):
        where = f"vbox_egress:allow:{index}"
        if not isinstance(item, dict) or "address" not in item:
            raise SaltInvocationError(f"{where}: needs an 'address' (IP or network)")
        try:
            net = ipaddress.ip_network(str(item["address"]), strict=False)
        except ValueError as exc:
            raise SaltInvocationError(f"{where}:address: {exc}") from exc
        protocol = item.get("protocol", "tcp")
        if protocol not in ("tcp", "udp", "any"):
            raise SaltInvocationError(f"{where}:protocol: {protocol!r} is not tcp, udp or any")
        ports = item.get("ports", [])
        if not isinstance(ports, list) or not all(
            isinstance(p, int) and 0 < p < 65536 for p in ports
        ):
            raise SaltInvocationError(f"{where}:ports: must be a list of ports 1-65535")
        if ports and protocol == "any":
            raise SaltInvocationError(f"{where}: ports need protocol tcp or udp")
        result.append(
            {"network": str(net), "family": net.version, "protocol": protocol, "ports": ports}
        )
    return result


# --------------------------------------------------------------------------- nftables


def render_nft(table, group, allow):
    """
    The nftables table text: the cgroup's packets jump to a chain that accepts the
    allowed destinations and rejects the rest (TCP reset, ICMP otherwise).

    CLI Example:

    .. code-block:: bash

        salt-call vbox_egress.render_nft labsalt_vbox_egress \\
            '{nft_path: unified/labsalt-vbox, level: 1}' '[{address: 10.0.0.1}]'
    """
    if not CHAIN.match(str(table)):
        raise SaltInvocationError(f"vbox_egress table {table!r}: letters, digits, '_' only")
    rules = []
    for dest in destinations(allow):
        ip = "ip" if dest["family"] == 4 else "ip6"
        match = f"{ip} daddr {dest['network']}"
        if dest["protocol"] != "any":
            match += f" meta l4proto {dest['protocol']}"
            if dest["ports"]:
                ports = ", ".join(str(p) for p in sorted(set(dest["ports"])))
                match += f" {dest['protocol']} dport {{ {ports} }}"
        rules.append(f"\t\t{match} accept")
    rules.insert(0, f"\t\t{NFT_CT_ACCEPT}")
    rules += [
        "\t\tmeta l4proto tcp reject with tcp reset",
        "\t\treject with icmpx admin-prohibited",
    ]
    return (
        f"table inet {table} {{\n"
        "\tchain output {\n"
        "\t\ttype filter hook output priority filter; policy accept;\n"
        f'\t\tsocket cgroupv2 level {group["level"]} "{group["nft_path"]}" jump vm\n'
        "\t}\n"
        "\tchain vm {\n" + "\n".join(rules) + "\n\t}\n}\n"
    )


def _canonical_nft(text, table):
    """Load ``text`` into a throw-away network namespace and list it back."""
    if not CHAIN.match(str(table)):
        raise SaltInvocationError(f"vbox_egress table {table!r}: letters, digits, '_' only")
    # The table name is an argument of the fixed script, never part of it.
    script = 'nft -f - && nft list table inet "$1"'
    return _run(["unshare", "--net", "sh", "-c", script, "sh", table], stdin=text).stdout


def _live_nft(table):
    proc = _run(["nft", "list", "table", "inet", table], check=False)
    return proc.stdout if proc.returncode == 0 else None


def _load_nft(text, table, exists):
    # One transaction: the old table goes and the new one comes, or nothing changes.
    head = f"table inet {table}\ndelete table inet {table}\n" if exists else ""
    _run(["nft", "-f", "-"], stdin=head + text)


# --------------------------------------------------------------------------- iptables (v1)


def render_iptables(chain, classid, allow, family=4):
    """
    iptables-restore text (filter table) for the cgroup v1 fallback: the chain
    with the allowed destinations of one address family, then the rejects.

    CLI Example:

    .. code-block:: bash

        salt-call vbox_egress.render_iptables LABSALT_VBOX 0x00100001 '[{address: 10.0.0.1}]'
    """
    if not CHAIN.match(str(chain)):
        raise SaltInvocationError(f"vbox_egress chain {chain!r}: letters, digits, '_' only")
    lines = [
        "*filter",
        f":{chain} - [0:0]",
        f"-A {chain} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
    ]
    for dest in destinations(allow):
        if dest["family"] != family:
            continue
        rule = f"-A {chain} -d {dest['network']}"
        if dest["protocol"] != "any":
            rule += f" -p {dest['protocol']}"
            if dest["ports"]:
                ports = ",".join(str(p) for p in sorted(set(dest["ports"])))
                rule += f" -m multiport --dports {ports}"
        lines.append(rule + " -j ACCEPT")
    unreachable = "icmp-admin-prohibited" if family == 4 else "icmp6-adm-prohibited"
    lines += [
        f"-A {chain} -p tcp -j REJECT --reject-with tcp-reset",
        f"-A {chain} -j REJECT --reject-with {unreachable}",
        "COMMIT",
    ]
    return "\n".join(lines) + "\n"


def _iptables(family):
    return "iptables" if family == 4 else "ip6tables"


def _canonical_chain(text, chain, family):
    if not CHAIN.match(str(chain)):
        raise SaltInvocationError(f"vbox_egress chain {chain!r}: letters, digits, '_' only")
    tool = _iptables(family)
    # Tool and chain are arguments of the fixed script, never part of it.
    script = '"$1-restore" --noflush && "$1" -w -S "$2"'
    return _run(["unshare", "--net", "sh", "-c", script, "sh", tool, chain], stdin=text).stdout


def _live_chain(chain, family):
    proc = _run([_iptables(family), "-w", "-S", chain], check=False)
    return proc.stdout if proc.returncode == 0 else None


def _jump(chain, classid):
    return ["OUTPUT", "-m", "cgroup", "--cgroup", str(classid), "-j", chain]


# --------------------------------------------------------------------------- apply


def _parse_classid(classid):
    try:
        value = int(str(classid), 0)
    except ValueError as exc:
        raise SaltInvocationError(f"vbox_egress classid {classid!r} is not a number") from exc
    if not 0 < value < 2**32:
        raise SaltInvocationError(f"vbox_egress classid {classid!r} is out of range")
    return value


def plan(name, allow, mode="auto", table="labsalt_vbox_egress", classid="0x00100001"):
    """
    What ``apply`` would change, without changing anything: a dict of
    ``{what: description}`` (empty: everything is in place).

    CLI Example:

    .. code-block:: bash

        salt-call vbox_egress.plan labsalt-vbox '[{address: 10.0.0.1, ports: [443]}]'
    """
    # Bad input is refused here, on every host, before anything is looked at: not
    # only where rules exist already to be compared with.
    destinations(allow)
    if not CHAIN.match(str(table)):
        raise SaltInvocationError(f"vbox_egress:table: {table!r}: letters, digits, '_' only")
    _parse_classid(classid)
    group = cgroup(name, mode)
    changes = {}
    if not os.path.isdir(group["path"]):
        changes["cgroup"] = f"create {group['path']}"
    if group["mode"] == "cgroup1":
        value = _parse_classid(classid)
        classfile = os.path.join(group["path"], "net_cls.classid")
        current = None
        if os.path.exists(classfile):
            with open(classfile, encoding="ascii") as handle:
                current = int(handle.read().strip() or 0)
        if current != value:
            changes["classid"] = f"{current} -> {value:#010x}"
        for family in (4, 6):
            text = render_iptables(table.upper(), value, allow, family)
            if _live_chain(table.upper(), family) != _canonical_chain(text, table.upper(), family):
                changes[f"{_iptables(family)} chain"] = f"load {table.upper()}"
            check = _run([_iptables(family), "-w", "-C", *_jump(table.upper(), value)], check=False)
            if check.returncode != 0:
                changes[f"{_iptables(family)} jump"] = f"OUTPUT -> {table.upper()}"
        return changes
    if not os.path.isdir(group["path"]):
        changes["nftables"] = f"load table inet {table} (after the cgroup exists)"
        return changes
    text = render_nft(table, group, allow)
    if _live_nft(table) != _canonical_nft(text, table):
        changes["nftables"] = f"load table inet {table}"
    return changes


def apply(name, allow, mode="auto", table="labsalt_vbox_egress", classid="0x00100001"):
    """
    Create the cgroup and load the rules; returns what changed (see ``plan``).
    The rules are checked (loaded into a throw-away namespace) before the live ones
    are replaced, in one transaction.

    CLI Example:

    .. code-block:: bash

        salt-call vbox_egress.apply labsalt-vbox '[{address: 10.0.0.1, ports: [443]}]'
    """
    destinations(allow)  # bad input: one clear error before anything is touched
    changes = plan(name, allow, mode, table, classid)
    if not changes:
        return {}
    group = cgroup(name, mode)
    if group["mode"] == "systemd":
        _start_slice(name, group)
    else:
        os.makedirs(group["path"], exist_ok=True)
    if group["mode"] == "cgroup1":
        value = _parse_classid(classid)
        chain = table.upper()
        for family in (4, 6):
            # validated in a throw-away namespace first; raises with the tool's message
            _canonical_chain(render_iptables(chain, value, allow, family), chain, family)
        # The chain and the jump exist before the cgroup's packets carry the classid:
        # never a moment where the VM's traffic is classified but unfiltered.
        for family in (4, 6):
            if f"{_iptables(family)} chain" in changes:
                _run(
                    [f"{_iptables(family)}-restore", "-w", "--noflush"],
                    stdin=render_iptables(chain, value, allow, family),
                )
            if f"{_iptables(family)} jump" in changes:
                _run([_iptables(family), "-w", "-A", *_jump(chain, value)])
        if "classid" in changes:
            with open(
                os.path.join(group["path"], "net_cls.classid"), "w", encoding="ascii"
            ) as handle:
                handle.write(str(value))
        return changes
    text = render_nft(table, group, allow)
    _canonical_nft(text, table)  # validates; raises with nft's message
    _load_nft(text, table, exists=_live_nft(table) is not None)
    return changes


def _start_slice(name, group):
    """Start the slice (no unit file needed) and check systemd put it where nft will look."""
    unit = f"{name}.slice"
    _run(["systemctl", "start", unit])
    where = _run(["systemctl", "show", "--property=ControlGroup", "--value", unit]).stdout.strip()
    expected = "/" + os.path.relpath(group["path"], cgroup2_mount())
    if where != expected or not os.path.isdir(group["path"]):
        raise CommandExecutionError(
            f"systemd put {unit} at cgroup {where or '(none)'}, not at {expected}"
        )


def _populated(group):
    """Whether any process is in the cgroup or below it (a systemd-run scope)."""
    if group["mode"] == "cgroup1":
        with open(group["procs_file"], encoding="ascii") as handle:
            return bool(handle.read().strip())
    with open(os.path.join(group["path"], "cgroup.events"), encoding="ascii") as handle:
        return "populated 1" in handle.read().splitlines()


def _stop_empty_parents(name, group):
    """Stop the outer slices systemd started for ours, if nothing else is in them."""
    parents = slice_units(name)[:-1]
    root = cgroup2_mount()
    for depth in range(len(parents), 0, -1):
        path = os.path.join(root, *parents[:depth])
        if not os.path.isdir(path):
            continue
        children = [entry for entry in os.scandir(path) if entry.is_dir()]
        if children or _populated({"mode": group["mode"], "path": path}):
            return
        _run(["systemctl", "stop", parents[depth - 1]])


def existing(name, mode="auto", table="labsalt_vbox_egress", classid="0x00100001"):
    """
    What of the filter exists now: ``{what: description}`` ({} when nothing).

    CLI Example:

    .. code-block:: bash

        salt-call vbox_egress.existing labsalt-vbox
    """
    group = cgroup(name, mode)
    found = {}
    if group["mode"] == "cgroup1":
        value = _parse_classid(classid)
        for family in (4, 6):
            tool = _iptables(family)
            if _run([tool, "-w", "-C", *_jump(table.upper(), value)], check=False).returncode == 0:
                found[f"{tool} jump"] = f"OUTPUT -> {table.upper()}"
            if _live_chain(table.upper(), family) is not None:
                found[f"{tool} chain"] = table.upper()
    elif _live_nft(table) is not None:
        found["nftables"] = f"table inet {table}"
    if os.path.isdir(group["path"]):
        found["cgroup"] = group["path"]
    return found


def remove(name, mode="auto", table="labsalt_vbox_egress", classid="0x00100001"):
    """
    Remove the rules and the cgroup (refused while a process is still in it);
    returns what was removed.

    CLI Example:

    .. code-block:: bash

        salt-call vbox_egress.remove labsalt-vbox
    """
    group = cgroup(name, mode)
    found = existing(name, mode, table, classid)
    if "cgroup" in found and _populated(group):
        raise CommandExecutionError(
            f"cgroup {group['path']} still has processes (a VM running?); "
            "stop them before removing the filter"
        )
    chain = table.upper()
    for family in (4, 6):
        tool = _iptables(family)
        if f"{tool} jump" in found:
            _run([tool, "-w", "-D", *_jump(chain, _parse_classid(classid))])
        if f"{tool} chain" in found:
            _run([tool, "-w", "-F", chain])
            _run([tool, "-w", "-X", chain])
    if "nftables" in found:
        _run(["nft", "delete", "table", "inet", table])
    if "cgroup" in found:
        if group["mode"] == "systemd":
            _run(["systemctl", "stop", f"{name}.slice"])
            if os.path.isdir(group["path"]):
                raise CommandExecutionError(f"systemd left {group['path']} after stopping it")
            _stop_empty_parents(name, group)
        elif os.path.isdir(group["path"]):
            os.rmdir(group["path"])
    return {what: f"removed {desc}" for what, desc in found.items()}


def wrapper_context(name, mode="auto", table="labsalt_vbox_egress"):
    """
    What the wrapper script needs: mode, cgroup file, and the line the loaded rules
    must contain (the wrapper refuses to run anything while the filter is missing).

    CLI Example:

    .. code-block:: bash

        salt-call vbox_egress.wrapper_context labsalt-vbox
    """
    if not CHAIN.match(str(table)):
        raise SaltInvocationError(f"vbox_egress table {table!r}: letters, digits, '_' only")
    group = cgroup(name, mode)
    if group["mode"] == "cgroup1":
        check = [_iptables(4), "-w", "-S", table.upper()]
        marker = f"-N {table.upper()}"
    else:
        check = ["nft", "list", "table", "inet", table]
        marker = f'socket cgroupv2 level {group["level"]} "{group["nft_path"]}" jump vm'
    # Every value reaches the shell script quoted (the schema allows no shell
    # metacharacters in these names; this is the second line of defence).
    quote = shlex.quote
    return {
        "mode": group["mode"],
        "slice": quote(f"{name}.slice"),
        "procs_file": quote(group["procs_file"]),
        "cgroup_dir": quote(os.path.dirname(group["procs_file"])),
        "check": " ".join(quote(part) for part in check),
        "marker": quote(marker),
    }
