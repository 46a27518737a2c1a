"""
What runs on a BigBlueButton host: the pinned ``bbb-install.sh`` (its flags as its
README documents them, the download checked against a pinned sha256, a stamp of
the finished run), the restart command and UFW's rule list.  Every command is an
argument list, never a shell string; the TURN secret in the installer's flags is
shown as ``***`` and never logged.
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import urllib.error
import urllib.request

from salt.exceptions import CommandExecutionError, SaltInvocationError

__virtualname__ = "bbb_install"

REDACTED = "***"
VERSION_LINE = re.compile(r"[a-z]+-\d{2,3}(-[a-z0-9]+)?")  # xenial-22, focal-270, jammy-300
EMAIL = re.compile(r"[^@\s]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
HOSTNAME = re.compile(
    r"(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)


def __virtual__():
    return __virtualname__


def installer_args(  # noqa: PLR0917  (Salt 3006 cannot pass keyword-only args)
    version,
    hostname,
    email,
    turn_host=None,
    turn_secret=None,
    greenlight=False,
    firewall=True,
    extra_args=None,
):
    """
    Compose ``bbb-install.sh``'s arguments (the flags its README documents):
    ``-v`` version line, ``-s`` hostname, ``-e`` e-mail for Let's Encrypt,
    ``-c host:secret`` for an external TURN server, ``-g`` Greenlight, ``-w``
    firewall (UFW).  Bad values raise an error naming the pillar key.

    CLI Example:

    .. code-block:: bash

        salt-call bbb_install.installer_args jammy-300 bbb.example.org admin@example.org \\
            turn_host=turn.example.org turn_secret=...
    """
    key = "bigbluebutton"
    if not isinstance(version, str) or not VERSION_LINE.fullmatch(version):
        raise SaltInvocationError(
            f"{key}:installer:version '{version}' is not a bbb-install version line "
            "such as jammy-300 or focal-270"
        )
    if not isinstance(hostname, str) or not HOSTNAME.fullmatch(hostname):
        raise SaltInvocationError(f"{key}:hostname '{hostname}' is not a fully qualified host name")
    if not isinstance(email, str) or not EMAIL.fullmatch(email):
        raise SaltInvocationError(f"{key}:email '{email}' is not an e-mail address")
    args = ["-v", version, "-s", hostname, "-e", email]
    if turn_host:
        if not HOSTNAME.fullmatch(str(turn_host)):
            raise SaltInvocationError(
                f"{key}:turn:host '{turn_host}' is not a fully qualified host name"
            )
        __salt__["bbb.check_turn_secret"](turn_secret, f"{key}:turn:secret")
        args += ["-c", f"{turn_host}:{turn_secret}"]
    if greenlight:
        args.append("-g")
    if firewall:
        args.append("-w")
    args += [str(a) for a in extra_args or []]
    return args


def redact(args, secrets):
    """
    Return ``args`` as one display string with every secret replaced by ``***``.

    CLI Example:

    .. code-block:: bash

        salt-call bbb_install.redact '[-c, "turn:s3cret"]' '[s3cret]'
    """
    text = " ".join(args)
    for value in secrets:
        if value:
            text = text.replace(str(value), REDACTED)
    return text


def fetch_installer(url, sha256, dest, timeout=60):
    """
    Download the installer from ``url`` and write it to ``dest`` (mode 0700)
    only when its sha256 equals the pinned ``sha256``; otherwise raise an error
    and leave ``dest`` untouched.

    CLI Example:

    .. code-block:: bash

        salt-call bbb_install.fetch_installer "$INSTALLER_URL" "$PINNED_SHA256" \\
            /var/lib/labsalt/bbb-install.sh
    """
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:  # noqa: S310
            body = answer.read()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CommandExecutionError(f"cannot download the BBB installer {url}: {reason}") from None
    digest = hashlib.sha256(body).hexdigest()
    if digest != str(sha256).lower():
        raise CommandExecutionError(
            f"the BBB installer at {url} has sha256 {digest}, but pillar "
            f"bigbluebutton:installer:sha256 pins {sha256}: nothing was run. Check the "
            "script and update the pin, or fix the URL."
        )
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    __salt__["bbb_config.write_atomic"](dest, body.decode("utf-8", "replace"), mode=0o700)
    os.chmod(dest, 0o700)
    return digest


def install_stamp(version, args, sha256):
    """
    What a finished installer run is recorded as: the version line, the
    installer's sha256 and a digest of the full argument list (so the secret
    is not stored, but changing it reruns the installer).

    CLI Example:

    .. code-block:: bash

        salt-call bbb_install.install_stamp jammy-300 '[-v, jammy-300]' <sha256>
    """
    digest = hashlib.sha256(json.dumps(args).encode()).hexdigest()
    return {"version": version, "installer_sha256": str(sha256).lower(), "args_sha256": digest}


def read_stamp(path):
    """
    The stamp of the last successful installer run, or None.

    CLI Example:

    .. code-block:: bash

        salt-call bbb_install.read_stamp /var/lib/labsalt/bbb-install.json
    """
    text = __salt__["bbb_config.read_text"](path)
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def write_stamp(path, stamp):
    """
    Record a finished installer run (see :py:func:`install_stamp`).

    CLI Example:

    .. code-block:: bash

        salt-call bbb_install.write_stamp /var/lib/labsalt/bbb-install.json '{version: jammy-300}'
    """
    __salt__["bbb_config.write_atomic"](path, json.dumps(stamp, sort_keys=True) + "\n", mode=0o600)
    return True


def run_installer(script, args, secrets=(), log_file="/var/log/labsalt/bbb-install.log"):
    """
    Run the installer script with ``args`` (as root, no shell), its output going
    to ``log_file`` (mode 0600).  Nothing is logged through Salt: the arguments
    hold the TURN secret.  A failure raises an error with the redacted last
    lines of the output.

    CLI Example:

    .. code-block:: bash

        salt-call bbb_install.run_installer /var/lib/labsalt/bbb-install.sh '[-v, jammy-300, ...]'
    """
    os.makedirs(os.path.dirname(log_file), exist_ok=True)
    fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        proc = subprocess.run(
            ["bash", script, *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    if proc.returncode != 0:
        tail = (__salt__["bbb_config.read_text"](log_file) or "").splitlines()[-5:]
        shown = redact(["\n".join(tail)], secrets)
        raise CommandExecutionError(
            f"the BBB installer exited {proc.returncode} (full output in {log_file}):\n{shown}"
        )
    return True


def run_argv(argv, timeout=600):
    """
    Run a command given as an argument list (no shell); return its exit code and
    the last lines of its output.

    CLI Example:

    .. code-block:: bash

        salt-call bbb_install.run_argv '[bbb-conf, --restart]'
    """
    try:
        proc = subprocess.run(
            [str(a) for a in argv],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"retcode": 127, "output": str(exc)}
    tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-5:])
    return {"retcode": proc.returncode, "output": tail}


def ufw_rules():
    """
    The rules added to UFW (``ufw show added``) as ufw argument strings
    (``allow 5060/tcp``); [] when ufw is not installed.  Read-only.

    CLI Example:

    .. code-block:: bash

        salt-call bbb_install.ufw_rules
    """
    ufw = shutil.which("ufw")
    if not ufw:
        return []
    proc = subprocess.run([ufw, "show", "added"], capture_output=True, text=True, check=False)
    return [line[4:].strip() for line in proc.stdout.splitlines() if line.startswith("ufw ")]
