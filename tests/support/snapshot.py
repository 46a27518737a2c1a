"""
What a seasoned-host test compares before apply and after clean.

``files(host)`` lists every directory, symlink (target) and regular file (sha256)
below the trees a formula may write to, with mode and owner, read on the host
in one ``python3`` call.  ``diff(before, after)`` names each path that differs,
so an assertion failure says what clean left behind or took away.
"""

import json
import re

TREES = ("/etc", "/usr/local", "/srv", "/opt", "/var/lib/labsalt")
# Rewritten by the system's tools on any package install or purge, not by a
# formula: the linker cache and the backups useradd/userdel leave of the user
# database (the databases themselves are compared).
VOLATILE = re.compile(r"^/etc/(ld\.so\.cache|(passwd|group|shadow|gshadow)-)$")

_LIST = r"""
import hashlib, json, os, stat, sys
out = {}
for top in sys.argv[1:]:
    if not os.path.lexists(top):
        continue
    for root, dirs, names in os.walk(top):
        paths = [root] + [os.path.join(root, n) for n in names]
        # os.walk does not descend into symlinked directories: list the links
        paths += [os.path.join(root, d) for d in dirs if os.path.islink(os.path.join(root, d))]
        for path in paths:
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode):
                with open(path, "rb") as handle:
                    what = hashlib.sha256(handle.read()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                what = "-> " + os.readlink(path)
            elif stat.S_ISDIR(st.st_mode):
                what = "dir"
            else:
                what = "other"
            out[path] = f"{oct(st.st_mode)} {st.st_uid}:{st.st_gid} {what}"
print(json.dumps(out))
"""


def files(host, trees=TREES, ignore=VOLATILE):
    """{path: "mode uid:gid sha256|-> target|dir"} below ``trees`` on ``host``."""
    listing = json.loads(host.run("python3", "-c", _LIST, *trees).stdout)
    return {path: what for path, what in listing.items() if not ignore.search(path)}


def diff(before, after):
    """One line per path that was added, removed or changed."""
    lines = []
    for path in sorted(set(before) | set(after)):
        if path not in after:
            lines.append(f"- {path} ({before[path]})")
        elif path not in before:
            lines.append(f"+ {path} ({after[path]})")
        elif before[path] != after[path]:
            lines.append(f"~ {path}: {before[path]} -> {after[path]}")
    return lines


def packages(host):
    """Names of the Debian packages installed on ``host``."""
    out = host.run("dpkg-query", "-W", "-f", "${Package} ${db:Status-Status}\\n").stdout
    return {line.split()[0] for line in out.splitlines() if line.endswith(" installed")}


def installed(host, package):
    proc = host.run("dpkg-query", "-W", "-f=${Status}", package, check=False)
    return proc.returncode == 0 and proc.stdout.endswith(" installed")
