"""
The throw-away hosts themselves: booted, isolated, distinct, reachable by
salt-ssh, apt through the proxy, and gone without a trace when stopped.
"""

import contextlib

import pytest

from tests.support import hosts


@pytest.fixture(scope="module")
def pair(host_factory):
    return host_factory.start_many(["alpha", "beta"])


def test_hosts_boot_systemd_with_their_own_identity(pair):
    alpha, beta = pair
    for host in pair:
        assert host.run("systemctl", "is-system-running").stdout.strip() in ("running", "degraded")
        assert host.run("hostname").stdout.strip() == host.name
        assert host.run("systemctl", "is-active", "ssh").stdout.strip() == "active"
        assert host.path("/etc/hostname").read_text().strip() == host.name
    ids = {h.run("cat", "/etc/machine-id").stdout.strip() for h in pair}
    assert len(ids) == 2 and all(len(i) == 32 for i in ids)
    assert alpha.addr != beta.addr


def test_host_network_reaches_only_this_machine(pair):
    alpha, beta = pair
    routes = alpha.run("ip", "-4", "route").stdout
    assert "default" not in routes
    assert alpha.run("ip", "-4", "-o", "addr", "show", "scope", "global").stdout.count("inet ") == 1
    # No route from one host to the other, nor anywhere else.
    assert alpha.run("ip", "route", "get", beta.addr, check=False).returncode != 0


def test_writes_stay_in_the_host(pair, host_factory):
    alpha, beta = pair
    alpha.run("sh", "-c", "echo hello > /etc/labsalt-probe")
    assert alpha.path("/etc/labsalt-probe").read_text() == "hello\n"
    assert not beta.path("/etc/labsalt-probe").exists()
    assert not (hosts.Image().tree / "etc/labsalt-probe").exists()


def test_command_errors_carry_output(pair):
    with pytest.raises(hosts.HostCommandError, match="No such file"):
        pair[0].run("ls", "/nonexistent")
    assert pair[0].run("cat", input="piped").stdout == "piped"


def test_salt_ssh_sees_a_booted_systemd(pair):
    alpha, _ = pair
    grains = alpha.call("grains.item", "init", "id", "os", "osmajorrelease")
    assert grains == {"init": "systemd", "id": "alpha", "os": "Debian", "osmajorrelease": 12}


def test_apt_in_a_host_goes_through_the_proxy_to_debian_only(pair):
    _, beta = pair
    beta.run("apt-get", "install", "-y", "-q", "hello")
    assert beta.run("hello").stdout.strip() == "Hello, world!"
    # The proxy forwards to the Debian mirror and nowhere else.
    probe = beta.run(
        "python3", "-c",
        "import urllib.request as u, sys; "
        "o = u.build_opener(u.ProxyHandler({'http': sys.argv[1]}));"
        "o.open('http://example.com/', timeout=10)",
        f"http://{beta.ns.host_addr}:{hosts.APT_PROXY_PORT}",
        check=False,
    )  # fmt: skip
    assert probe.returncode != 0 and "403" in probe.stderr


def test_hosts_start_with_what_a_fresh_cloud_vm_has(pair):
    """systemd, sshd, python3 (and what booting needs): nothing a formula might rely on."""
    assert set(hosts.BASE_PACKAGES) == {
        "systemd", "systemd-sysv", "dbus", "openssh-server", "python3", "iproute2"
    }  # fmt: skip
    alpha, _ = pair
    listed = alpha.run("dpkg-query", "-W", "-f", "${Package} ${Priority}\\n").stdout.split("\n")
    installed = dict(line.split(" ", 1) for line in listed if line)
    minbase = [n for n, prio in installed.items() if prio in ("required", "important")]
    closure = alpha.run(
        "apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests",
        "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances", "--installed",
        *hosts.BASE_PACKAGES, *minbase,
    ).stdout  # fmt: skip
    needed = {line.strip().split()[-1].strip("<>") for line in closure.splitlines()}
    extra = set(installed) - needed - set(minbase)
    assert not extra, f"beyond minbase and {hosts.BASE_PACKAGES}: {sorted(extra)}"
    # Tools formulas install themselves must not be there already.
    for tool in ("gpg", "cron", "xmllint", "lstopo-no-graphics", "curl", "sudo"):
        assert alpha.run("sh", "-c", f"command -v {tool}", check=False).returncode != 0, tool


def test_stopped_host_leaves_nothing_behind(host_factory):
    host = host_factory.start("gamma")
    state, workdir, ns = host.state, host.workdir, host.ns.name
    nspawn, leader = host.proc.pid, host.leader
    cgroups = hosts._read(state / "cgroups").split()
    assert cgroups and all(hosts.Path(c).is_dir() for c in cgroups)
    host_factory.stop(host)
    assert not state.exists() and not workdir.exists()
    assert ns not in hosts.netns.sh("ip", "netns", "list").stdout
    mounts = hosts.Path("/proc/self/mountinfo").read_text()
    assert str(workdir) not in mounts
    # No process of the host is left: not systemd-nspawn, not the host's systemd,
    # nothing whose command line names the host's root.
    assert not hosts._alive(nspawn) and not hosts._alive(leader)
    for proc in hosts.Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            assert str(workdir) not in (proc / "cmdline").read_text(errors="replace"), proc
    assert not any(hosts.Path(c).exists() for c in cgroups)
    # The apt proxy stopped with it.
    assert host.proxy.socket.fileno() == -1
