"""
States over the bind_ad execution module: BIND's files for the AD domain, named
told about them until it serves them, and the way back.

The files are computed when the state runs (not when the SLS renders), so that
on a fresh host the site files bind9 installs are the ones edited, and an
option of the site's that conflicts with the AD's stops the run with one line.

- :func:`configured` writes the formula's own files (its zone statement, its
  options fragment, the zone file) and adds one marked include line to the
  site's named.conf.options and named.conf.local, after ``named-checkconf -z``
  accepted the whole set in a temporary copy.  The site's zones and options
  stay as they are.
- :func:`reloaded` tells named (``rndc reconfig``, ``rndc reload <zone>``) until
  it serves what is on disk: the digest of the last configuration named took is
  kept in ``state_dir``, and the zone's served serial (``rndc zonestatus``) is
  compared with the file's, so a failed reload is retried on the next run.
- :func:`removed` takes the include lines out of the site's files and removes
  the formula's own files, leaving the site's files as they were.
"""

import difflib
import os
import tempfile
import time

from salt.exceptions import CommandExecutionError, SaltInvocationError

__virtualname__ = "bind_ad"


def __virtual__():
    if "bind_ad.render" not in __salt__:
        return (False, "bind_ad: the bind_ad execution module is not available")
    return __virtualname__


def _ret(name):
    return {"name": name, "result": True, "changes": {}, "comment": ""}


def _read(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except (FileNotFoundError, NotADirectoryError):
        return None


def _diff(path, old, new):
    if old is None:
        return "new file"
    if new is None:
        return "removed"
    lines = difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True), path, path
    )
    return "".join(lines)


def _group_id(name):
    import grp  # noqa: PLC0415 (POSIX only; the state runs on Debian)

    try:
        return grp.getgrnam(name).gr_gid
    except (KeyError, TypeError):
        return 0


