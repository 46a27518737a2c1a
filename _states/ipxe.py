"""
State for the ipxe formula: the read-only Samba user of the installer share.

Compares the passdb's NT hash with the pillar password, so a second run changes
nothing and test mode predicts truthfully; the password is never shown.
"""

import os

__virtualname__ = "ipxe"
STATE_DIR = "/var/lib/labsalt/ipxe"


def __virtual__():
    if "ipxe.samba_user_hash" not in __salt__:
        return (False, "the ipxe execution module is not loaded")
    return __virtualname__


def samba_user(name, password, conf="/etc/samba/smb.conf"):
    """
    Ensure Samba user ``name`` exists with ``password`` (the Unix user must exist).

    .. code-block:: yaml

        installer:
          ipxe.samba_user:
            - password: secret
            - conf: /etc/samba/smb.conf
    """
    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    current = __salt__["ipxe.samba_user_hash"](name, conf)
    if current == __salt__["ipxe.nt_hash"](password):
        ret["comment"] = f"Samba user {name} has the pillar password"
        return ret
    change = "added" if current is None else "password changed"
    ret["changes"] = {name: change}
    if __opts__["test"]:
        ret["result"] = None
        ret["comment"] = f"Samba user {name} would be {change}"
        return ret
    __salt__["ipxe.samba_set_password"](name, password, conf)
    ret["comment"] = f"Samba user {name} {change}"
    return ret


# --------------------------------------------------------------------------- helpers


def _ret(name, changes=None, comment="", result=True):
    if __opts__["test"] and changes and result:
        result = None
    return {"name": name, "result": result, "changes": changes or {}, "comment": comment}


