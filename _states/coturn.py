"""
States of the coturn formula that plain Salt states cannot express: refuse a host
whose firewall the coturn table would break, report the exceptions for the
server's own addresses in denied peer ranges, verify the live server with a
real TURN client, keep the package's original of a file labsalt takes over and
put it back on clean, and remove directories labsalt created only when they are
empty.  The logic is in the ``coturn`` execution module; test mode changes
nothing and predicts.  Packages are installed and recorded by the shared
``labsalt_packages`` states.
"""

import os
import shutil

from salt.exceptions import CommandExecutionError, SaltInvocationError

__virtualname__ = "coturn"


def __virtual__():
    if "coturn.conf_line" not in __salt__:
        return (False, "the coturn execution module is not loaded")
    return __virtualname__


def _ret(name):
    return {"name": name, "result": True, "changes": {}, "comment": ""}


def firewall_compatible(name):
    """
    Fail (one line) when this host has nftables/iptables input rules of its own
    that the coturn table ``name`` would break (see ``coturn.firewall_conflicts``).
    Read-only, so test mode gives the real verdict.
    """
    ret = _ret(name)
    try:
        found = __salt__["coturn.firewall_conflicts"](name)
    except (CommandExecutionError, ValueError) as exc:
        ret.update(result=False, comment=f"cannot read this host's firewall: {exc}")
        return ret
    if found:
        ret.update(
            result=False,
            comment=(
                f"coturn:firewall: refusing: this host filters input itself ({'; '.join(found)}), "
                f"and the coturn table {name} drops all but SSH and TURN: run coturn on a "
                "dedicated host, or set coturn:firewall:enabled: false and open the TURN ports "
                "in the site's firewall"
            ),
        )
        return ret
    ret["comment"] = "no other input filter on this host: the coturn table can own the input path"
    return ret


def own_addresses_allowed(name, exceptions):
    """
    Say which of the server's own external or relay addresses lie in a denied
    peer range and are therefore allowed (``allowed-peer-ip=<address>``, written
    by the config template from the same ``coturn.own_peer_exceptions`` list),
    or stay denied with ``coturn:allow_own_addresses: false``.  Reports only:
    the config file state makes the change.  Same answer in test mode.
    """
    ret = _ret(name)
    ret["comment"] = __salt__["coturn.own_exceptions_comment"](exceptions or [])
    return ret


def _host_addresses():
    return list(__grains__.get("ipv4", [])) + list(__grains__.get("ipv6", []))


def verified(name, params):
    """
    After the service is (re)configured, use it as a client does
    (``coturn.verify``): ``turnutils_uclient`` with credentials made from the
    pillar's secret allocates a relay on the live server, and a peer in a
    denied range is refused.  One failing check fails the state with one line
    naming it; nothing is undone and no changes are ever reported.  The secret
    is read from pillar here, never passed as an argument, never shown.  Test
    mode runs nothing and says what would be checked.
    ``coturn:verify:enabled: false`` turns it off.

    .. code-block:: yaml

        coturn-verified:
          coturn.verified:
            - name: turn.lab.example.org
            - params: {{ mapdata_without_secret | json }}
    """
    ret = _ret(name)
    if not (params.get("verify") or {}).get("enabled", True):
        ret["comment"] = "not verified: coturn:verify:enabled is false"
        return ret
    try:
        if __opts__["test"]:
            checks = __salt__["coturn.verify_checks"](params, _host_addresses())
            ret["comment"] = "would check after the run: " + "; ".join(checks)
            return ret
        ret["comment"] = __salt__["coturn.verify"](params, _host_addresses())
    except (CommandExecutionError, SaltInvocationError, ValueError) as exc:
        ret["result"] = False
        ret["comment"] = f"coturn verify: {exc}"
    return ret


def _is_ours(path, marker):
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return marker in handle.read(4096)
    except FileNotFoundError:
        return False


