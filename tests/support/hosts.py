"""
Throw-away Debian 12 hosts for end-to-end tests: booted systemd, sshd, own network.

    factory = HostFactory()
    host = factory.start("web")           # about 1-2 s once the image is cached
    host.run("systemctl", "is-active", "ssh")
    host.apply("myformula", pillar={"myformula": {...}})   # labsalt ssh ... --out json
    factory.stop_all()

How a host is made:

- **Image**: ``debootstrap --variant=minbase`` of bookworm with systemd, dbus, sshd,
  python3 and iproute2, prepared once (empty machine-id, a test SSH key for root,
  apt package lists) and cached under ``/var/cache/labsalt-tests/`` as a zstd
  tarball plus its extracted tree, keyed by a hash of the recipe.  Building is
  serialised by a file lock, so concurrent runs build it once.  ``start(name,
  packages=[...])`` uses a derived image with those Debian packages pre-installed
  (cached the same way), for tests that should not pay for the install.
- **Root filesystem**: an overlayfs per host (lower: the cached tree, upper: a
  per-host tmpfs), so a host starts in well under a second and is thrown away.
- **Network**: a namespace with one veth pair from ``tests/support/netns.py``;
  the host has ``host.addr`` and no route anywhere else.
- **Boot**: ``systemd-nspawn --boot --keep-unit --register=no`` in a cgroup of its
  own (no system bus needed), so service and timer states are real.
- **apt**: hosts cannot reach the internet; apt in a host uses an HTTP proxy that
  the test process runs on the host end of the veth (``AptProxy``), which forwards
  only to the Debian mirror and keeps downloaded ``.deb`` files in the cache.
  Servers a test runs itself on the host end of the veth (an apt repository
  of its own, tests/support/aptrepo.py) are reached directly.

Everything a host leaves on this machine (process, mount, cgroup, namespace) is
recorded under ``/run/labsalt-tests/hosts/`` and removed on stop; what a killed
test run left behind is removed when the next factory starts.
"""

import base64
import contextlib
import fcntl
import hashlib
import http.server
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

from tests.support import netns

REPO = Path(__file__).resolve().parents[2]
SUITE = "bookworm"
MIRROR = os.environ.get("LABSALT_DEBIAN_MIRROR", "http://deb.debian.org/debian")
BASE_PACKAGES = ("systemd", "systemd-sysv", "dbus", "openssh-server", "python3", "iproute2")
# Bump when the image preparation below changes, so caches are rebuilt.
RECIPE_VERSION = 1
# Package lists go stale when the mirror moves on (point releases); rebuild after this.
MAX_IMAGE_AGE = 7 * 86400
CACHE = Path(os.environ.get("LABSALT_TESTS_CACHE", "/var/cache/labsalt-tests"))
RUNDIR = Path("/run/labsalt-tests/hosts")
WORKDIR = Path(os.environ.get("LABSALT_HOSTS_WORKDIR", "/var/tmp/labsalt-hosts"))
CGROUP_ROOTS = (Path("/sys/fs/cgroup/systemd"), Path("/sys/fs/cgroup/unified"))
APT_PROXY_PORT = 3142
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BOOT_TIMEOUT = 90
HOST_TMPFS_SIZE = os.environ.get("LABSALT_HOST_TMPFS_SIZE", "8G")


class HostError(RuntimeError):
    """A host could not be built, started or reached."""


class HostCommandError(subprocess.CalledProcessError):
    """A command inside a host failed; the message carries its output."""

    def __str__(self):
        return f"{super().__str__()}\nstdout: {self.stdout}\nstderr: {self.stderr}"


class ApplyError(RuntimeError):
    """salt-ssh could not run the states (render error, unreachable host, ...)."""


def unavailable():
    """Why throw-away hosts cannot run on this machine, or None when they can."""
    if os.geteuid() != 0:
        return "throw-away hosts need root (network namespaces, overlayfs, systemd-nspawn)"
    for tool in ("debootstrap", "systemd-nspawn", "zstd", "nsenter", "ssh-keygen"):
        if not shutil.which(tool):
            return f"{tool} is not installed (scripts/install-deps harness)"
    if "overlay" not in Path("/proc/filesystems").read_text():
        return "the kernel has no overlayfs"
    return None


def _sh(*cmd, **kwargs):
    return netns.sh(*map(str, cmd), **kwargs)


