"""Generate the Salt configuration that points Salt at this suite (masterless and salt-ssh)."""

import hashlib
import os
import socket
from pathlib import Path

import yaml

from labsalt.loader import SOURCE_DIRS, ext_dir

# The extra pillar of one run: a file per run in the private config dir, named
# to Salt by an environment variable (see cli.ExtraPillar, _pillar/labsalt_extra.py).
EXTRA_PILLAR = "extra-pillar.{pid}.{token}.yaml"
EXTRA_PILLAR_GLOB = "extra-pillar.*.yaml"
EXTRA_PILLAR_ENV = "LABSALT_EXTRA_PILLAR"


class LabsaltError(Exception):
    """A mistake the user can fix; printed as one line, exit code 2."""


def suite_root():
    """The directory holding ``formulas/`` and ``pillar.example/``."""
    env = os.environ.get("LABSALT_ROOT")
    root = Path(env) if env else Path(__file__).resolve().parent.parent
    if not (root / "formulas").is_dir():
        raise LabsaltError(
            f"no formulas/ under {root}: run from a labsalt checkout or set LABSALT_ROOT"
        )
    return root


def formulas(root):
    """Names of the formulas in this suite."""
    return sorted(
        p.name
        for p in (root / "formulas").iterdir()
        if p.is_dir() and not p.name.startswith((".", "_")) and (p / "init.sls").is_file()
    )


def config_dir(root, pillar_dir):
    """A private directory per (suite, pillar) so runs never touch a system minion's files."""
    base = os.environ.get("LABSALT_CONFIG_DIR")
    if base:
        return Path(base)
    digest = hashlib.sha256(f"{root}\0{pillar_dir}".encode()).hexdigest()[:12]
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "labsalt" / digest


def check_pillar(pillar_dir):
    """Parse the plain-YAML pillar files up front, so a typo is one clear error."""
    for path in sorted(Path(pillar_dir).rglob("*.sls")):
        text = path.read_text()
        if "{%" in text or "{{" in text:
            continue  # templated: Salt renders and reports it
        try:
            yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or str(exc)
            raise LabsaltError(f"{path}:{where}: not valid YAML: {problem}") from exc


# Everything Salt would otherwise write or read under /etc/salt, /var/cache/salt,
# /var/log/salt, /run/salt or /srv (Salt's defaults for a system minion or master)
# goes to the private directory: a labsalt run touches no system Salt file, and no
# module left in the system minion's extmods is ever loaded in place of the checkout's.
def private_paths(conf, cache="cache"):
    """
    Salt's path options, all inside ``conf``.  salt-ssh (the master config) has
    a cache of its own: Salt refuses a state run while another one's job file is
    in the same cache, and a push to remote hosts must not block a local run.
    """
    cache = conf / cache
    log = conf / "log"
    run = conf / "run"
    nothing = {"base": [str(conf / "empty")]}
    return {
        "cachedir": str(cache),
        "extension_modules": str(cache / "extmods"),
        "sqlite_queue_dir": str(cache / "queues"),
        "pki_dir": str(conf / "pki"),
        "sock_dir": str(run / "sock"),
        "pidfile": str(run / "salt.pid"),
        "syndic_pidfile": str(run / "syndic.pid"),
        "log_file": str(log / "salt.log"),
        "key_logfile": str(log / "key.log"),
        "ssh_log_file": str(log / "ssh.log"),
        "syndic_log_file": str(log / "syndic.log"),
        "thorium_roots": nothing,
        "master_roots": nothing,
        "winrepo_dir": str(conf / "empty" / "winrepo"),
        "winrepo_dir_ng": str(conf / "empty" / "winrepo-ng"),
    }


def atomic_write(path, text, mode=0o644):
    """Replace ``path`` with ``text`` in one step (temp file in the same dir, then rename)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_config(root, pillar_dir, minion_id=None):
    """
    Write ``minion`` (masterless) and ``master`` (salt-ssh) configs and return their
    directory.  The formulas directory is the first file root; a second root holds
    ``_modules``/``_states``/``_grains`` links so a real master can also serve them
    to minions through ``saltutil.sync_all``.
    """
    pillar_dir = Path(pillar_dir).resolve()
    if not pillar_dir.is_dir():
        raise LabsaltError(f"pillar directory {pillar_dir} does not exist")
    if not (pillar_dir / "top.sls").is_file():
        raise LabsaltError(f"pillar directory {pillar_dir} has no top.sls")
    check_pillar(pillar_dir)
    conf = config_dir(root, pillar_dir)
    extroot = conf / "extroot"
    extroot.mkdir(parents=True, exist_ok=True)
    for ext_type, name in SOURCE_DIRS.items():
        link = extroot / name
        target = ext_dir(ext_type)
        if link.is_symlink() and Path(os.readlink(link)) == target:
            continue
        # made beside and renamed over: concurrent runs sharing this directory race here
        tmp = link.with_name(f".{name}.{os.getpid()}.tmp")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(target)
        os.replace(tmp, link)

    common = {
        "file_roots": {"base": [str(root / "formulas"), str(extroot)]},
        "pillar_roots": {"base": [str(pillar_dir)]},
        "module_dirs": [str(ext_dir("modules"))],
        "states_dirs": [str(ext_dir("states"))],
        "grains_dirs": [str(ext_dir("grains"))],
        "wrapper_dirs": [str(ext_dir("wrapper"))],
        "pillar_dirs": [str(ext_dir("pillar"))],
        "outputter_dirs": [str(ext_dir("output"))],
        # Extra pillar for one run (--pillar-file, --pillar-data): a 0600 file in
        # this directory, read by _pillar/labsalt_extra.py, never a command line.
        "ext_pillar": [{"labsalt_extra": str(conf)}],
        **private_paths(conf),
        # Modules load from the checkout (module_dirs above), never from a synced
        # copy in extmods that would win over it once the checkout changes.
        "autoload_dynamic_modules": False,
        "log_level_logfile": "warning",
        # labsalt reads progress from INFO lines on stderr (see cli._stream_progress)
        "log_fmt_console": "%(levelname)s %(message)s",
        "state_output": "changes",
        "pillar_raise_on_missing": False,
    }
    minion = dict(common, file_client="local", id=minion_id or socket.getfqdn())
    master = dict(common, **private_paths(conf, "ssh-cache"), roster_file=str(conf / "roster"))
    (conf / "log").mkdir(exist_ok=True)
    if not (conf / "roster").exists():
        atomic_write(conf / "roster", "")
    for name, data in (("minion", minion), ("master", master)):
        text = "# written by labsalt; regenerated on every run\n" + yaml.safe_dump(data)
        path = conf / name
        if not path.is_file() or path.read_text() != text:
            atomic_write(path, text)
    return conf
