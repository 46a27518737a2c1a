"""
States of the spindown formula that need to remember what they changed, so
that ``spindown.clean`` puts back exactly what was there before (a timer the
admin had disabled stays disabled; postfix comes back only if it was there).

The record lives in one JSON file on the target (``undo_file``), written by
``spindown.undo_set``.
"""

import contextlib
import os
import shutil

__virtualname__ = "spindown"

UNDO_FILE = "/var/lib/labsalt/spindown-undo.json"


def __virtual__():
    if "spindown.undo_get" not in __salt__:
        return False, "spindown state: the spindown execution module is not available"
    return __virtualname__


def _ret(name, changes=None, comment="", result=True):
    if __opts__["test"] and changes:
        result = None
    return {"name": name, "result": result, "changes": changes or {}, "comment": comment}


def _unit_state(unit):
    enabled = __salt__["service.enabled"](unit)
    active = __salt__["service.status"](unit)
    return enabled, active


# --------------------------------------------------------------------------- units


def units_disabled(name, units, undo_file=UNDO_FILE):
    """
    Disable and stop ``units`` (timers or services), remembering under
    ``name`` which of them were enabled or running, so that
    :py:func:`units_restored` can bring exactly those back.
    """
    record = __salt__["spindown.undo_get"](name, undo_file) or {}
    changes = {}
    for unit in units:
        enabled, active = _unit_state(unit)
        if not enabled and not active:
            continue
        changes[unit] = {
            "old": ("enabled" if enabled else "disabled") + (", active" if active else ""),
            "new": "disabled, stopped",
        }
        if __opts__["test"]:
            continue
        previous = record.get(unit, {})
        record[unit] = {
            "enabled": previous.get("enabled", False) or enabled,
            "active": previous.get("active", False) or active,
        }
        __salt__["spindown.undo_set"](name, record, undo_file)
        if enabled:
            __salt__["service.disable"](unit)
        if active:
            __salt__["service.stop"](unit)
        if __salt__["service.enabled"](unit) or __salt__["service.status"](unit):
            return _ret(
                name, changes, f"{unit} is still enabled or running after disable --now", False
            )
    if not changes:
        return _ret(name, comment=f"{', '.join(units) or 'no units'}: already disabled and stopped")
    verb = "would disable" if __opts__["test"] else "disabled"
    return _ret(name, changes, f"{verb} and stopped {', '.join(changes)}")


def units_restored(name, undo_file=UNDO_FILE):
    """Re-enable and restart what :py:func:`units_disabled` recorded under ``name``."""
    record = __salt__["spindown.undo_get"](name, undo_file) or {}
    if not record:
        return _ret(name, comment="nothing recorded to restore")
    changes = {}
    for unit, was in sorted(record.items()):
        changes[unit] = {
            "old": "disabled, stopped",
            "new": ("enabled" if was["enabled"] else "disabled")
            + (", active" if was["active"] else ""),
        }
        if __opts__["test"]:
            continue
        if was["enabled"]:
            __salt__["service.enable"](unit)
        if was["active"]:
            __salt__["service.start"](unit)
    if not __opts__["test"]:
        __salt__["spindown.undo_set"](name, None, undo_file)
    verb = "would restore" if __opts__["test"] else "restored"
    return _ret(name, changes, f"{verb} {', '.join(changes)}")


# --------------------------------------------------------------------------- packages


def packages_removed(name, pkgs, undo_file=UNDO_FILE):
    """Remove ``pkgs``, remembering under ``name`` which were installed."""
    installed = [pkg for pkg in pkgs if __salt__["pkg.version"](pkg)]
    if not installed:
        return _ret(name, comment=f"{', '.join(pkgs)}: not installed")
    changes = {pkg: {"old": "installed", "new": "removed"} for pkg in installed}
    if __opts__["test"]:
        return _ret(name, changes, f"would remove {', '.join(installed)}")
    record = __salt__["spindown.undo_get"](name, undo_file) or []
    __salt__["spindown.undo_set"](name, sorted(set(record) | set(installed)), undo_file)
    before = set(__salt__["pkg.list_pkgs"]())
    __salt__["pkg.remove"](pkgs=installed)
    # apt also removes what depends on them (bsd-mailx on an MTA): record those
    # too, so that clean reinstalls everything that went.
    gone = before - set(__salt__["pkg.list_pkgs"]())
    __salt__["spindown.undo_set"](name, sorted(set(record) | set(installed) | gone), undo_file)
    for pkg in sorted(gone - set(installed)):
        changes[pkg] = {"old": "installed", "new": "removed (it depends on a removed package)"}
    left = [pkg for pkg in installed if __salt__["pkg.version"](pkg)]
    if left:
        return _ret(name, changes, f"{', '.join(left)} still installed after removal", False)
    return _ret(name, changes, f"removed {', '.join(sorted(changes))}")