# --------------------------------------------------------------------------- image


class Image:
    """A prepared root tree (overlay lower dir) and the SSH key that opens its root account."""

    def __init__(self, packages=()):
        self.packages = tuple(sorted(set(packages) - set(BASE_PACKAGES)))
        recipe = json.dumps([RECIPE_VERSION, SUITE, MIRROR, BASE_PACKAGES, self.packages])
        digest = hashlib.sha256(recipe.encode()).hexdigest()[:12]
        self.key = f"debian12-{digest}"
        self.tarball = CACHE / f"{self.key}.tar.zst"
        self.ssh_key = CACHE / f"{self.key}.id_ed25519"
        # Trees are never renamed or replaced while hosts may use them as their
        # overlay's lower dir: a rebuild makes a new one and points to it.
        self.pointer = CACHE / f"{self.key}.current"

    @property
    def tree(self):
        name = _read(self.pointer)
        return CACHE / name if name else CACHE / f"{self.key}-none"

    def ensure(self):
        """Build (or extract) the image once; concurrent callers wait on a lock."""
        if self._fresh():
            return self
        CACHE.mkdir(parents=True, exist_ok=True)
        with open(CACHE / f"{self.key}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if self._fresh():
                return self
            if self.tarball.is_file() and self._age(self.tarball) < MAX_IMAGE_AGE:
                self._extract()
            else:
                self._build()
        return self

    @staticmethod
    def _age(path):
        return time.time() - path.stat().st_mtime

    def _fresh(self):
        ready = self.tree / ".labsalt-image"
        return ready.is_file() and self.ssh_key.is_file() and self._age(ready) < MAX_IMAGE_AGE

    def _scratch(self):
        scratch = CACHE / f".build-{self.key}-{os.getpid()}"
        if scratch.exists():
            shutil.rmtree(scratch)
        return scratch

    def _extract(self):
        scratch = self._scratch()
        scratch.mkdir()
        _sh("tar", "-C", scratch, "-I", "zstd -T0", "-xpf", self.tarball)
        self._install(scratch)

    def _install(self, scratch):
        """Make a finished tree the current one; remove old trees no host uses."""
        final = CACHE / f"{self.key}-{time.strftime('%Y%m%d%H%M%S')}"
        scratch.rename(final)
        tmp = self.pointer.with_suffix(".tmp")
        tmp.write_text(final.name + "\n")
        tmp.rename(self.pointer)
        mounts = Path("/proc/self/mountinfo").read_text()
        for old in [CACHE / self.key, *CACHE.glob(f"{self.key}-*")]:  # (and the old layout)
            if old.is_dir() and old != final and f"lowerdir={old}" not in mounts:
                shutil.rmtree(old, ignore_errors=True)

    def _build(self):
        scratch = self._scratch()
        sys.stderr.write(f"hosts: building image {self.key} (once; about a minute)\n")
        if self.packages:
            base = Image().ensure()
            _sh("cp", "-a", "--reflink=auto", base.tree, scratch)
            shutil.copy(base.ssh_key, f"{self.ssh_key}.tmp")
            self._chroot_apt(scratch, "install", "-y", "-q", *self.packages)
        else:
            _sh(
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(BASE_PACKAGES)}",
                SUITE,
                scratch,
                MIRROR,
                timeout=900,
            )
            self._prepare(scratch)
        _sh("chroot", scratch, "apt-get", "clean")
        (scratch / ".labsalt-image").write_text(json.dumps({"packages": self.packages}) + "\n")
        Path(f"{self.ssh_key}.tmp").rename(self.ssh_key)
        Path(f"{self.ssh_key}.tmp.pub").unlink(missing_ok=True)
        tmp_tar = self.tarball.with_suffix(".tmp")
        _sh("tar", "-C", scratch, "-I", "zstd -T0 -3", "-cpf", tmp_tar, ".", timeout=600)
        tmp_tar.rename(self.tarball)
        self._install(scratch)

    def _prepare(self, root):
        """Make a debootstrap tree a clonable host image."""
        # Every clone gets its own machine id at first boot.
        (root / "etc/machine-id").write_text("")
        dbus_id = root / "var/lib/dbus/machine-id"
        dbus_id.unlink(missing_ok=True)
        dbus_id.parent.mkdir(parents=True, exist_ok=True)
        dbus_id.symlink_to("/etc/machine-id")
        # A test key for root; hosts are only reachable from this machine.
        key = Path(f"{self.ssh_key}.tmp")
        key.unlink(missing_ok=True)
        _sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "labsalt-tests", "-f", key)
        ssh_dir = root / "root/.ssh"
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        (ssh_dir / "authorized_keys").write_text(Path(f"{key}.pub").read_text())
        (ssh_dir / "authorized_keys").chmod(0o600)
        (root / "etc/ssh/sshd_config.d/labsalt-tests.conf").write_text(
            "# throw-away test host: key login for root only, no DNS lookups\n"
            "PermitRootLogin prohibit-password\nPasswordAuthentication no\nUseDNS no\n"
        )
        # Smaller and faster package installs; no documentation in test hosts.
        (root / "etc/dpkg/dpkg.cfg.d/01labsalt-nodoc").write_text(
            "path-exclude /usr/share/doc/*\npath-include /usr/share/doc/*/copyright\n"
            "path-exclude /usr/share/man/*\npath-exclude /usr/share/locale/*\n"
            "path-include /usr/share/locale/locale.alias\n"
        )
        (root / "etc/apt/apt.conf.d/01labsalt-tests").write_text(
            'Acquire::Languages "none";\nAcquire::http::Pipeline-Depth "0";\n'
        )
        (root / "etc/apt/sources.list").write_text(f"deb {MIRROR} {SUITE} main\n")
        # Nothing to do in a container without consoles or hardware.
        for unit in ("getty@tty1.service", "systemd-udevd.service"):
            with contextlib.suppress(FileNotFoundError):
                (root / "etc/systemd/system" / unit).unlink()
            (root / "etc/systemd/system" / unit).symlink_to("/dev/null")
        self._chroot_apt(root, "update", "-q")

    @staticmethod
    def _chroot_apt(root, *args):
        policy = root / "usr/sbin/policy-rc.d"
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
        resolv = root / "etc/resolv.conf"
        had_resolv = resolv.exists() or resolv.is_symlink()
        if not had_resolv:
            shutil.copy("/etc/resolv.conf", resolv)
        try:
            env = {"PATH": PATH, "DEBIAN_FRONTEND": "noninteractive", "LANG": "C.UTF-8"}
            _sh("chroot", root, "apt-get", *args, env=env, timeout=900)
        finally:
            policy.unlink()
            if not had_resolv:
                resolv.unlink()


