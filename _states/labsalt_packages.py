"""
The one way labsalt formulas install and remove Debian packages, so that clean
takes away only what labsalt brought.

``labsalt_packages.installed`` installs the packages of ``pkgs`` the host lacks
and records them, with the dependencies apt pulls in, in
``/var/lib/labsalt/<formula>/installed-packages`` (one package a line) *before*
installing (apt's own simulation says what will come), then corrects the
record to what really came.  With ``record_displaced: true`` the packages apt
removes to make room (dma replacing an MTA) go to ``displaced-packages``; without
it, an install that would remove packages is refused.

``labsalt_packages.removed`` reinstalls the displaced packages, purges the
recorded packages apt marks as installed by request, then the recorded
dependencies nothing else needs, and removes the record.  A recorded package
whose purge would take a package labsalt did not install with it stays.

Test mode asks dpkg's status database only (no apt, nothing written); unlike
``pkg.installed`` it never runs ``apt-get update``.  Package lists are
refreshed in a real run only when apt cannot locate a package.
"""

import os
import shutil

from salt.exceptions import CommandExecutionError, SaltInvocationError

__virtualname__ = "labsalt_packages"


def __virtual__():
    if "labsalt_packages.missing" not in __salt__:
        return False, "the labsalt_packages execution module is not loaded"
    return __virtualname__


def _ret(name):
    return {"name": name, "result": True, "changes": {}, "comment": ""}


def _write(path, names):
    """Write ``names`` (sorted, one a line) to ``path`` atomically; none: remove it."""
    if not names:
        if os.path.exists(path):
            os.unlink(path)
        return
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write("".join(f"{name}\n" for name in sorted(set(names))))
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def _changes(pkgs, old, new):
    return {pkg: {"old": old, "new": new} for pkg in pkgs}


def _prune(base):
    """Remove the record directory, and /var/lib/labsalt, when nothing is left in them."""
    dirs = [base]
    if os.path.dirname(base) == "/var/lib/labsalt":
        dirs.append("/var/lib/labsalt")
    for directory in dirs:
        try:
            os.rmdir(directory)
        except OSError:
            return


def _paths(formula, record_dir):
    base = __salt__["labsalt_packages.record_dir"](formula, record_dir)
    return base, os.path.join(base, "installed-packages"), os.path.join(base, "displaced-packages")


def _simulate(missing, install_recommends, refresh):
    """apt's plan for ``missing``; refresh the lists once when apt cannot locate one."""
    try:
        return __salt__["labsalt_packages.simulate_install"](missing, install_recommends), False
    except CommandExecutionError as exc:
        if (
            not refresh
            or "Unable to locate" not in str(exc)
            and "has no installation" not in str(exc)
        ):
            raise
    __salt__["pkg.refresh_db"]()
    return __salt__["labsalt_packages.simulate_install"](missing, install_recommends), True


def installed(  # noqa: PLR0917 (Salt passes state arguments by name)
    name,
    pkgs=None,
    formula=None,
    record_dir=None,
    record_displaced=False,
    install_recommends=False,
    refresh=True,
):
    """
    Install the packages of ``pkgs`` (default: ``[name]``) this host lacks and
    record what labsalt installed under ``record_dir`` (default
    ``/var/lib/labsalt/<formula>``).

    .. code-block:: yaml

        coturn-package:
          labsalt_packages.installed:
            - pkgs: [coturn, nftables]
            - formula: coturn
    """
    ret = _ret(name)
    try:
        pkgs = pkgs if pkgs is not None else [name]
        _, record, displaced_record = _paths(formula, record_dir)
        missing = __salt__["labsalt_packages.missing"](pkgs)
    except (SaltInvocationError, CommandExecutionError) as exc:
        ret.update(result=False, comment=str(exc))
        return ret
    if not missing:
        ret["comment"] = f"installed: {', '.join(pkgs) or 'nothing asked'}"
        return ret
    if __opts__["test"]:
        ret.update(
            result=None,
            changes=_changes(missing, "", "installed"),
            comment=f"would install {', '.join(missing)} (with the dependencies apt pulls in) "
            f"and record them in {record}",
        )
        return ret

    try:
        before = set(__salt__["labsalt_packages.installed_set"]())
        plan, refreshed = _simulate(missing, install_recommends, refresh)
    except CommandExecutionError as exc:
        ret.update(result=False, comment=f"apt cannot install {', '.join(missing)}: {exc}")
        return ret
    would_go = sorted(set(plan["remove"]) & before)
    if would_go and not record_displaced:
        ret.update(
            result=False,
            comment=f"refusing: installing {', '.join(missing)} would remove "
            f"{', '.join(would_go)}, which labsalt did not install",
        )
        return ret
    old = __salt__["labsalt_packages.recorded"](formula, record_dir)
    old_displaced = __salt__["labsalt_packages.displaced"](formula, record_dir)
    # Recorded first: an install that dies halfway leaves a record clean can use.
    _write(record, set(old) | set(missing) | (set(plan["install"]) - before))
    if would_go:
        _write(displaced_record, set(old_displaced) | set(would_go))
    error = None
    try:
        __salt__["pkg.install"](
            pkgs=missing, refresh=False, install_recommends=bool(install_recommends)
        )
    except CommandExecutionError as exc:
        error = str(exc).strip().splitlines()[-1] if str(exc).strip() else repr(exc)
    after = set(__salt__["labsalt_packages.installed_set"]())
    new = sorted(after - before)
    gone = sorted(before - after)
    # The record says what really came (and went).
    _write(record, set(old) | set(new))
    if record_displaced:
        _write(displaced_record, set(old_displaced) | set(gone))
    ret["changes"] = {
        **_changes(new, "", "installed"),
        **_changes(gone, "installed", "removed (displaced)"),
    }
    still = __salt__["labsalt_packages.missing"](missing)
    if error or still:
        ret.update(
            result=False,
            comment=f"{', '.join(still or missing)} not installed"
            + (f": {error}" if error else ""),
        )
        return ret
    ret["comment"] = f"installed {', '.join(new)}; recorded in {record}" + (
        " (package lists refreshed: apt could not locate a package)" if refreshed else ""
    )
    if gone:
        ret["comment"] += f"; apt removed {', '.join(gone)} (recorded, clean puts them back)"
    return ret