def _write(path, text, group, created_dirs):
    """Replace ``path`` atomically; an existing file keeps its mode and owner."""
    directory = os.path.dirname(path)
    missing = []
    probe = directory
    while probe and not os.path.isdir(probe):
        missing.append(probe)
        probe = os.path.dirname(probe)
    os.makedirs(directory, mode=0o755, exist_ok=True)
    created_dirs.extend(reversed(missing))
    try:
        old = os.stat(path)
        mode, uid, gid = old.st_mode & 0o7777, old.st_uid, old.st_gid
    except FileNotFoundError:
        mode, uid, gid = 0o644, 0, _group_id(group)
    fd, tmp = tempfile.mkstemp(prefix=".bind_ad-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, mode)
        os.chown(tmp, uid, gid)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def configured(name, params):
    """
    BIND's files for the AD domain, from the merged parameters (``labsalt.mapdata
    bind_ad``): written only after ``named-checkconf -z`` accepted the whole set
    together with the rest of ``name`` (named.conf) in a temporary copy.

    .. code-block:: yaml

        bind_ad-config:
          bind_ad.configured:
            - name: /etc/bind/named.conf
            - params: {{ mapdata | json }}
    """
    ret = _ret(name)
    try:
        rendered = __salt__["bind_ad.render"](params)
    except SaltInvocationError as exc:
        ret["result"], ret["comment"] = False, str(exc)
        return ret
    files = rendered["files"]
    pending = {p: t for p, t in files.items() if _read(p) != t}
    if not pending:
        ret["comment"] = f"BIND's files for {rendered['domain']} are in place"
        return ret
    changes = {p: _diff(p, _read(p), t) for p, t in sorted(pending.items())}
    if __opts__["test"]:
        ret["result"], ret["changes"] = None, changes
        ret["comment"] = f"{len(pending)} file(s) would be written after named-checkconf -z"
        if rendered["missing"]:
            ret["comment"] += (
                f"; {', '.join(rendered['missing'])} do not exist yet (bind9 is not installed):"
                " the include lines go there once it is"
            )
        return ret
    if (
        rendered["missing"]
        and params.get("config_dir", "/etc/bind")
        and any(p.endswith("named.conf.options") for p in rendered["missing"])
    ):
        ret["result"] = False
        ret["comment"] = (
            f"bind_ad:config_dir: {rendered['missing'][0]} does not exist; bind_ad adds its "
            "options to the site's options block there"
        )
        return ret
    try:
        __salt__["bind_ad.check_config"](files, named_conf=name)
    except CommandExecutionError as exc:
        ret["result"], ret["comment"] = False, str(exc)
        return ret
    created = []
    # The formula's own files first, the site's include lines last: named never
    # reads an include line whose file is missing.
    order = sorted(pending, key=lambda p: (p.endswith((".options", ".local")), p))
    for path in order:
        _write(path, pending[path], params.get("group") or "bind", created)
    _remember_dirs(params, created)
    ret["changes"] = changes
    ret["comment"] = f"{len(pending)} file(s) written; named-checkconf -z accepted the set"
    return ret


def _state_dir(params):
    return params.get("state_dir") or "/var/lib/labsalt/bind_ad"


def _remember_dirs(params, created):
    """Directories the formula created (the zone directory), for clean to remove."""
    if not created:
        return
    record = os.path.join(_state_dir(params), "created-dirs")
    known = (_read(record) or "").split("\n")
    text = "".join(f"{d}\n" for d in dict.fromkeys([*filter(None, known), *created]))
    os.makedirs(_state_dir(params), mode=0o755, exist_ok=True)
    _write(record, text, "root", [])


def reloaded(name, params, wait=10):
    """
    named serves the configuration and zone on disk: ``rndc reconfig`` when the
    named.conf files differ from what named last took (digest kept in
    ``state_dir``), ``rndc reload <zone>`` while the served serial differs from
    the zone file's.  A failure leaves both pending for the next run.

    .. code-block:: yaml

        bind_ad-named-reloaded:
          bind_ad.reloaded:
            - name: ad.example.org
            - params: {{ mapdata | json }}
    """
    ret = _ret(name)
    try:
        rendered = __salt__["bind_ad.render"](params)
    except SaltInvocationError as exc:
        ret["result"], ret["comment"] = False, str(exc)
        return ret
    rndc = params.get("rndc") or ["rndc"]
    domain, zone_file = rendered["domain"], rendered["zone_file"]
    digest = __salt__["bind_ad.config_digest"](rendered["files"], zone_file)
    marker = os.path.join(_state_dir(params), "reconfigured")
    need_reconfig = (_read(marker) or "").strip() != digest
    want = None
    if zone_file:
        want = __salt__["bind_ad.zone_serial"](rendered["files"][zone_file])
    served = __salt__["bind_ad.served_serial"](rndc, domain) if zone_file else None
    need_reload = bool(zone_file) and served != want
    if not need_reconfig and not need_reload:
        ret["comment"] = "named serves the configuration on disk" + (
            f" and {domain} serial {served}" if zone_file else ""
        )
        return ret
    if __opts__["test"]:
        ret["result"] = None
        if need_reconfig:
            ret["changes"]["reconfig"] = "rndc reconfig"
        if need_reload:
            ret["changes"]["reload"] = f"{domain}: served serial {served}, file serial {want}"
        ret["comment"] = "named would be told about the new files"
        return ret
    try:
        if need_reconfig:
            __salt__["bind_ad.rndc"](rndc, "reconfig")
            ret["changes"]["reconfig"] = "rndc reconfig"
            os.makedirs(_state_dir(params), mode=0o755, exist_ok=True)
            _write(marker, digest + "\n", "root", [])
        if zone_file:
            served = _wait_serial(rndc, domain, want, 2 if need_reconfig else 0)
            if served != want:
                __salt__["bind_ad.rndc"](rndc, "reload", domain)
                served = _wait_serial(rndc, domain, want, wait)
                ret["changes"]["reload"] = f"{domain}: serial {served}"
            if served != want:
                raise CommandExecutionError(
                    f"named serves {domain} with serial {served}, the file has {want}"
                )
    except CommandExecutionError as exc:
        ret["result"] = False
        ret["comment"] = f"{exc}; retried on the next run"
        return ret
    ret["comment"] = "named was told about the new files"
    return ret


def _wait_serial(rndc, domain, want, seconds):
    deadline = time.monotonic() + seconds
    while True:
        served = __salt__["bind_ad.served_serial"](rndc, domain)
        if served == want or time.monotonic() >= deadline:
            return served
        time.sleep(0.2)


def removed(name, params):
    """
    The way back: the marked include lines out of the site's named.conf.options
    and named.conf.local (each file as it was before), the formula's own files
    and zone file removed, directories it created removed when empty, and named
    told (``rndc reconfig``) when it is running.

    .. code-block:: yaml

        bind_ad-config-removed:
          bind_ad.removed:
            - name: /etc/bind/named.conf
            - params: {{ mapdata | json }}
    """
    ret = _ret(name)
    plan = __salt__["bind_ad.cleaned"](params)
    state = _state_dir(params)
    dirs_record = os.path.join(state, "created-dirs")
    dirs = [d for d in (_read(dirs_record) or "").split("\n") if d]
    extra = [p for p in (os.path.join(state, "reconfigured"), dirs_record) if os.path.exists(p)]
    empty_dirs = [d for d in reversed(dirs) if os.path.isdir(d)]
    if not plan["files"] and not plan["remove"] and not extra and not empty_dirs:
        ret["comment"] = "nothing of bind_ad's is left in BIND's configuration"
        return ret
    changes = {p: _diff(p, _read(p), t) for p, t in plan["files"].items()}
    changes.update({p: "removed" for p in plan["remove"] + extra})
    if __opts__["test"]:
        ret["result"], ret["changes"] = None, changes
        ret["comment"] = "bind_ad's lines and files would be removed"
        return ret
    for path, text in plan["files"].items():
        _write(path, text, "root", [])
    for path in plan["remove"] + extra:
        os.unlink(path)
    for directory in empty_dirs:
        try:
            os.rmdir(directory)
            changes[directory] = "removed"
        except OSError:
            pass  # not empty: something else lives there now
    ret["changes"] = changes
    if plan["files"] or plan["remove"]:
        rndc = params.get("rndc") or ["rndc"]
        try:
            __salt__["bind_ad.rndc"](rndc, "reconfig")
        except CommandExecutionError as exc:
            try:
                __salt__["bind_ad.rndc"](rndc, "status")
            except CommandExecutionError:
                ret["comment"] = "named is not running; it reads the restored files when started"
                return ret
            ret["result"], ret["comment"] = False, str(exc)
            return ret
    ret["comment"] = "bind_ad's lines and files removed"
    return ret


def verified(name, params):
    """
    After the run, the running named is used the way its clients use it (see
    the ``bind_ad.verify`` execution function): one failing check fails the
    state with one line naming it (nothing is undone); a DC that does not
    answer on 53/88 is a warning.  Changes nothing.  In test mode nothing is
    queried (the run has not happened yet): the comment says what would be
    checked.  ``bind_ad:verify:enabled: false`` turns it off.

    .. code-block:: yaml

        bind_ad-verified:
          bind_ad.verified:
            - name: ad.example.org
            - params: {{ mapdata | json }}
    """
    ret = _ret(name)
    if not (params.get("verify") or {}).get("enabled", True):
        ret["comment"] = "not verified: bind_ad:verify:enabled is false"
        return ret
    try:
        if __opts__["test"]:
            checks = __salt__["bind_ad.verify_checks"](params)
            ret["result"] = None
            ret["comment"] = "would check after the run: " + "; ".join(checks)
            return ret
        found = __salt__["bind_ad.verify"](params)
    except SaltInvocationError as exc:
        ret["result"], ret["comment"] = False, str(exc)
        return ret
    if found["warnings"]:
        ret["warnings"] = found["warnings"]
    if found["error"]:
        ret["result"] = False
        ret["comment"] = f"bind_ad verify: {found['error']}"
        return ret
    ret["comment"] = f"named at {found['server']} answers: " + "; ".join(found["checked"])
    if found["warnings"]:
        ret["comment"] += "\nwarning: " + "\nwarning: ".join(found["warnings"])
    return ret