# --------------------------------------------------------------------------- apt proxy


class AptProxy(http.server.ThreadingHTTPServer):
    """
    An HTTP proxy for apt inside the hosts, bound to the host end of one veth.
    Forwards GETs to the Debian mirror only; ``pool/`` files (immutable, versioned
    names) are kept in the cache so later runs install without downloading.
    """

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr):
        super().__init__((addr, APT_PROXY_PORT), _AptHandler)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.shutdown()
        self.server_close()


class _AptHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    allowed = (MIRROR.rstrip("/") + "/",)
    cache = CACHE / "apt"

    def log_message(self, format, *args):  # noqa: A002  (BaseHTTPRequestHandler's name)
        pass

    def do_GET(self):
        url = self.path
        if not url.startswith(self.allowed) or ".." in url:
            self._reply(403, b"labsalt test proxy: only the Debian mirror\n")
            return
        cached = self.cache / url.split("://", 1)[1] if "/pool/" in url else None
        if cached and cached.is_file():
            self._reply(200, cached.read_bytes(), "application/vnd.debian.binary-package")
            return
        try:
            with urllib.request.urlopen(url, timeout=120) as upstream:
                body = upstream.read()
                ctype = upstream.headers.get("Content-Type", "application/octet-stream")
        except urllib.error.HTTPError as exc:
            self._reply(exc.code, exc.reason.encode())
            return
        except OSError as exc:
            self._reply(502, f"labsalt test proxy: {exc}".encode())
            return
        if cached:
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_name(f".{cached.name}.{os.getpid()}.{threading.get_ident()}")
            tmp.write_bytes(body)
            tmp.rename(cached)
        self._reply(200, body, ctype)

    def _reply(self, code, body, ctype="text/plain"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


# --------------------------------------------------------------------------- hosts


def _labsalt():
    """The user's entry point: the venv's console script, else ``python -m labsalt``."""
    script = Path(sys.executable).parent / "labsalt"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "labsalt"]


