"""
Read-only helpers for the ``labsalt_packages`` states: which packages a host
lacks (dpkg's status database only), what apt would install or remove for them
(``apt-get -s``, a simulation that writes nothing), and the record of the
packages labsalt installed itself (``/var/lib/labsalt/<formula>/installed-packages``,
one package a line) and of the packages apt removed to make room for them
(``displaced-packages`` next to it).

Every formula that installs packages uses these through
``labsalt_packages.installed`` / ``labsalt_packages.removed``; nothing here
changes the system.
"""

import os
import re

from salt.exceptions import CommandExecutionError, SaltInvocationError

__virtualname__ = "labsalt_packages"

STATE_ROOT = "/var/lib/labsalt"
RECORD = "installed-packages"
DISPLACED = "displaced-packages"
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+:@-]*$")
_ENV = {"LC_ALL": "C", "DEBIAN_FRONTEND": "noninteractive"}


def __virtual__():
    return __virtualname__


def _run(argv, ok=(0,)):
    res = __salt__["cmd.run_all"](argv, python_shell=False, env=_ENV, ignore_retcode=True)
    if res["retcode"] not in ok:
        said = (res["stderr"] or res["stdout"] or "").strip().splitlines()
        errors = [line for line in said if line.startswith("E:")]
        why = (errors or said or [f"exited {res['retcode']}"])[0]
        raise CommandExecutionError(f"{argv[0]} {argv[1]}: {why}")
    return res


def _names(pkgs):
    if isinstance(pkgs, str):
        pkgs = [pkgs]
    if not isinstance(pkgs, (list, tuple)):
        raise SaltInvocationError("labsalt_packages: pkgs: expected a list of package names")
    for pkg in pkgs:
        if not isinstance(pkg, str) or not _NAME.match(pkg):
            raise SaltInvocationError(f"labsalt_packages: pkgs: {pkg!r} is not a package name")
    return list(dict.fromkeys(pkgs))


def record_dir(formula=None, record_dir=None):  # pylint: disable=redefined-outer-name
    """
    The directory of a formula's records: ``record_dir`` when given, else
    ``/var/lib/labsalt/<formula>``.

    CLI Example:

    .. code-block:: bash

        salt-call labsalt_packages.record_dir coturn
    """
    if record_dir:
        path = str(record_dir)
    elif formula and re.match(r"^[a-z0-9_]+$", str(formula)):
        path = f"{STATE_ROOT}/{formula}"
    else:
        raise SaltInvocationError("labsalt_packages: give formula (a formula name) or record_dir")
    if not path.startswith("/") or "/../" in f"{path}/" or "/./" in f"{path}/":
        raise SaltInvocationError(f"labsalt_packages: record_dir: {path!r} is not an absolute path")
    return path.rstrip("/") or "/"


def installed_set():
    """
    Names of all packages dpkg has installed (status ``installed``).

    CLI Example:

    .. code-block:: bash

        salt-call labsalt_packages.installed_set
    """
    out = _run(["dpkg-query", "-W", "-f", "${Package}\\t${db:Status-Status}\\n"])["stdout"]
    return sorted(
        {line.split("\t")[0] for line in out.splitlines() if line.endswith("\tinstalled")}
    )


def missing(pkgs):
    """
    Which of ``pkgs`` dpkg does not have installed (``dpkg-query`` only: no apt,
    nothing written), in the order given.

    CLI Example:

    .. code-block:: bash

        salt-call labsalt_packages.missing '[coturn, nftables]'
    """
    pkgs = _names(pkgs)
    if not pkgs:
        return []
    # Exit 1 when a name is unknown to dpkg: that one is missing too.
    out = _run(
        [
            "dpkg-query",
            "-W",
            "-f",
            "${binary:Package}\\t${Package}\\t${db:Status-Status}\\n",
            *pkgs,
        ],
        ok=(0, 1),
    )["stdout"]
    have = set()
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[2] == "installed":
            have.update(parts[:2])
    return [pkg for pkg in pkgs if pkg not in have]


def manual():
    """
    Packages apt has marked as installed by request (not as a dependency).

    CLI Example:

    .. code-block:: bash

        salt-call labsalt_packages.manual
    """
    return sorted(set(_run(["apt-mark", "showmanual"])["stdout"].split()))


def _sim_lines(out):
    inst = {m.group(1).split(":")[0] for m in re.finditer(r"^Inst (\S+)", out, re.M)}
    remv = {m.group(1).split(":")[0] for m in re.finditer(r"^(?:Remv|Purg) (\S+)", out, re.M)}
    return sorted(inst), sorted(remv)


def simulate_install(pkgs, install_recommends=False):
    """
    What ``apt-get install`` of ``pkgs`` would install and remove:
    ``{"install": [...], "remove": [...]}``; ``apt-get -s`` writes nothing.
    Raises ``CommandExecutionError`` naming apt's complaint (``Unable to locate
    package x`` when the package lists are stale).

    CLI Example:

    .. code-block:: bash

        salt-call labsalt_packages.simulate_install '[coturn]'
    """
    pkgs = _names(pkgs)
    argv = ["apt-get", "-s", "-q", "-y", "install"]
    if not install_recommends:
        argv.append("--no-install-recommends")
    inst, remv = _sim_lines(_run([*argv, *pkgs])["stdout"])
    return {"install": inst, "remove": remv}


def simulate_purge(pkgs):
    """
    What ``apt-get purge`` of ``pkgs`` would remove (a simulation; writes nothing).

    CLI Example:

    .. code-block:: bash

        salt-call labsalt_packages.simulate_purge '[coturn]'
    """
    pkgs = _names(pkgs)
    if not pkgs:
        return []
    return _sim_lines(_run(["apt-get", "-s", "-q", "-y", "purge", *pkgs])["stdout"])[1]


def autoremovable():
    """
    Packages apt would auto-remove now (installed as dependencies, needed by
    nothing); a simulation, writes nothing.

    CLI Example:

    .. code-block:: bash

        salt-call labsalt_packages.autoremovable
    """
    return _sim_lines(_run(["apt-get", "-s", "-q", "autoremove"])["stdout"])[1]


def _read(path):
    try:
        with open(path, encoding="utf-8") as handle:
            names = [line.strip() for line in handle]
    except FileNotFoundError:
        return []
    return sorted({name for name in names if name and _NAME.match(name)})


def recorded(formula=None, record_dir=None):  # pylint: disable=redefined-outer-name
    """
    The packages labsalt recorded as installed by itself for ``formula``
    (``<record_dir>/installed-packages``); [] when there is no record.

    CLI Example:

    .. code-block:: bash

        salt-call labsalt_packages.recorded coturn
    """
    return _read(os.path.join(__salt__["labsalt_packages.record_dir"](formula, record_dir), RECORD))


def displaced(formula=None, record_dir=None):  # pylint: disable=redefined-outer-name
    """
    The packages apt removed to make room for what labsalt installed for
    ``formula`` (``<record_dir>/displaced-packages``); clean reinstalls them.

    CLI Example:

    .. code-block:: bash

        salt-call labsalt_packages.displaced spindown
    """
    return _read(
        os.path.join(__salt__["labsalt_packages.record_dir"](formula, record_dir), DISPLACED)
    )