def original_kept(name, backup, marker):
    """
    Before labsalt first writes ``name``, keep the file that was there (the
    package's or the site's) as ``backup`` (owner and mode kept), or note that
    there was none; ``coturn.original_restored`` puts it back.  A file that
    already carries labsalt's ``marker`` line is not an original.
    """
    ret = _ret(name)
    absent = f"{backup}.absent"
    if os.path.exists(backup) or os.path.exists(absent):
        ret["comment"] = f"the original of {name} is kept"
        return ret
    exists = os.path.exists(name)
    if exists and _is_ours(name, marker):
        ret["comment"] = f"{name} is labsalt's already; no original to keep"
        return ret
    what = f"keep a copy of {name} in {backup}" if exists else f"note that {name} did not exist"
    if __opts__["test"]:
        if not exists:  # the package may not be installed yet: it would bring the file
            what = f"keep the {name} there is then (the package's) in {backup}, or note none"
        ret.update(result=None, changes={"original": backup}, comment=f"would {what}")
        return ret
    os.makedirs(os.path.dirname(backup), mode=0o700, exist_ok=True)
    if exists:
        shutil.copy2(name, f"{backup}.tmp")
        stat = os.stat(name)
        os.chown(f"{backup}.tmp", stat.st_uid, stat.st_gid)
        os.replace(f"{backup}.tmp", backup)
    else:
        with open(absent, "w", encoding="utf-8"):
            pass
    ret.update(changes={"original": backup}, comment=what.replace("keep", "kept", 1))
    return ret


def original_restored(name, backup):
    """Put back the original ``original_kept`` saved (or remove ``name`` if there was none)."""
    ret = _ret(name)
    absent = f"{backup}.absent"
    if os.path.exists(backup):
        what = f"restore {name} from {backup}"
    elif os.path.exists(absent):
        what = f"remove {name} (it did not exist before labsalt)"
    else:
        ret["comment"] = f"no original of {name} kept: nothing to restore"
        return ret
    if __opts__["test"]:
        ret.update(result=None, changes={"restored": name}, comment=f"would {what}")
        return ret
    if os.path.exists(backup):
        stat = os.stat(backup)
        shutil.copy2(backup, f"{name}.labsalt-tmp")  # mode and times as kept
        os.chown(f"{name}.labsalt-tmp", stat.st_uid, stat.st_gid)
        os.replace(f"{name}.labsalt-tmp", name)
        os.unlink(backup)
    else:
        if os.path.lexists(name):
            os.unlink(name)
        os.unlink(absent)
    ret.update(changes={"restored": name}, comment=what.replace("restore", "restored", 1))
    return ret


def dirs_pruned(name, dirs):
    """Remove each directory of ``dirs`` (deepest first) when it is empty; never its contents."""
    ret = _ret(name)
    gone = []
    for path in sorted(dirs, key=lambda p: -p.count("/")):
        if os.path.isdir(path) and not os.path.islink(path) and not os.listdir(path):
            gone.append(path)
            if not __opts__["test"]:
                try:
                    os.rmdir(path)
                except OSError as exc:
                    raise SaltInvocationError(f"cannot remove {path}: {exc}") from None
    if gone:
        ret["changes"] = {"removed": gone}
        if __opts__["test"]:
            ret["result"] = None
    verb = "would remove" if __opts__["test"] else "removed"
    ret["comment"] = f"{verb} {', '.join(gone)}" if gone else "no empty directory left"
    return ret


def restarted_if_running(name):
    """
    Restart service ``name`` if it is running (``systemctl try-restart``), e.g.
    after clean gave the site's coturn its own config back; a service that is
    stopped or not installed (purged by clean) is left as it is.  Meant for
    ``onchanges``.
    """
    ret = _ret(name)
    if not __salt__["service.available"](name) or not __salt__["service.status"](name):
        ret["comment"] = f"{name} is not running here: left as it is"
        return ret
    if __opts__["test"]:
        ret.update(result=None, changes={"restarted": name}, comment=f"would restart {name}")
        return ret
    if not __salt__["service.restart"](name):
        ret.update(result=False, comment=f"restarting {name} failed")
        return ret
    ret.update(changes={"restarted": name}, comment=f"restarted {name} with its config")
    return ret