def roster_entry(host):
    return {
        "host": host.addr,
        "user": "root",
        "priv": str(host.image.ssh_key),
        "timeout": 15,
        "ssh_options": [
            # throw-away hosts with a shared image key: never record or ask
            "StrictHostKeyChecking=no",
            "UserKnownHostsFile=/dev/null",
            "LogLevel=ERROR",
        ],
    }


def write_roster(path, hosts, extra=None):
    """A salt-ssh roster for ``hosts`` (plus raw ``extra`` entries); returns the path."""
    data = {host.name: roster_entry(host) for host in hosts}
    data.update(extra or {})
    Path(path).write_text(yaml.safe_dump(data, sort_keys=True))
    return Path(path)


def parse_ssh_output(proc, target):
    """The JSON that ``labsalt ssh --out json`` printed, as {minion: return}."""
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise ApplyError(
            f"labsalt ssh to {target} printed no JSON (exit {proc.returncode}): "
            f"{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
        ) from exc


def _ssh_failure(ret):
    """salt-ssh's shape for a host it could not run on: {retcode, stderr, stdout, ...}."""
    return isinstance(ret, dict) and {"retcode", "stderr", "stdout"} <= set(ret)


def _is_state_return(ret):
    return isinstance(ret, dict) and all(
        isinstance(v, dict) and "result" in v and "__id__" in v for v in ret.values()
    )


