"""
A signed Debian repository of our own, built during a test and served over HTTP
to throw-away hosts (tests/support/hosts.py), for packages whose real repository
is out of reach here (HTCondor's).

    repo = AptRepo(tmp_path)
    repo.add(Package("condor", "24.0.2-1", files={...}, depends="python3"))
    repo.build()                               # dpkg-deb, apt-ftparchive, gpg
    url = repo.serve(host.ns.host_addr)        # http://<veth host end>:<port>
    ...  # deb [signed-by=...] {url} bookworm main; key at {url}/key.asc, {url}/key.gpg
    repo.close()

How it is made, with the tools a Debian archive uses:

- each package is a directory tree plus ``DEBIAN/control`` (and maintainer
  scripts), packed with ``dpkg-deb --build`` into ``pool/main/<x>/<name>/``;
- ``apt-ftparchive packages`` writes ``Packages``/``Packages.gz`` and
  ``apt-ftparchive release`` the ``Release`` file with their hashes;
- a throw-away OpenPGP key (made by ``gpg`` in a private, short-lived
  GNUPGHOME, its agent stopped right after signing) signs ``InRelease`` and
  ``Release.gpg``; the public key is served armored (``key.asc``) and binary
  (``key.gpg``).

apt in the host checks that signature against the key the formula installed,
as it would for the real repository.  The server is an ``http.server`` thread
in the test process bound to one host end of a veth, like the apt proxy.
"""

import contextlib
import functools
import http.server
import os
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

SUITE = "bookworm"
COMPONENT = "main"
KEY_UID = "labsalt test repository (throw-away key) <apt@labsalt.test>"


def available():
    """Why a repository cannot be built on this machine, or None."""
    for tool in ("dpkg-deb", "apt-ftparchive", "gpg", "gpgconf"):
        if not shutil.which(tool):
            return f"{tool} is not installed (scripts/install-deps harness)"
    return None


def _run(*cmd, **kwargs):
    proc = subprocess.run(
        [str(c) for c in cmd], capture_output=True, check=False, timeout=300, **kwargs
    )
    if proc.returncode != 0:
        err = proc.stderr
        err = err.decode(errors="replace") if isinstance(err, bytes) else err
        raise RuntimeError(f"{' '.join(map(str, cmd))} exited {proc.returncode}: {err}")
    return proc


@dataclass
class Package:
    """One binary package: ``files`` maps absolute paths to text/bytes (or a source Path)."""

    name: str
    version: str
    description: str
    files: dict = field(default_factory=dict)
    # Paths (absolute) of directories to copy in whole: {dest: source dir}.
    trees: dict = field(default_factory=dict)
    executables: tuple = ()
    conffiles: tuple = ()
    depends: str = ""
    architecture: str = "all"
    # Maintainer scripts: {"postinst": "...", "prerm": "...", ...}
    scripts: dict = field(default_factory=dict)

    def build(self, workdir):
        """Pack the package with dpkg-deb; returns the .deb path."""
        root = Path(workdir) / f"{self.name}_{self.version}"
        if root.exists():
            shutil.rmtree(root)
        debian = root / "DEBIAN"
        debian.mkdir(parents=True)
        for dest, source in self.trees.items():
            shutil.copytree(source, root / dest.lstrip("/"), symlinks=True)
        for dest, content in self.files.items():
            path = root / dest.lstrip("/")
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, Path):
                shutil.copy(content, path)
            elif isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content)
            path.chmod(0o755 if dest in self.executables else 0o644)
        control = [
            f"Package: {self.name}",
            f"Version: {self.version}",
            f"Architecture: {self.architecture}",
            "Maintainer: labsalt tests <tests@labsalt.test>",
            "Section: misc",
            "Priority: optional",
        ]
        if self.depends:
            control.append(f"Depends: {self.depends}")
        summary, _, body = self.description.partition("\n")
        control.append(f"Description: {summary}")
        control += [f" {line}" if line.strip() else " ." for line in body.strip().splitlines()]
        (debian / "control").write_text("\n".join(control) + "\n")
        if self.conffiles:
            (debian / "conffiles").write_text("".join(f"{c}\n" for c in self.conffiles))
        for name, text in self.scripts.items():
            script = debian / name
            script.write_text(text)
            script.chmod(0o755)
        deb = Path(workdir) / f"{self.name}_{self.version}_{self.architecture}.deb"
        # gzip -1: the pool is read once, over a veth; xz would cost seconds here.
        _run("dpkg-deb", "--root-owner-group", "-Zgzip", "-z1", "--build", root, deb)
        shutil.rmtree(root)
        return deb


