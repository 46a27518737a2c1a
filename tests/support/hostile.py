"""
Hostile-pillar cases (tests/data/hostile/<formula>.yaml) and a way to run a
command so that everything it writes is seen: ``run_isolated``.

A case file is a YAML list; each entry has an ``id``, a ``set`` mapping
deep-merged over ``pillar.example/<formula>.sls``, the ``error`` the single
stderr line must start with (after ``labsalt: ``), and optionally ``repeat``
(``{path: [...], item: X, count: N}``: a list of N copies of X at path) and
``long`` (``{path: [...], length: N}``: a string of N characters at path) for
values too big to write in YAML.  The file ``labsalt.yaml`` holds cases for the
``labsalt:`` pillar (roles, skip), run as a highstate.

``run_isolated`` runs a command in a private mount namespace where /etc, /var,
/usr, /srv, /opt, /root, /home, /tmp and /run are overlays (upper layers on
/dev/shm): the command sees the real files, its writes land in the upper
layers only, and afterwards every path it created, changed or deleted is
listed.  Other processes on the machine (concurrent tests) cannot disturb the
listing, and nothing the command does survives it, payloads included.
"""

import copy
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
CASES = REPO / "tests" / "data" / "hostile"
PILLAR_EXAMPLE = REPO / "pillar.example"
PWNED = "/tmp/labsalt-pwned"
ISOLATED = ("/etc", "/var", "/usr", "/srv", "/opt", "/root", "/home", "/tmp", "/run")


def deep_merge(base, update):
    if not isinstance(base, dict) or not isinstance(update, dict):
        return copy.deepcopy(update)
    merged = copy.deepcopy(base)
    for key, value in update.items():
        merged[key] = deep_merge(merged[key], value) if key in merged else copy.deepcopy(value)
    return merged


def set_path(data, path, value):
    """Set ``data[path[0]][path[1]]...`` to value, creating mappings on the way."""
    node = data
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[path[-1]] = value
    return data


def example_pillar(formula):
    path = PILLAR_EXAMPLE / f"{formula}.sls"
    return (yaml.safe_load(path.read_text()) or {}) if path.is_file() else {}


def load_cases():
    """[(formula, case)] from every case file; a missing directory means none."""
    cases = []
    if not CASES.is_dir():
        return cases
    for path in sorted(CASES.glob("*.yaml")):
        for case in yaml.safe_load(path.read_text()) or []:
            cases.append((path.stem, case))
    return cases


def case_pillar(formula, case):
    """The whole pillar of a case: the formula's example pillar with the case applied."""
    data = deep_merge(example_pillar(formula), case.get("set") or {})
    if "repeat" in case:
        spec = case["repeat"]
        set_path(data, spec["path"], [copy.deepcopy(spec["item"]) for _ in range(spec["count"])])
    if "long" in case:
        spec = case["long"]
        set_path(data, spec["path"], "x" * spec["length"])
    return data


def write_pillar(directory, name, data):
    """A pillar tree holding one file ``<name>.sls`` with ``data``, for every minion."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "top.sls").write_text(f"base:\n  '*':\n    - {name}\n")
    (directory / f"{name}.sls").write_text(yaml.safe_dump(data, width=1000))
    return directory


_NAMESPACE_SCRIPT = r"""
set -e
upper=$1; work=$2; shift 2
while [ "$1" != "--" ]; do
  d=$1; shift
  mkdir -p "$upper$d" "$work$d"
  mount -t overlay overlay -o "lowerdir=$d,upperdir=$upper$d,workdir=$work$d" "$d"
done
shift
exec "$@"
"""


def run_isolated(cmd, env=None, timeout=600, setup=None, cwd=None):
    """
    Run ``cmd`` with /etc, /var, /usr, ... as overlays; return (CompletedProcess,
    sorted list of paths it wrote: created, changed or deleted).  ``setup`` is a
    shell snippet run inside the namespace first (its writes are listed too).
    """
    base = Path(tempfile.mkdtemp(prefix="labsalt-isolated-", dir="/dev/shm"))
    upper, work = base / "upper", base / "work"
    dirs = [d for d in ISOLATED if os.path.isdir(d) and not os.path.islink(d)]
    inner = list(cmd)
    if setup:
        inner = ["sh", "-c", f'{setup}\nexec "$@"', "sh", *inner]
    try:
        proc = subprocess.run(
            ["unshare", "-m", "--propagation", "private", "sh", "-c", _NAMESPACE_SCRIPT,
             "sh", str(upper), str(work), *dirs, "--", *inner],
            capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL,
            timeout=timeout, env=env, cwd=cwd,
        )  # fmt: skip
        return proc, _written(upper)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _written(upper):
    """Paths in the upper layers: new or changed files, whiteouts, new directories."""
    found = []
    for dirpath, dirnames, filenames in os.walk(upper):
        real_dir = "/" + os.path.relpath(dirpath, upper) if dirpath != str(upper) else "/"
        for name in dirnames:
            real = os.path.normpath(os.path.join(real_dir, name))
            if not os.path.isdir(real) or os.path.islink(real):
                found.append(real)
        for name in filenames:
            found.append(os.path.normpath(os.path.join(real_dir, name)))
    return sorted(found)


def outside(paths, allowed):
    """The paths not under any of the ``allowed`` prefixes."""
    allowed = [str(a).rstrip("/") for a in allowed]
    return [p for p in paths if not any(p == a or p.startswith(a + "/") for a in allowed)]