class Host:
    """One running throw-away host; made by ``HostFactory.start``."""

    def __init__(self, factory, name, image, uid):
        self.factory = factory
        self.name = name
        self.image = image
        self.uid = uid
        self.state = RUNDIR / uid
        self.workdir = WORKDIR / uid
        self.root = self.workdir / "root"
        self.ns = None
        self.proxy = None
        self.proc = None
        self.leader = None
        self.roster = self.workdir / "roster"

    @property
    def addr(self):
        return self.ns.addr

    def __repr__(self):
        return f"<Host {self.name} {self.addr if self.ns else '-'}>"

    # ---- lifecycle

    def _launch(self):
        self.state.mkdir(parents=True)
        (self.state / "owner").write_text(str(os.getpid()))
        (self.state / "workdir").write_text(str(self.workdir))
        self.ns = netns.create("host")
        (self.state / "netns").write_text(self.ns.name)
        # The host's writes live in RAM: fast, and removed at once by one umount.
        self.workdir.mkdir(parents=True)
        _sh(
            "mount", "-t", "tmpfs", "-o", f"size={HOST_TMPFS_SIZE},mode=0755", "tmpfs", self.workdir
        )
        (self.state / "tmpfs").write_text(str(self.workdir))
        for sub in ("upper", "work", "root"):
            (self.workdir / sub).mkdir()
        lower, upper, work = self.image.tree, self.workdir / "upper", self.workdir / "work"
        _sh(
            "mount", "-t", "overlay", "overlay", "-o",
            f"lowerdir={lower},upperdir={upper},workdir={work}", self.root,
        )  # fmt: skip
        (self.state / "mounted").write_text(str(self.root))
        (self.root / "etc/hostname").write_text(f"{self.name}\n")
        (self.root / "etc/hosts").write_text(
            f"127.0.0.1\tlocalhost\n{self.ns.addr}\t{self.name}\n"
            "::1\tlocalhost ip6-localhost ip6-loopback\n"
        )
        self.proxy = AptProxy(self.ns.host_addr)
        # The Debian mirror through the proxy; servers a test runs on this veth's
        # host end (its own apt repository, tests/support/aptrepo.py) directly.
        (self.root / "etc/apt/apt.conf.d/02labsalt-proxy").write_text(
            f'Acquire::http::Proxy "http://{self.ns.host_addr}:{APT_PROXY_PORT}/";\n'
            f'Acquire::http::Proxy::{self.ns.host_addr} "DIRECT";\n'
        )
        cgroups = [base / f"labsalt-{self.uid}" for base in CGROUP_ROOTS if base.is_dir()]
        for cgroup in cgroups:
            cgroup.mkdir()
        (self.state / "cgroups").write_text("\n".join(map(str, cgroups)))
        log = open(self.workdir / "nspawn.log", "wb")  # noqa: SIM115  (kept by the child)
        cmd = [
            "systemd-nspawn", "--quiet", "--boot", "-D", str(self.root),
            "--register=no", "--keep-unit", "--console=passive",
            f"--network-namespace-path={self.ns.path}", f"--machine={self.name}",
            # the netns is the host's own: let it manage its firewall (nftables)
            "--capability=CAP_NET_ADMIN",
        ]  # fmt: skip
        # A host dies with the test process, unless started from a thread (Linux
        # signals a child when the thread that forked it ends); a killed run's
        # hosts are removed by the next factory either way.
        die_with_parent = threading.current_thread() is threading.main_thread()
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=lambda: _enter_cgroups(cgroups, die_with_parent),  # noqa: PLW1509
        )
        log.close()
        (self.state / "nspawn").write_text(str(self.proc.pid))

    def _ready(self):
        self.leader = self._find_leader()
        self._wait_ready()
        write_roster(self.roster, [self])

    def _find_leader(self):
        """PID (on this machine) of the host's systemd, a child of systemd-nspawn."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise HostError(f"{self.name}: systemd-nspawn exited: {self._log()}")
            for task in Path(f"/proc/{self.proc.pid}/task").iterdir():
                for child in (task / "children").read_text().split():
                    with contextlib.suppress(OSError):
                        comm = Path(f"/proc/{child}/comm").read_text().strip()
                        own_ns = os.readlink(f"/proc/{child}/ns/pid") != os.readlink(
                            "/proc/self/ns/pid"
                        )
                        if comm == "systemd" and own_ns:
                            return int(child)
            time.sleep(0.05)
        raise HostError(f"{self.name}: systemd did not start in the container: {self._log()}")

    def _wait_ready(self):
        deadline = time.monotonic() + BOOT_TIMEOUT
        state = ""
        while time.monotonic() < deadline:
            proc = self.run("systemctl", "is-system-running", check=False)
            state = proc.stdout.strip()
            if state in ("running", "degraded"):
                break
            if self.proc.poll() is not None:
                raise HostError(f"{self.name}: the container exited: {self._log()}")
            time.sleep(0.1)
        else:
            raise HostError(f"{self.name}: systemd is '{state}' after {BOOT_TIMEOUT}s")
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection((self.addr, 22), 2) as s:
                s.settimeout(5)
                if s.recv(64).startswith(b"SSH-2.0"):
                    return
            time.sleep(0.1)
        raise HostError(f"{self.name}: sshd does not answer on {self.addr}:22")

    def _log(self):
        with contextlib.suppress(OSError):
            return (self.workdir / "nspawn.log").read_text(errors="replace")[-3000:]
        return ""

    def stop(self):
        """Shut the host down and remove everything it left on this machine."""
        if self.proc and self.proc.poll() is None:
            # Throw-away: no orderly shutdown.  Killing the host's PID 1 ends every
            # process in its PID namespace, and systemd-nspawn then exits.
            if self.leader:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.leader, signal.SIGKILL)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.proxy:
            self.proxy.close()
        _remove_leftovers(self.state)

    # ---- use

    def run(self, *cmd, check=True, input=None, timeout=300):  # noqa: A002  (subprocess's name)
        """Run a command inside the booted host (all its namespaces, a clean environment)."""
        enter = ["nsenter", "-t", str(self.leader), "-a", "--", "env", "-i", f"PATH={PATH}"]
        enter += ["HOME=/root", "LANG=C.UTF-8", "TERM=dumb"]
        proc = subprocess.run(
            [*enter, *map(str, cmd)],
            input=input,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise HostCommandError(proc.returncode, list(cmd), proc.stdout, proc.stderr)
        return proc

    def put(self, path, content, mode="0644"):
        """Write ``content`` (text or bytes) to ``path`` inside the host, making its directory."""
        data = content.encode() if isinstance(content, str) else content
        script = 'mkdir -p "$(dirname "$1")" && base64 -d > "$1" && chmod "$2" "$1"'
        self.run("sh", "-c", script, "put", path, mode, input=base64.b64encode(data).decode())

    def copy(self, sources, dest):
        """Copy files or directories of this machine into the host's directory ``dest``."""
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=1) as tar:
            for source in sources:
                tar.add(source, arcname=Path(source).name)
        script = 'mkdir -p "$1" && base64 -d | tar -xzf - -C "$1"'
        self.run("sh", "-c", script, "copy", dest, input=base64.b64encode(buf.getvalue()).decode())

    def cpu_seconds(self):
        """CPU time used so far by everything in the host (its cgroup's cpu.stat)."""
        for cgroup in _read(self.state / "cgroups").split():
            stat = Path(cgroup) / "cpu.stat"
            if stat.is_file():
                fields = dict(line.split() for line in stat.read_text().splitlines())
                return int(fields["usage_usec"]) / 1e6
        return 0.0

    def path(self, path):
        """This machine's path to ``path`` inside the running host (for reading)."""
        return Path(f"/proc/{self.leader}/root") / str(path).lstrip("/")

    def ssh(self, *args, check=True):
        """``labsalt ssh ROSTER NAME ...`` for this host; returns the CompletedProcess."""
        return self.factory.ssh(self.roster, self.name, *args, check=check)

    def apply(self, *states, pillar=None, pillar_dir=None, test=False):
        """Converge this host with labsalt over salt-ssh; returns {state id: result}."""
        args = ["apply", *states, "--out", "json"]
        args += ["--pillar", str(pillar_dir or self.factory.default_pillar())]
        if test:
            args.append("--test")
        if pillar:
            args += ["--pillar-data", json.dumps(pillar)]
        proc = self.ssh(*args, check=False)
        ret = parse_ssh_output(proc, self.name).get(self.name)
        if _is_state_return(ret):
            return ret
        raise ApplyError(
            f"labsalt ssh apply on {self.name} failed (exit {proc.returncode}): "
            f"{json.dumps(ret, indent=1) if ret is not None else proc.stdout}\n{proc.stderr}"
        )

    def call(self, fun, *args, **kwargs):
        """Run one Salt function on this host over salt-ssh and return its value."""
        words = [fun, *(_cli_arg(a) for a in args)]
        words += [f"{key}={_cli_arg(value)}" for key, value in kwargs.items()]
        pillar = ["--pillar", str(self.factory.default_pillar())]
        proc = self.ssh("--out", "json", *pillar, "--call", *words, check=False)
        ret = parse_ssh_output(proc, self.name).get(self.name)
        if proc.returncode != 0 or _ssh_failure(ret):
            raise ApplyError(
                f"salt-ssh {fun} on {self.name} failed (exit {proc.returncode}): "
                f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
            )
        return ret


