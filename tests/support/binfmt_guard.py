"""
The kernel's binfmt_misc is one for this machine and every throw-away host.

tests/support/hosts.py starts hosts with systemd-nspawn without a user namespace
of their own, and binfmt_misc instances are per user namespace (Linux >= 6.7):
a host that mounts binfmt_misc gets this machine's.  So a test that registers,
unregisters or restores entries (tests/functional/test_ppc64_emulation.py, the
ppc64_emulation site test), and a host whose binfmt-support.service stops
(``update-binfmts --disable`` in ExecStop, on shutdown or purge), changes the
entries every other test sees, e.g. removes ``qemu-ppc64`` between the bare-host
test's first and second highstate.

``guarded()`` serialises those tests with one machine-wide lock (``flock``, so it
holds across pytest processes and worktrees) and puts the entries back as they
were when it is left, even when a test fails.
"""

import contextlib
import fcntl
import os
import subprocess

BINFMT = "/proc/sys/fs/binfmt_misc"
LOCK = "/run/lock/labsalt-binfmt_misc.lock"


def mounted():
    return os.path.exists(f"{BINFMT}/register")


def entries():
    if not mounted():
        return {}
    found = {}
    for name in sorted(os.listdir(BINFMT)):
        if name not in ("register", "status"):
            with contextlib.suppress(FileNotFoundError), open(f"{BINFMT}/{name}") as handle:
                found[name] = handle.read()
    return found


def reregister(name, status):
    """Register an entry again from the text the kernel showed for it."""
    fields = dict(line.split(" ", 1) for line in status.splitlines() if " " in line)
    hexes = {k: fields.get(k, "").replace(" ", "") for k in ("magic", "mask")}
    esc = {k: "".join(f"\\x{v[i : i + 2]}" for i in range(0, len(v), 2)) for k, v in hexes.items()}
    offset = fields.get("offset", "0")
    flags = fields.get("flags:", "").strip()
    line = f":{name}:M:{offset}:{esc['magic']}:{esc['mask']}:{fields['interpreter']}:{flags}"
    with open(f"{BINFMT}/register", "w") as handle:
        handle.write(line)
    if status.startswith("disabled"):
        with open(f"{BINFMT}/{name}", "w") as handle:
            handle.write("0")


def restore(was_mounted, before):
    """Put binfmt_misc back to ``before`` (as ``entries()`` returned it)."""
    now = entries()
    if not was_mounted:
        # Unmounting drops every entry registered through this mount (Linux >= 6.7
        # cleans up on umount; older kernels keep them, so remove ours first).
        for name in now:
            with open(f"{BINFMT}/{name}", "w") as handle:
                handle.write("-1")
        if mounted():
            subprocess.run(["umount", BINFMT], check=True)
        return
    for name, status in now.items():
        if before.get(name) != status:
            with open(f"{BINFMT}/{name}", "w") as handle:
                handle.write("-1")
    for name, status in before.items():
        if name not in entries():
            reregister(name, status)


@contextlib.contextmanager
def locked():
    """Hold the machine-wide binfmt_misc lock (blocks until other holders are done)."""
    os.makedirs(os.path.dirname(LOCK), exist_ok=True)
    with open(LOCK, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def guarded():
    """Under the lock: yields (was_mounted, entries before); restores them on exit."""
    with locked():
        state = (mounted(), entries())
        try:
            yield state
        finally:
            restore(*state)
