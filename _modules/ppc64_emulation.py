"""
Big-endian ppc64 emulation on amd64: what the binfmt registration looks like,
which container engine can build the ppc64 images, and the build itself.

The lab notebook ("Emulating PPC64 inside Docker") runs Adélie Linux and Debian's
ppc64 port in containers to test POWER7 big-endian code; qemu-user-static
registered with binfmt_misc's ``F`` flag makes that work without qemu inside the
images.
"""

import hashlib
import os
import shutil
import subprocess

from salt.exceptions import CommandExecutionError, SaltInvocationError

__virtualname__ = "ppc64_emulation"

ENGINES = ("docker", "podman")
RECIPE_LABEL = "org.labsalt.recipe-sha256"
MARKER = "Managed by Salt (labsalt ppc64_emulation)"


def __virtual__():
    return __virtualname__


def validate(mapdata):
    """
    Checks of ppc64_emulation's merged parameters beyond the schema
    (``validator:`` in its schema.yaml; read-only): the binfmt fields as the
    kernel will take them (magic and mask of one length, no ':' anywhere), and a
    sha256 for an enabled Adélie image (its rootfs is never used unverified).
    Raises SaltInvocationError naming the key.

    CLI Example:

    .. code-block:: bash

        salt-call ppc64_emulation.validate "$(salt-call --out json labsalt.mapdata ppc64_emulation)"
    """
    b = mapdata.get("binfmt", {})
    try:
        __salt__["binfmt.spec"](
            b.get("name"), b.get("interpreter"), b.get("magic"), b.get("mask", ""),
            b.get("offset", 0), b.get("flags", "F"),
        )  # fmt: skip
    except SaltInvocationError as exc:
        raise SaltInvocationError(f"ppc64_emulation:binfmt: {exc}") from None
    except KeyError:
        pass  # the binfmt module is not loaded here (no binfmt_misc): the state checks
    images = mapdata.get("containers", {}).get("images", {})
    adelie = images.get("adelie", {})
    if adelie.get("enabled") and not adelie.get("rootfs_sha256"):
        raise SaltInvocationError(
            "ppc64_emulation:containers:images:adelie:rootfs_sha256: is required when the "
            "Adélie image is enabled (the rootfs is never downloaded unverified)"
        )
    return True


def ours(path):
    """
    True when ``path`` is absent or a file this formula wrote (it carries the
    formula's marker line): a site's own file of that name is never replaced or
    removed.  Read-only.

    CLI Example:

    .. code-block:: bash

        salt-call ppc64_emulation.ours /etc/binfmt.d/qemu-ppc64.conf
    """
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return MARKER in handle.read(4096)
    except FileNotFoundError:
        return True
    except IsADirectoryError:
        return False


def missing_dirs(paths):
    """
    The directories among ``paths`` and their ancestors that do not exist yet,
    outermost first: what a state with ``makedirs`` would create, recorded so that
    clean removes exactly those (when empty).  Read-only.

    CLI Example:

    .. code-block:: bash

        salt-call ppc64_emulation.missing_dirs '[/srv/labsalt/ppc64-containers/debian]'
    """
    found = []
    for path in paths:
        parts = [part for part in str(path).split("/") if part]
        if not str(path).startswith("/") or ".." in parts or "." in parts:
            raise SaltInvocationError(f"{path!r} is not an absolute path without '..'")
        for depth in range(1, len(parts) + 1):
            candidate = "/" + "/".join(parts[:depth])
            if not os.path.isdir(candidate) and candidate not in found:
                found.append(candidate)
    return found


def status(name="qemu-ppc64"):
    """
    Report the binfmt registration of big-endian ppc64 as the kernel sees it:
    registered, enabled, interpreter, flags and whether ``F`` (fix-binary) is set.

    CLI Example:

    .. code-block:: bash

        salt-call ppc64_emulation.status
    """
    mounted = __salt__["binfmt.mounted"]()
    entry = __salt__["binfmt.entry"](name) if mounted else None
    report = {"binfmt_misc_mounted": mounted, "name": name, "registered": bool(entry)}
    if entry:
        report.update(
            enabled=entry["enabled"],
            interpreter=entry.get("interpreter"),
            flags=entry["flags"],
            fix_binary="F" in entry["flags"],
            interpreter_exists=os.access(entry.get("interpreter", ""), os.X_OK),
        )
    return report


def _run(cmd, timeout=30):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def engine(prefer="auto"):
    """
    Pick a working container engine: ``{"engine": name or None, "reason": text}``.
    An engine counts only when its daemon/service answers (``<engine> info``): a
    docker client without a running daemon is not an engine.

    CLI Example:

    .. code-block:: bash

        salt-call ppc64_emulation.engine
    """
    if prefer not in ("auto", *ENGINES):
        raise SaltInvocationError(f"container engine {prefer!r} is not auto, docker or podman")
    reasons = []
    for name in ENGINES if prefer == "auto" else (prefer,):
        path = shutil.which(name)
        if not path:
            reasons.append(f"{name}: not installed")
            continue
        try:
            proc = _run([path, "info"], timeout=20)
        except subprocess.TimeoutExpired:
            reasons.append(f"{name}: '{name} info' did not answer within 20 s")
            continue
        if proc.returncode == 0:
            return {"engine": path, "reason": f"{name} answers '{name} info'"}
        first = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
        reasons.append(f"{name}: {first[-1] if first else f'exit {proc.returncode}'}")
    return {"engine": None, "reason": "; ".join(reasons)}


def recipe_digest(recipe_dir):
    """
    sha256 over the files of a recipe directory; stored as an image label, so an
    image is rebuilt exactly when its recipe changed.

    CLI Example:

    .. code-block:: bash

        salt-call ppc64_emulation.recipe_digest /srv/labsalt/ppc64-containers/debian
    """
    if not os.path.isdir(recipe_dir):
        raise SaltInvocationError(f"recipe directory {recipe_dir} does not exist")
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(recipe_dir):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            digest.update(os.path.relpath(path, recipe_dir).encode() + b"\0")
            with open(path, "rb") as handle:
                digest.update(handle.read())
    return digest.hexdigest()


def image_label(engine_path, tag):
    """The recipe label of image ``tag`` ('' when the image has none, None when absent)."""
    proc = _run(
        [
            engine_path,
            "image",
            "inspect",
            "--format",
            f'{{{{index .Config.Labels "{RECIPE_LABEL}"}}}}',
            tag,
        ]
    )
    if proc.returncode != 0:
        return None
    return proc.stdout.strip().replace("<no value>", "")


def build(tag, recipe_dir, engine_path, platform="linux/ppc64", timeout=7200):
    """
    Build image ``tag`` from ``recipe_dir/Containerfile`` for ``platform``, labelled
    with the recipe digest.

    CLI Example:

    .. code-block:: bash

        salt-call ppc64_emulation.build localhost/labsalt/debian-ppc64:unstable \\
            /srv/labsalt/ppc64-containers/debian /usr/bin/podman
    """
    digest = recipe_digest(recipe_dir)
    cmd = [
        engine_path, "build", "--platform", platform, "--label", f"{RECIPE_LABEL}={digest}",
        "-t", tag, "-f", os.path.join(recipe_dir, "Containerfile"), recipe_dir,
    ]  # fmt: skip
    try:
        proc = _run(cmd, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise CommandExecutionError(f"building {tag} took longer than {timeout} s") from exc
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise CommandExecutionError(f"building {tag} failed (exit {proc.returncode}):\n{tail}")
    return {"tag": tag, "recipe_sha256": digest}