def _purgeable(present, recorded):
    """The packages of ``present`` whose purge takes nothing but recorded packages."""
    keep = {}
    for pkg in present:
        extra = sorted(set(__salt__["labsalt_packages.simulate_purge"]([pkg])) - set(recorded))
        if extra:
            keep[pkg] = extra
    return [pkg for pkg in present if pkg not in keep], keep


def _remove_record_dir(ret, base):
    """``remove_record_dir``: the formula's whole state directory goes, then an empty parent."""
    if not os.path.isdir(base):
        return ret
    if __opts__["test"]:
        ret["result"] = None if ret["result"] is True else ret["result"]
        ret["changes"][base] = "removed"
        ret["comment"] += f"; would remove {base}"
        return ret
    shutil.rmtree(base)
    os.makedirs(base)  # _prune's rmdir takes it, then an empty /var/lib/labsalt
    _prune(base)
    ret["changes"][base] = "removed"
    ret["comment"] += f"; removed {base}"
    return ret


def removed(name, formula=None, record_dir=None, reinstall_displaced=True, remove_record_dir=False):
    """
    Purge what :py:func:`installed` recorded for ``formula`` (packages the host
    had before stay), reinstall what it displaced, and remove the record.
    With ``remove_record_dir: true`` the record directory goes too, with what
    else the formula kept there (its last clean state), and /var/lib/labsalt
    when nothing else is left in it.

    .. code-block:: yaml

        coturn-package-removed:
          labsalt_packages.removed:
            - formula: coturn
    """
    ret = _purge_recorded(_ret(name), formula, record_dir, reinstall_displaced)
    if remove_record_dir and ret["result"] is not False:
        ret = _remove_record_dir(ret, _paths(formula, record_dir)[0])
    return ret


def _purge_recorded(ret, formula, record_dir, reinstall_displaced):
    try:
        base, record, displaced_record = _paths(formula, record_dir)
        recorded = __salt__["labsalt_packages.recorded"](formula, record_dir)
        displaced = (
            __salt__["labsalt_packages.displaced"](formula, record_dir)
            if reinstall_displaced
            else []
        )
        have = set(__salt__["labsalt_packages.installed_set"]())
    except (SaltInvocationError, CommandExecutionError) as exc:
        ret.update(result=False, comment=str(exc))
        return ret
    present = [pkg for pkg in recorded if pkg in have]
    back = [pkg for pkg in displaced if pkg not in have]
    if not present and not back:
        if not os.path.exists(record) and not os.path.exists(displaced_record):
            ret["comment"] = f"no record in {base}: labsalt installed no packages here"
            return ret
        if __opts__["test"]:
            ret.update(result=None, changes={record: "removed"}, comment=f"would remove {record}")
            return ret
        _write(record, [])
        _write(displaced_record, [])
        _prune(base)
        ret.update(changes={record: "removed"}, comment=f"recorded packages gone; removed {record}")
        return ret
    if __opts__["test"]:
        ret.update(
            result=None,
            changes={
                **_changes(back, "removed", "installed"),
                **_changes(present, "installed", "purged"),
            },
            comment=(f"would reinstall {', '.join(back)}; " if back else "")
            + f"would purge {', '.join(present) or 'nothing'} (recorded in {record}) "
            "where nothing the site installed needs them",
        )
        return ret
    purged = []
    try:
        if back:
            # What apt removed for labsalt comes back first, without Recommends
            # it did not have; apt may take a recorded package for it (a conflict).
            __salt__["pkg.install"](pkgs=back, refresh=False, install_recommends=False)
        have = set(__salt__["labsalt_packages.installed_set"]())
        manual = set(__salt__["labsalt_packages.manual"]())
        top = [pkg for pkg in recorded if pkg in have and pkg in manual]
        top, kept = _purgeable(top, recorded)
        if top:
            __salt__["pkg.purge"](pkgs=top)
        for _ in range(10):  # dependencies of dependencies become removable in turn
            loose = [p for p in __salt__["labsalt_packages.autoremovable"]() if p in recorded]
            if not loose:
                break
            __salt__["pkg.purge"](pkgs=loose)
        after = set(__salt__["labsalt_packages.installed_set"]())
    except CommandExecutionError as exc:
        ret.update(
            result=False, comment=f"removing the packages recorded in {record} failed: {exc}"
        )
        return ret
    purged = sorted((set(recorded) & have) - after)
    left = sorted(set(recorded) & after)
    still_gone = sorted(set(back) - after)
    ret["changes"] = {
        **_changes(sorted(set(back) & after), "removed", "installed"),
        **_changes(purged, "installed", "purged"),
    }
    if still_gone:
        ret.update(result=False, comment=f"could not reinstall {', '.join(still_gone)}")
        _write(displaced_record, still_gone)
        return ret
    _write(displaced_record, [])
    _write(record, left)
    _prune(base)
    ret["comment"] = f"purged {', '.join(purged) or 'nothing'}"
    if kept:
        why = "; ".join(f"{pkg} (needed by {', '.join(need)})" for pkg, need in kept.items())
        ret["comment"] += f"; kept {why}: the site installed packages that need them"
    elif left:
        ret["comment"] += f"; {', '.join(left)} still needed by other packages, kept in {record}"
    return ret
