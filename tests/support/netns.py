"""
Network namespaces for tests: each one a private host reachable only from this machine.

A namespace gets one veth pair; the host end and the namespace end share a /30
from 198.18.0.0/15 (RFC 2544's range for network test labs), and a /126 from a
private IPv6 prefix.  The namespace has no default route, so nothing inside it
can reach any address but the host end; before use, the route to the namespace
is checked to leave through that veth.  Allocation is serialised with a lock
file, so several test runs (or formulas' tests) on one machine never collide.

    with netns.namespace("bind") as ns:
        ns.run("ip", "addr")
        server = ns.popen(["named", "-g", ...])
        ...  # talk to ns.addr from the host; ns.host_addr from inside
"""

import contextlib
import fcntl
import ipaddress
import itertools
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

POOL = ipaddress.ip_network("198.18.0.0/15")
POOL6 = ipaddress.ip_network("fd00:1ab5:a17::/64")
LOCK = Path("/run/labsalt-tests/netns.lock")
_counter = itertools.count()


def sh(*cmd, check=True, **kwargs):
    """Run a command, return CompletedProcess with text output; raise with its stderr."""
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} exited {proc.returncode}: {proc.stderr}")
    return proc


def _used_subnets():
    out = sh("ip", "-4", "-o", "addr", "show").stdout
    used = set()
    for addr in re.findall(r"inet (\S+)", out):
        iface = ipaddress.ip_interface(addr)
        if iface.ip in POOL:
            used.add(ipaddress.ip_network(f"{iface.ip}/30", strict=False))
    return used


def _stale_cleanup():
    """Remove namespaces left by test processes that no longer exist."""
    for name in sh("ip", "netns", "list", check=False).stdout.split():
        match = re.fullmatch(r"lt\d*[a-z]*-(\d+)-\d+", name)
        if match and not Path(f"/proc/{match.group(1)}").exists():
            sh("ip", "netns", "delete", name, check=False)


@dataclass
class Namespace:
    name: str
    veth_host: str
    veth_ns: str
    host_addr: str
    addr: str
    host_addr6: str
    addr6: str
    procs: list = field(default_factory=list)

    @property
    def path(self):
        return f"/run/netns/{self.name}"

    def command(self, *cmd):
        return ["ip", "netns", "exec", self.name, *map(str, cmd)]

    def run(self, *cmd, check=True, **kwargs):
        """Run a command inside the namespace and wait for it."""
        return sh(*self.command(*cmd), check=check, **kwargs)

    def popen(self, cmd, **kwargs):
        """Start a long-running process inside the namespace; stopped on close()."""
        kwargs.setdefault("stdout", subprocess.DEVNULL)
        kwargs.setdefault("stderr", subprocess.DEVNULL)
        kwargs.setdefault("start_new_session", True)
        proc = subprocess.Popen(self.command(*cmd), **kwargs)
        self.procs.append(proc)
        return proc

    def close(self):
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, 15)
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, 9)
                    proc.wait()
        # Any process still inside (a daemon that forked away) is killed with the namespace.
        pids = sh("ip", "netns", "pids", self.name, check=False).stdout.split()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), 9)
        sh("ip", "link", "delete", self.veth_host, check=False)
        sh("ip", "netns", "delete", self.name, check=False)


def create(prefix="lt"):
    """Create a namespace with a veth link to the host; see the module docstring."""
    prefix = re.sub(r"[^a-z]", "", prefix.lower())[:5] or "x"
    index = next(_counter)
    name = f"lt{prefix}-{os.getpid()}-{index}"
    # Interface names are at most 15 characters.
    tag = f"{os.getpid() % 100000}{index}"[-8:]
    veth_host, veth_ns = f"lth{tag}", f"ltn{tag}"
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _stale_cleanup()
        used = _used_subnets()
        subnet = next(s for s in POOL.subnets(new_prefix=30) if s not in used)
        host_ip, ns_ip = list(subnet.hosts())
        offset = int(subnet.network_address) - int(POOL.network_address)
        host6 = POOL6.network_address + offset + 1
        ns6 = POOL6.network_address + offset + 2
        sh("ip", "netns", "add", name)
        ns = Namespace(name, veth_host, veth_ns, str(host_ip), str(ns_ip), str(host6), str(ns6))
        try:
            sh("ip", "link", "add", veth_host, "type", "veth", "peer", "name", veth_ns)
            sh("ip", "link", "set", veth_ns, "netns", name)
            sh("ip", "addr", "add", f"{host_ip}/30", "dev", veth_host)
            sh("ip", "-6", "addr", "add", f"{host6}/126", "dev", veth_host, "nodad")
            sh("ip", "link", "set", veth_host, "up")
            ns.run("ip", "addr", "add", f"{ns_ip}/30", "dev", veth_ns)
            ns.run("ip", "-6", "addr", "add", f"{ns6}/126", "dev", veth_ns, "nodad")
            ns.run("ip", "link", "set", veth_ns, "up")
            ns.run("ip", "link", "set", "lo", "up")
        except Exception:
            ns.close()
            raise
    route = sh("ip", "route", "get", str(ns_ip)).stdout
    if f"dev {veth_host}" not in route:
        ns.close()
        raise RuntimeError(f"route to {ns_ip} does not use {veth_host}: {route}")
    return ns


@contextlib.contextmanager
def namespace(prefix="lt"):
    ns = create(prefix)
    try:
        yield ns
    finally:
        ns.close()