def packages_restored(name, undo_file=UNDO_FILE):
    """Reinstall what :py:func:`packages_removed` recorded under ``name``."""
    record = __salt__["spindown.undo_get"](name, undo_file) or []
    missing = [pkg for pkg in record if not __salt__["pkg.version"](pkg)]
    if not missing:
        if record and not __opts__["test"]:
            __salt__["spindown.undo_set"](name, None, undo_file)
        return _ret(name, comment="nothing recorded to reinstall")
    changes = {pkg: {"old": "removed", "new": "installed"} for pkg in missing}
    if __opts__["test"]:
        return _ret(name, changes, f"would reinstall {', '.join(missing)}")
    # Exactly what went, without pulling in Recommends it did not have.
    __salt__["pkg.install"](pkgs=missing, install_recommends=False)
    left = [pkg for pkg in missing if not __salt__["pkg.version"](pkg)]
    if left:
        return _ret(name, changes, f"could not reinstall {', '.join(left)}", False)
    __salt__["spindown.undo_set"](name, None, undo_file)
    return _ret(name, changes, f"reinstalled {', '.join(missing)}")


def packages_added(name, pkgs, undo_file=UNDO_FILE):
    """
    Install ``pkgs``, remembering under ``name`` which were missing (clean purges
    only those) and under ``<name>_displaced`` what apt removed to make room (dma
    conflicts with any other MTA: exim4 goes), which clean puts back.
    """
    missing = [pkg for pkg in pkgs if not __salt__["pkg.version"](pkg)]
    if not missing:
        return _ret(name, comment=f"{', '.join(pkgs)}: installed")
    changes = {pkg: {"old": "", "new": "installed"} for pkg in missing}
    if __opts__["test"]:
        return _ret(name, changes, f"would install {', '.join(missing)}")
    record = __salt__["spindown.undo_get"](name, undo_file) or []
    __salt__["spindown.undo_set"](name, sorted(set(record) | set(missing)), undo_file)
    before = set(__salt__["pkg.list_pkgs"]())
    # Without Recommends: smartmontools would pull in bsd-mailx and with it an MTA
    # with a queue daemon, which is what the mail step removes.
    __salt__["pkg.install"](pkgs=missing, install_recommends=False)
    displaced = before - set(__salt__["pkg.list_pkgs"]())
    if displaced:
        key = f"{name}_displaced"
        old = __salt__["spindown.undo_get"](key, undo_file) or []
        __salt__["spindown.undo_set"](key, sorted(set(old) | displaced), undo_file)
        for pkg in sorted(displaced):
            changes[pkg] = {"old": "installed", "new": f"removed (conflicts with {missing[0]})"}
    left = [pkg for pkg in missing if not __salt__["pkg.version"](pkg)]
    if left:
        return _ret(name, changes, f"could not install {', '.join(left)}", False)
    return _ret(name, changes, f"installed {', '.join(missing)}")


def packages_dropped(name, undo_file=UNDO_FILE):
    """
    Purge what :py:func:`packages_added` installed (and nothing that was there
    before), after reinstalling what it displaced, so that packages depending on
    either (bsd-mailx on an MTA) stay.
    """
    record = __salt__["spindown.undo_get"](name, undo_file) or []
    key = f"{name}_displaced"
    displaced = __salt__["spindown.undo_get"](key, undo_file) or []
    present = [pkg for pkg in record if __salt__["pkg.version"](pkg)]
    back = [pkg for pkg in displaced if not __salt__["pkg.version"](pkg)]
    if not present and not back:
        if (record or displaced) and not __opts__["test"]:
            __salt__["spindown.undo_set"](name, None, undo_file)
            __salt__["spindown.undo_set"](key, None, undo_file)
        return _ret(name, comment="nothing recorded to purge")
    changes = {pkg: {"old": "installed", "new": "purged"} for pkg in present}
    changes.update({pkg: {"old": "removed", "new": "installed"} for pkg in back})
    if __opts__["test"]:
        return _ret(name, changes, f"would purge {', '.join(present)}, reinstall {', '.join(back)}")
    before = set(__salt__["pkg.list_pkgs"]())
    if back:
        # apt removes the conflicting package it displaced on its own.
        __salt__["pkg.install"](pkgs=back, install_recommends=False)
    __salt__["pkg.purge"](pkgs=present)
    lost = before - set(__salt__["pkg.list_pkgs"]()) - set(present)
    if lost:
        __salt__["pkg.install"](pkgs=sorted(lost), install_recommends=False)
    left = [pkg for pkg in present if __salt__["pkg.version"](pkg)]
    left += [pkg for pkg in back + sorted(lost) if not __salt__["pkg.version"](pkg)]
    if left:
        return _ret(name, changes, f"could not purge or reinstall {', '.join(left)}", False)
    __salt__["spindown.undo_set"](name, None, undo_file)
    __salt__["spindown.undo_set"](key, None, undo_file)
    return _ret(
        name,
        changes,
        f"purged {', '.join(present) or 'nothing'}, reinstalled {', '.join(back) or 'nothing'}",
    )