def _cli_arg(value):
    return value if isinstance(value, str) else json.dumps(value)


def _enter_cgroups(cgroups, die_with_parent):
    """In the child before exec: own cgroups, and maybe die with the test process."""
    for cgroup in cgroups:
        (cgroup / "cgroup.procs").write_text("0")
    if not die_with_parent:
        return
    with contextlib.suppress(OSError, AttributeError):
        import ctypes  # noqa: PLC0415

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _alive(pid):
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError):
        return False
    except PermissionError:
        return True
    return True


def _read(path):
    with contextlib.suppress(OSError):
        return path.read_text().strip()
    return ""


def _remove_leftovers(state):
    """Undo what a host's state directory records: process, mount, dirs, cgroups, netns."""
    workdir = Path(_read(state / "workdir") or "/nonexistent")
    pid = _read(state / "nspawn")
    if pid and _alive(pid):
        cmdline = _read(Path(f"/proc/{pid}/cmdline"))
        if str(workdir) in cmdline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(int(pid), signal.SIGTERM)
            for _ in range(150):
                if not _alive(pid) or Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
                    break
                time.sleep(0.1)
            else:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(int(pid), signal.SIGKILL)
    mounted = _read(state / "mounted")
    tmpfs = _read(state / "tmpfs")
    for mount in (mounted, tmpfs):
        if mount and os.path.ismount(mount) and _sh("umount", mount, check=False).returncode:
            _sh("umount", "-l", mount, check=False)
    if workdir.is_dir() and workdir.parent == WORKDIR:
        shutil.rmtree(workdir, ignore_errors=True)
    for cgroup in _read(state / "cgroups").split():
        _remove_cgroup(Path(cgroup))
    name = _read(state / "netns")
    if name:
        _sh("ip", "netns", "delete", name, check=False)
    shutil.rmtree(state, ignore_errors=True)