def _read(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _diff(old, new):
    import difflib  # noqa: PLC0415 (only when something changes)

    return "".join(
        difflib.unified_diff((old or "").splitlines(True), new.splitlines(True), "old", "new")
    )


# --------------------------------------------------------------------------- shared files


def block(name, body, check=None, mode="0644", smb_global=False):
    """
    Keep this formula's marked block (``# BEGIN labsalt ipxe`` ... ``# END labsalt
    ipxe``) in file ``name`` holding ``body``, and leave every other line of the
    file as it is.  ``check`` is an argument list run on a temporary copy of the
    whole new file (the copy's path appended) before it replaces the live one.
    A missing file is created with the block alone.  ``smb_global`` puts a new
    block at the end of smb.conf's [global] section.

    .. code-block:: yaml

        /etc/default/tftpd-hpa:
          ipxe.block:
            - body: TFTP_DIRECTORY='/srv/tftp'
            - check: [/bin/sh, -n]
    """
    old = _read(name)
    new = __salt__["ipxe.block_set"](old or "", body, smb_global)
    if new == old:
        return _ret(name, comment=f"{name}: the labsalt block is in place")
    changes = {"diff": _diff(old, new)}
    if __opts__["test"]:
        return _ret(name, changes, f"{name}: the labsalt block would be written")
    try:
        __salt__["ipxe.write_checked"](name, new, check, int(str(mode), 8))
    except Exception as exc:  # noqa: BLE001 (one failed state with the reason)
        return _ret(name, comment=str(exc), result=False)
    return _ret(name, changes, f"{name}: the labsalt block written")


def block_absent(name, check=None):
    """
    Remove this formula's marked block from ``name`` and nothing else; a file
    that holds nothing else afterwards is removed (the formula created it).

    .. code-block:: yaml

        /etc/default/tftpd-hpa:
          ipxe.block_absent
    """
    old = _read(name)
    if old is None:
        return _ret(name, comment=f"{name} does not exist")
    new = __salt__["ipxe.block_remove"](old)
    if new == old:
        return _ret(name, comment=f"{name} has no labsalt block")
    changes = {"diff": _diff(old, new)}
    if __opts__["test"]:
        return _ret(name, changes, f"{name}: the labsalt block would be removed")
    if not new:
        os.unlink(name)
        return _ret(name, changes, f"{name} removed (it held only the labsalt block)")
    try:
        __salt__["ipxe.write_checked"](name, new, check)
    except Exception as exc:  # noqa: BLE001 (one failed state with the reason)
        return _ret(name, comment=str(exc), result=False)
    return _ret(name, changes, f"{name}: the labsalt block removed")


def copied(name, source, mode="0644"):
    """
    ``name`` is a copy of local file ``source`` (an iPXE binary from Debian's
    ipxe package).  In test mode a source that its package will install later
    in the same run is predicted as a copy instead of failing.
    """
    if not os.path.isfile(source):
        if __opts__["test"]:
            return _ret(
                name,
                {name: f"copied from {source}"},
                f"would copy {source} (not there yet: its package is installed first)",
            )
        return _ret(
            name, comment=f"{source} does not exist (is the ipxe package installed?)", result=False
        )
    want = __salt__["file.get_hash"](source, "sha256")
    have = __salt__["file.get_hash"](name, "sha256") if os.path.isfile(name) else None
    if want == have and oct(os.stat(name).st_mode & 0o7777) == oct(int(str(mode), 8)):
        return _ret(name, comment=f"{name} is a copy of {source}")
    changes = {name: f"copied from {source}"}
    if __opts__["test"]:
        return _ret(name, changes, f"would copy {source}")
    with open(source, "rb") as handle:
        data = handle.read()
    tmp = f"{name}.labsalt-tmp"
    with open(tmp, "wb") as handle:
        handle.write(data)
    os.chmod(tmp, int(str(mode), 8))
    os.replace(tmp, name)
    return _ret(name, changes, f"copied {source}")


def iso_extracted(name, iso):
    """Extract installer ISO ``iso`` into directory ``name`` once (no shell)."""
    if os.path.isdir(name):
        return _ret(name, comment=f"{name} exists")
    changes = {name: f"extracted from {iso}"}
    if __opts__["test"]:
        return _ret(name, changes, f"would extract {iso}")
    try:
        __salt__["ipxe.extract_iso"](iso, name)
    except Exception as exc:  # noqa: BLE001 (one failed state with the reason)
        return _ret(name, comment=str(exc), result=False)
    return _ret(name, changes, f"extracted {iso}")


# --------------------------------------------------------------------------- what labsalt added


def share_user(name, state_dir=None):
    """
    The share's Unix user: a system user without login shell or home, created
    (and recorded, for clean) when missing; an existing user is used as it is.
    """
    state_dir = state_dir or STATE_DIR
    if __salt__["user.info"](name):
        return _ret(name, comment=f"user {name} exists")
    changes = {name: "created (system user, no login)"}
    if __opts__["test"]:
        return _ret(name, changes, f"would create system user {name}")
    done = __salt__["ipxe.recorded"]("created-users", state_dir)
    __salt__["ipxe.record"]("created-users", [*done, name], state_dir)
    proc = __salt__["cmd.run_all"](
        [
            "useradd",
            "--system",
            "--shell",
            "/usr/sbin/nologin",
            "--home-dir",
            "/nonexistent",
            "--no-create-home",
            "--",
            name,
        ],
        python_shell=False,
        ignore_retcode=True,
    )
    if proc["retcode"] != 0:
        return _ret(name, comment=f"useradd {name}: {proc['stderr'].strip()}", result=False)
    return _ret(name, changes, f"created system user {name}")


def share_users_removed(name, conf="/etc/samba/smb.conf", state_dir=None):
    """Remove the Samba and Unix users :py:func:`share_user` created (and no other)."""
    state_dir = state_dir or STATE_DIR
    done = __salt__["ipxe.recorded"]("created-users", state_dir)
    present = [user for user in done if __salt__["user.info"](user)]
    if not present:
        if done and not __opts__["test"]:
            __salt__["ipxe.record"]("created-users", [], state_dir)
        return _ret(name, comment="no user created by labsalt is left")
    changes = {user: "removed (Samba and Unix user)" for user in present}
    if __opts__["test"]:
        return _ret(name, changes, f"would remove {', '.join(present)}")
    for user in present:
        if __salt__["ipxe.samba_user_hash"](user, conf) is not None:
            __salt__["cmd.run_all"](
                ["pdbedit", "-s", conf, "-x", "-u", user], python_shell=False, ignore_retcode=True
            )
        __salt__["cmd.run_all"](["userdel", "--", user], python_shell=False, ignore_retcode=True)
    left = [user for user in present if __salt__["user.info"](user)]
    if left:
        return _ret(name, changes, f"could not remove {', '.join(left)}", False)
    __salt__["ipxe.record"]("created-users", [], state_dir)
    return _ret(name, changes, f"removed {', '.join(present)}")


def try_restart(name, reload=False):
    """
    Restart (or reload) service ``name`` if it is running, and leave it stopped
    if it is not: for ``onchanges`` after a site file got its own settings back.
    """
    verb = "try-reload-or-restart" if reload else "try-restart"
    if __opts__["test"]:
        return _ret(name, {name: verb}, f"would {verb} {name}")
    proc = __salt__["cmd.run_all"](
        ["systemctl", verb, name], python_shell=False, ignore_retcode=True
    )
    if proc["retcode"] != 0:
        return _ret(
            name, comment=f"systemctl {verb} {name}: {proc['stderr'].strip()}", result=False
        )
    return _ret(name, {name: verb}, f"{verb} {name}")


def generated(name, params):
    """
    Write the files :py:func:`ipxe.plan <_modules.ipxe.plan>` generates (the menu
    ``name``, winpeshl.ini, each install.cmd) below the TFTP root, computed when
    the state runs: after the packages are installed and the ISOs extracted.
    install.cmd holds the share password: its changes are named, never shown.
    """
    root = params["tftp"]["root"]
    try:
        files = __salt__["ipxe.plan"](params)
    except Exception as exc:  # noqa: BLE001 (one failed state with the reason)
        waiting = "cannot be read before p7zip-full is installed" in str(exc)
        if __opts__["test"] and waiting:
            return _ret(name, {name: "generated"}, f"would generate the menu once {exc}")
        return _ret(name, comment=str(exc), result=False)
    changes, todo = {}, {}
    for relpath, text in sorted(files.items()):
        path = os.path.join(root, relpath)
        try:
            with open(path, encoding="utf-8", newline="") as handle:
                old = handle.read()
        except FileNotFoundError:
            old = None
        if old == text and os.stat(path).st_mode & 0o777 == 0o644:
            continue
        todo[path] = text
        if relpath.endswith(".cmd"):
            changes[relpath] = (
                "created" if old is None else "changed (holds the password: not shown)"
            )
        else:
            changes[relpath] = _diff(old, text) if old is not None else "created"
    if not todo:
        return _ret(name, comment=f"the menu and start files below {root} are up to date")
    if __opts__["test"]:
        return _ret(name, changes, f"would write {', '.join(sorted(changes))}")
    for path, text in todo.items():
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.labsalt-tmp"
        with open(tmp, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    return _ret(name, changes, f"wrote {', '.join(sorted(changes))}")