# --------------------------------------------------------------------------- cron jobs


def jobs_moved(name, source, target, undo_file=UNDO_FILE):
    """Move every job in ``source`` (e.g. /etc/cron.hourly) to ``target``, remembering which."""
    jobs = (
        sorted(n for n in os.listdir(source) if not n.startswith("."))
        if os.path.isdir(source)
        else []
    )
    if not jobs:
        return _ret(name, comment=f"{source} has no jobs")
    clash = [job for job in jobs if os.path.exists(os.path.join(target, job))]
    if clash:
        return _ret(
            name,
            comment=f"{target} already has {', '.join(clash)}; move them by hand",
            result=False,
        )
    changes = {job: {"old": source, "new": target} for job in jobs}
    if __opts__["test"]:
        return _ret(name, changes, f"would move {', '.join(jobs)} to {target}")
    record = __salt__["spindown.undo_get"](name, undo_file) or []
    __salt__["spindown.undo_set"](name, sorted(set(record) | set(jobs)), undo_file)
    for job in jobs:
        shutil.move(os.path.join(source, job), os.path.join(target, job))
    return _ret(name, changes, f"moved {', '.join(jobs)} to {target}")


def jobs_restored(name, source, target, undo_file=UNDO_FILE):
    """Move the jobs :py:func:`jobs_moved` recorded back from ``target`` to ``source``."""
    record = __salt__["spindown.undo_get"](name, undo_file) or []
    jobs = [job for job in record if os.path.exists(os.path.join(target, job))]
    if not jobs:
        if record and not __opts__["test"]:
            __salt__["spindown.undo_set"](name, None, undo_file)
        return _ret(name, comment="nothing recorded to move back")
    changes = {job: {"old": target, "new": source} for job in jobs}
    if __opts__["test"]:
        return _ret(name, changes, f"would move {', '.join(jobs)} back to {source}")
    for job in jobs:
        shutil.move(os.path.join(target, job), os.path.join(source, job))
    __salt__["spindown.undo_set"](name, None, undo_file)
    return _ret(name, changes, f"moved {', '.join(jobs)} back to {source}")


# --------------------------------------------------------------------------- clock files


def files_recorded(name, paths, undo_file=UNDO_FILE):
    """
    Before tmpfiles.d links replace ``paths``, remember for each whether it was a
    file (and its time stamp) or absent, and whether its directory existed.
    """
    record = __salt__["spindown.undo_get"](name, undo_file) or {}
    new = {}
    for path in paths:
        if path in record or os.path.islink(path):
            continue
        new[path] = {
            "file": os.path.isfile(path),
            "mtime": os.path.getmtime(path) if os.path.isfile(path) else None,
            "dir": os.path.isdir(os.path.dirname(path)),
        }
    if not new:
        return _ret(name, comment="recorded before")
    if not __opts__["test"]:
        __salt__["spindown.undo_set"](name, {**record, **new}, undo_file)
    return _ret(name, {"recorded": sorted(new)}, f"recorded {', '.join(sorted(new))}")