def _remove_cgroup(path):
    if not path.is_dir():
        return
    for sub in sorted((p for p in path.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        with contextlib.suppress(OSError):
            sub.rmdir()
    with contextlib.suppress(OSError):
        path.rmdir()


def cleanup_stale():
    """Remove hosts whose test process is gone (a killed run)."""
    if not RUNDIR.is_dir():
        return
    for state in RUNDIR.iterdir():
        owner = _read(state / "owner")
        if owner and not _alive(owner):
            _remove_leftovers(state)
    for workdir in WORKDIR.glob("factory-*"):
        if not _alive(workdir.name.split("-", 1)[1]):
            shutil.rmtree(workdir, ignore_errors=True)


def _refuse_forwarding():
    """
    Hosts hold CAP_NET_ADMIN in their own namespace, so a formula could give one
    a default route towards this machine.  That stays harmless only while this
    machine forwards nothing: refuse to start hosts otherwise.
    """
    for knob in ("/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding"):
        with contextlib.suppress(OSError):
            if Path(knob).read_text().strip() != "0":
                raise HostError(
                    f"{knob} is on: throw-away hosts could route traffic off this machine; "
                    "turn forwarding off to run the e2e tests"
                )


class HostFactory:
    """Starts hosts and stops all of them at the end (the ``host_factory`` fixture)."""

    _counter = iter(range(10**9))

    def __init__(self, workdir=None, root=None):
        reason = unavailable()
        if reason:
            raise HostError(reason)
        _refuse_forwarding()
        RUNDIR.mkdir(parents=True, exist_ok=True)
        WORKDIR.mkdir(parents=True, exist_ok=True)
        with open(RUNDIR.parent / "hosts.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            cleanup_stale()
        self.hosts = []
        # Another suite root (formulas/ + pillar) for labsalt, as LABSALT_ROOT does,
        # and the pillar tree host.apply/host.call use when given none.
        self.root = Path(root) if root else None
        self.pillar_dir = None
        self.workdir = Path(workdir) if workdir else WORKDIR / f"factory-{os.getpid()}"
        self.workdir.mkdir(parents=True, exist_ok=True)

    def start(self, name, packages=()):
        """A fresh, booted Debian 12 host named ``name`` (also its hostname and minion id)."""
        return self.start_many([name], packages)[0]

    def start_many(self, names, packages=()):
        """
        Start several hosts at once; returns them in the order of ``names``.
        The containers are launched from the calling thread (so they die with
        the test process) and boot in parallel.
        """
        image = Image(packages).ensure()
        taken = {h.name for h in self.hosts}
        for name in names:
            if name in taken or names.count(name) > 1:
                raise HostError(f"a host named {name} is already running in this factory")
        started = []
        try:
            for name in names:
                uid = f"{name}-{os.getpid()}-{next(self._counter)}"
                host = Host(self, name, image, uid)
                self.hosts.append(host)
                started.append(host)
                host._launch()
            errors = []

            def ready(host):
                try:
                    host._ready()
                except Exception as exc:  # noqa: BLE001  (re-raised below)
                    errors.append(exc)

            threads = [threading.Thread(target=ready, args=(h,)) for h in started]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            if errors:
                raise errors[0]
        except BaseException:
            for host in started:
                self.stop(host)
            raise
        return started

    def stop(self, host):
        host.stop()
        if host in self.hosts:
            self.hosts.remove(host)

    def stop_all(self):
        threads = [threading.Thread(target=self.stop, args=(h,)) for h in list(self.hosts)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def default_pillar(self):
        return self.pillar_dir or (self.root or REPO) / "pillar.example"

    def roster(self, hosts=None, extra=None, name="roster"):
        """A roster file for ``hosts`` (default: all running), plus raw ``extra`` entries."""
        return write_roster(self.workdir / name, hosts or self.hosts, extra)

    def ssh(self, roster, target, *args, check=True):
        """Run ``labsalt ssh ROSTER TARGET ARGS...`` (the user's command line)."""
        # Options go after the positionals (argparse would take STATE... as empty).
        opts = ["--ignore-host-keys", "-q"]
        args = list(args)
        at = args.index("--call") if "--call" in args else len(args)
        cmd = [*_labsalt(), "ssh", str(roster), target, *args[:at], *opts, *args[at:]]
        env = dict(os.environ, LABSALT_ROOT=str(self.root)) if self.root else None
        proc = subprocess.run(
            cmd,
            check=False,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=900,
            env=env,
        )
        if check and proc.returncode != 0:
            raise HostCommandError(proc.returncode, cmd, proc.stdout, proc.stderr)
        return proc
