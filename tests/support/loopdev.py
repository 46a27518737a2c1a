"""
Loop devices for tests that need a real block device: a sparse file in a
temporary directory attached with losetup, optionally with an ext4 file system
mounted; everything is detached and removed on exit.
"""

import contextlib
import shutil
import subprocess
import tempfile
from pathlib import Path


class LoopUnavailable(RuntimeError):
    """This machine cannot create loop devices (says why)."""


def _run(*cmd):
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


@contextlib.contextmanager
def loop_device(size_mb=64, filesystem=True, prefix="labsalt-loop-"):
    """Yield (device, mountpoint or None); raises LoopUnavailable with the reason."""
    if not shutil.which("losetup"):
        raise LoopUnavailable("losetup is not installed (util-linux / mount)")
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    image = workdir / "disk.img"
    device = None
    mountpoint = None
    try:
        with image.open("wb") as handle:
            handle.truncate(size_mb << 20)
        attach = _run("losetup", "--find", "--show", str(image))
        if attach.returncode != 0:
            raise LoopUnavailable(f"losetup --find --show failed: {attach.stderr.strip()}")
        device = attach.stdout.strip()
        if filesystem:
            # No lazy inode-table/journal init: ext4lazyinit would write for a while.
            mkfs = _run("mkfs.ext4", "-q", "-E", "lazy_itable_init=0,lazy_journal_init=0", device)
            if mkfs.returncode != 0:
                raise LoopUnavailable(f"mkfs.ext4 {device} failed: {mkfs.stderr.strip()}")
            mountpoint = workdir / "mnt"
            mountpoint.mkdir()
            mounted = _run("mount", device, str(mountpoint))
            if mounted.returncode != 0:
                mountpoint = None
                raise LoopUnavailable(f"mount {device} failed: {mounted.stderr.strip()}")
        yield device, mountpoint
    finally:
        if mountpoint is not None:
            _run("umount", str(mountpoint))
        if device is not None:
            _run("losetup", "--detach", device)
        shutil.rmtree(workdir, ignore_errors=True)