def files_restored(name, user, undo_file=UNDO_FILE):
    """
    Undo tmpfiles.d links recorded by :py:func:`files_recorded`: a file that was
    there comes back as a regular file with the newer of its old and the /run
    time stamp; a link where nothing was is removed, with a directory it needed.
    """
    record = __salt__["spindown.undo_get"](name, undo_file) or {}
    todo = {path: was for path, was in record.items() if os.path.islink(path)}
    if not todo:
        if record and not __opts__["test"]:
            __salt__["spindown.undo_set"](name, None, undo_file)
        return _ret(name, comment="no links to undo")
    changes = {
        path: {"old": "link", "new": "file" if was["file"] else "absent"}
        for path, was in todo.items()
    }
    if __opts__["test"]:
        return _ret(name, changes, f"would restore {', '.join(sorted(todo))}")
    for path, was in todo.items():
        target = os.path.realpath(path)
        os.unlink(path)
        if was["file"]:
            stamp = max(
                was["mtime"] or 0, os.path.getmtime(target) if os.path.exists(target) else 0
            )
            with open(path, "w", encoding="utf-8"):
                pass
            os.utime(path, (stamp, stamp))
            __salt__["file.chown"](path, user, user)
        elif not was["dir"]:
            with contextlib.suppress(OSError):
                os.rmdir(os.path.dirname(path))
    __salt__["spindown.undo_set"](name, None, undo_file)
    return _ret(name, changes, f"restored {', '.join(sorted(todo))}")


# --------------------------------------------------------------------------- hdparm units


def _show(unit):
    out = __salt__["cmd.run_stdout"](
        ["systemctl", "show", "-p", "ActiveState,Result,ExecMainStartTimestampMonotonic", unit],
        python_shell=False,
    )
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def _skip_comment(unit, device):
    why = __salt__["spindown.state"](device).get("reason", "its ExecCondition (hdparm -C) failed")
    return f"{unit} ran and skipped itself: {why}"


def applied(name, device, restart=False):
    """
    Run the oneshot hdparm unit ``name`` once (it stays active afterwards).  A
    unit whose ``ExecCondition=hdparm -C`` found a disk that cannot take power
    commands counts as applied, with the reason in the comment: the setting
    is in place and takes effect on a disk that supports it.
    """
    show = _show(name)
    ran = show.get("ActiveState") == "active" or show.get("Result") == "exec-condition"
    if ran and not restart:
        if show.get("Result") == "exec-condition":
            return _ret(name, comment=_skip_comment(name, device))
        return _ret(name, comment=f"{name} is active (standby timer set)")
    verb = "restart" if ran else "start"
    changes = {name: {"old": show.get("ActiveState", "unknown"), "new": "applied"}}
    if __opts__["test"]:
        return _ret(name, changes, f"would {verb} {name}")
    __salt__["cmd.run_all"](["systemctl", "daemon-reload"], python_shell=False)
    run = __salt__["cmd.run_all"](["systemctl", "restart", name], python_shell=False)
    show = _show(name)
    if show.get("ActiveState") == "active":
        return _ret(name, changes, f"{name}: standby timer set")
    if show.get("Result") == "exec-condition":
        changes[name]["new"] = "skipped (disk cannot take power commands)"
        return _ret(name, changes, _skip_comment(name, device))
    journal = __salt__["cmd.run_stdout"](
        ["journalctl", "-u", name, "-n", "5", "--no-pager", "-o", "cat"], python_shell=False
    )
    return _ret(
        name,
        changes,
        f"{name} failed ({show.get('Result')}): {run['stderr'].strip()} {journal.strip()}",
        False,
    )


def mod_watch(name, device, **kwargs):
    """A change of the unit or of /etc/hdparm.conf runs the unit again."""
    return applied(name, device, restart=True)


# --------------------------------------------------------------------------- small commands


def tmpfiles_created(name):
    """``systemd-tmpfiles --create <name>`` (for ``onchanges``; no shell)."""
    if __opts__["test"]:
        return _ret(name, {name: "created"}, f"would run systemd-tmpfiles --create {name}")
    proc = __salt__["cmd.run_all"](
        ["systemd-tmpfiles", "--create", name], python_shell=False, ignore_retcode=True
    )
    if proc["retcode"] != 0:
        return _ret(
            name,
            comment=f"systemd-tmpfiles --create {name}: {proc['stderr'].strip()}",
            result=False,
        )
    return _ret(name, {name: "created"}, f"systemd-tmpfiles --create {name}")


def daemon_reloaded(name):
    """``systemctl daemon-reload`` (for ``onchanges``; no shell)."""
    if __opts__["test"]:
        return _ret(name, {name: "reloaded"}, "would run systemctl daemon-reload")
    proc = __salt__["cmd.run_all"](
        ["systemctl", "daemon-reload"], python_shell=False, ignore_retcode=True
    )
    if proc["retcode"] != 0:
        return _ret(
            name, comment=f"systemctl daemon-reload: {proc['stderr'].strip()}", result=False
        )
    return _ret(name, {name: "reloaded"}, "systemctl daemon-reload")