class AptRepo:
    """A signed repository with one suite and component; see the module docstring."""

    def __init__(self, workdir, suite=SUITE, component=COMPONENT):
        self.root = Path(workdir) / "repo"
        self.build_dir = Path(workdir) / "build"
        self.suite = suite
        self.component = component
        self.packages = []
        self.fingerprint = None
        self.gnupghome = None
        self.httpd = None
        self.url = None
        # Paths the hosts asked for, in order (what apt and Salt really fetched).
        self.requests = []

    def add(self, package):
        self.packages.append(package)
        return package

    def build(self):
        """Pack every package, write the indexes and sign them; returns self."""
        if self.root.exists():
            shutil.rmtree(self.root)
        self.build_dir.mkdir(parents=True, exist_ok=True)
        archs = sorted({p.architecture for p in self.packages} - {"all"}) or ["amd64"]
        for package in self.packages:
            pool = self.root / "pool" / self.component / package.name[0] / package.name
            pool.mkdir(parents=True, exist_ok=True)
            deb = package.build(self.build_dir)
            deb.rename(pool / deb.name)
        dist = self.root / "dists" / self.suite
        for arch in archs:
            binary = dist / self.component / f"binary-{arch}"
            binary.mkdir(parents=True)
            index = _run(
                "apt-ftparchive", "--arch", arch, "packages", f"pool/{self.component}",
                cwd=self.root, text=True,
            ).stdout  # fmt: skip
            (binary / "Packages").write_text(index)
            _run("gzip", "-9kn", binary / "Packages")
        release = _run(
            "apt-ftparchive",
            "-o", f"APT::FTPArchive::Release::Suite={self.suite}",
            "-o", f"APT::FTPArchive::Release::Codename={self.suite}",
            "-o", f"APT::FTPArchive::Release::Components={self.component}",
            "-o", f"APT::FTPArchive::Release::Architectures={' '.join(archs)}",
            "-o", "APT::FTPArchive::Release::Origin=labsalt-tests",
            "-o", "APT::FTPArchive::Release::Label=labsalt-tests",
            "release", dist,
            text=True,
        ).stdout  # fmt: skip
        (dist / "Release").write_text(release)
        self._sign(dist)
        return self

    def _sign(self, dist):
        """A throw-away key signs the Release file; nothing of gpg outlives this call."""
        # A short path: gpg-agent's socket name must fit in sun_path.
        home = self.gnupghome = Path(tempfile.mkdtemp(prefix="lsgpg-", dir="/tmp"))
        env = {**os.environ, "GNUPGHOME": str(home)}
        gpg = functools.partial(_run, "gpg", "--batch", "--quiet", "--pinentry-mode", "loopback",
                                "--passphrase", "", env=env)  # fmt: skip
        try:
            gpg("--quick-generate-key", KEY_UID, "ed25519", "sign", "never")
            listing = gpg("--with-colons", "--list-secret-keys", text=True).stdout
            self.fingerprint = next(
                line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:")
            )
            gpg("--yes", "--armor", "--output", self.root / "key.asc", "--export", self.fingerprint)
            gpg("--yes", "--output", self.root / "key.gpg", "--export", self.fingerprint)
            gpg("--yes", "--local-user", self.fingerprint, "--clearsign",
                "--output", dist / "InRelease", dist / "Release")  # fmt: skip
            gpg("--yes", "--local-user", self.fingerprint, "--armor", "--detach-sign",
                "--output", dist / "Release.gpg", dist / "Release")  # fmt: skip
        finally:
            subprocess.run(["gpgconf", "--kill", "all"], env=env, capture_output=True, check=False)
            shutil.rmtree(home, ignore_errors=True)

    def serve(self, addr, port=0):
        """Serve the repository on ``addr`` (a veth's host end); returns its base URL."""
        handler = functools.partial(_QuietHandler, directory=str(self.root))
        self.httpd = http.server.ThreadingHTTPServer((addr, port), handler)
        self.httpd.daemon_threads = True
        self.httpd.requests = self.requests
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://{addr}:{self.httpd.server_address[1]}"
        return self.url

    def close(self):
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002  (BaseHTTPRequestHandler's name)
        with contextlib.suppress(AttributeError):
            self.server.requests.append(
                f"{self.command} {self.path} {args[1] if len(args) > 1 else '-'}"
            )


# --------------------------------------------------------------------------- HTCondor stand-in

CONDOR_CONFIG = """\
# labsalt test stand-in for HTCondor's /etc/condor/condor_config
RELEASE_DIR = /usr
LOCAL_DIR = /var
LOG = /var/log/condor
LOCAL_CONFIG_DIR = /etc/condor/config.d
REQUIRE_LOCAL_CONFIG_FILE = false
"""

CONDOR_CONFIG_VAL = '''\
#!/usr/bin/python3
"""
labsalt test stand-in for condor_config_val: HTCondor's own configuration parser
(its Python bindings, shipped in this package) reads $CONDOR_CONFIG, else
/etc/condor/condor_config and its config.d.  ``-dump`` prints every NAME = value,
NAME... prints their values.  A configuration error ends the process while the
bindings load, with HTCondor's message and a non-zero status, as the real tool does.
"""
import sys

sys.path.insert(0, "/usr/lib/condor/python")
import htcondor2  # noqa: E402

args = sys.argv[1:]
if args == ["-dump"]:
    for name, value in sorted(htcondor2.param.items()):
        print(f"{name} = {value}")
    sys.exit(0)
status = 0
for name in args:
    value = htcondor2.param.get(name)
    if value is None:
        print(f"Not defined: {name}", file=sys.stderr)
        status = 1
    else:
        print(value)
sys.exit(status)
'''

CONDOR_MASTER = '''\
#!/usr/bin/python3
"""
labsalt test stand-in for condor_master: reads the configuration with HTCondor's
parser when it starts (a broken configuration stops it, as it stops HTCondor) and
again on SIGHUP (condor_reconfig), then waits.  It runs no jobs.
"""
import signal
import subprocess
import sys


def read():
    return subprocess.run(["/usr/bin/condor_config_val", "-dump"], capture_output=True, text=True)


first = read()
if first.returncode:
    sys.stderr.write(f"condor_master stand-in: configuration error: {first.stderr}")
    sys.exit(1)
print("condor_master stand-in: configuration read", flush=True)


def reconfig(signum, frame):
    proc = read()
    state = "ok" if proc.returncode == 0 else f"failed: {proc.stderr.strip()}"
    print(f"condor_master stand-in: reconfig {state}", flush=True)


signal.signal(signal.SIGHUP, reconfig)
signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
while True:
    signal.pause()
'''

CONDOR_RECONFIG = """\
#!/bin/sh
# labsalt test stand-in for condor_reconfig: ask the running condor_master to reread.
exec systemctl reload condor.service
"""

CONDOR_UNIT = """\
[Unit]
Description=labsalt test stand-in for HTCondor (condor_master)
After=network-online.target

[Service]
Type=simple
ExecStart=/usr/sbin/condor_master -f
ExecReload=/bin/kill -HUP $MAINPID

[Install]
WantedBy=multi-user.target
"""

# What dh_installsystemd writes for a package with a service, in short.
CONDOR_POSTINST = """\
#!/bin/sh
set -e
if [ "$1" = configure ]; then
    getent passwd condor >/dev/null || useradd --system --user-group \\
        --home-dir /var/lib/condor --no-create-home --shell /usr/sbin/nologin condor
    install -d -o condor -g condor /var/lib/condor /var/log/condor
    deb-systemd-helper unmask condor.service >/dev/null || true
    deb-systemd-helper enable condor.service >/dev/null || true
    if [ -d /run/systemd/system ]; then
        systemctl --system daemon-reload >/dev/null || true
        deb-systemd-invoke start condor.service >/dev/null || true
    fi
fi
"""

CONDOR_PRERM = """\
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
    deb-systemd-invoke stop condor.service >/dev/null || true
fi
"""

CONDOR_POSTRM = """\
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload >/dev/null || true
fi
if [ "$1" = purge ]; then
    deb-systemd-helper purge condor.service >/dev/null || true
fi
"""

BINDINGS = ("htcondor2", "htcondor.libs", "classad2", "classad3")


def htcondor_bindings():
    """This environment's HTCondor bindings (PyPI ``htcondor``): (site dir, version) or None."""
    try:
        import htcondor2  # noqa: PLC0415  (the tests extra provides it)
    except ImportError:
        return None
    site = Path(htcondor2.__file__).resolve().parents[1]
    if not all((site / name).is_dir() for name in BINDINGS):
        return None
    versions = sorted(site.glob("htcondor-*.dist-info"))
    version = versions[-1].name.removesuffix(".dist-info").split("-", 1)[1] if versions else "0"
    return site, version


def htcondor_standin(name="condor"):
    """
    The package the htcondor formula installs, as a stand-in: HTCondor's real
    configuration parser (the PyPI bindings of this environment) behind
    ``condor_config_val``, a ``condor.service`` whose daemon reads the
    configuration at start and on reload and stays up, and ``condor_reconfig``.
    No scheduler, no jobs.
    """
    found = htcondor_bindings()
    if not found:
        raise RuntimeError("HTCondor's Python bindings (pip install htcondor) are not installed")
    site, version = found
    return Package(
        name=name,
        version=f"{version}-1+labsalttest1",
        architecture="amd64",  # the bindings hold native libraries
        depends="python3 (>= 3.11), python3 (<< 3.12), passwd, init-system-helpers",
        description=(
            "labsalt test stand-in for HTCondor\n"
            "HTCondor's configuration parser (its Python bindings) as condor_config_val,\n"
            "a condor.service that reads the configuration and stays up, condor_reconfig.\n"
            "Built by tests/support/aptrepo.py; runs no jobs."
        ),
        files={
            "/etc/condor/condor_config": CONDOR_CONFIG,
            "/etc/condor/config.d/00-package": "# config.d of the stand-in package\n",
            "/usr/bin/condor_config_val": CONDOR_CONFIG_VAL,
            "/usr/sbin/condor_master": CONDOR_MASTER,
            "/usr/sbin/condor_reconfig": CONDOR_RECONFIG,
            "/lib/systemd/system/condor.service": CONDOR_UNIT,
        },
        trees={f"/usr/lib/condor/python/{n}": site / n for n in BINDINGS},
        executables=(
            "/usr/bin/condor_config_val",
            "/usr/sbin/condor_master",
            "/usr/sbin/condor_reconfig",
        ),  # fmt: skip
        conffiles=("/etc/condor/condor_config", "/etc/condor/config.d/00-package"),
        scripts={"postinst": CONDOR_POSTINST, "prerm": CONDOR_PRERM, "postrm": CONDOR_POSTRM},
    )
