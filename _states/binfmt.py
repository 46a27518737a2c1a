"""
States over binfmt_misc entries (see the ``binfmt`` execution module).

.. code-block:: yaml

    qemu-ppc64:
      binfmt.registered:
        - interpreter: /usr/libexec/qemu-binfmt/ppc64-binfmt-P
        - magic: '\\x7f\\x45\\x4c\\x46\\x02\\x02\\x01\\x00...'
        - mask: '\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfc...'
        - flags: PF
"""

from salt.exceptions import CommandExecutionError, SaltInvocationError

__virtualname__ = "binfmt"


def __virtual__():
    if "binfmt.entry" in __salt__:
        return __virtualname__
    return (False, "binfmt state: the binfmt execution module is not available")


def _ret(name):
    return {"name": name, "result": True, "changes": {}, "comment": ""}


def _shown(entry):
    return {k: entry[k] for k in ("interpreter", "flags", "offset", "magic", "mask") if k in entry}


def _failed(ret, exc):
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    ret.update(result=False, changes={}, comment="; ".join(lines) or type(exc).__name__)
    return ret


def registered(name, interpreter, magic, mask="", offset=0, flags="F", record=None):  # noqa: PLR0917
    """
    The binfmt_misc entry ``name`` exists, is enabled and matches these fields;
    binfmt_misc is mounted first if it is not.  A differing entry of the same name
    (e.g. one registered by binfmt-support without ``F``) is replaced; with
    ``record`` the replacement is recorded as labsalt's, with what it replaced
    (see ``absent``).  An equal entry someone else registered is left as theirs.
    """
    ret = _ret(name)
    try:
        return _registered(ret, name, interpreter, magic, mask, offset, flags, record)
    except (CommandExecutionError, SaltInvocationError) as exc:
        return _failed(ret, exc)


def _registered(ret, name, interpreter, magic, mask, offset, flags, record):  # noqa: PLR0917
    wanted = __salt__["binfmt.spec"](name, interpreter, magic, mask, offset, flags)
    live = __salt__["binfmt.entry"](name)
    if live and live["enabled"] and __salt__["binfmt.same"](live, wanted):
        ret["comment"] = f"binfmt entry {name} is registered (flags {live['flags']})"
        ret["changes"] = {}
        return ret
    change = {"old": _shown(live) if live else None, "new": _shown(wanted)}
    if __opts__["test"]:
        ret["result"] = None
        ret["changes"] = change
        verb = "replaced" if live else "registered"
        ret["comment"] = f"binfmt entry {name} would be {verb}"
        return ret
    now = __salt__["binfmt.register"](name, interpreter, magic, mask, offset, flags, record)
    ret["changes"] = {"old": change["old"], "new": _shown(now)}
    ret["comment"] = f"binfmt entry {name} {'replaced' if live else 'registered'}"
    return ret


def absent(name, record=None):
    """
    The binfmt_misc entry ``name`` is not registered.  With ``record``, only an
    entry labsalt registered (the record says so) is removed, and the entry it
    replaced, if any, is registered again; anyone else's entry is left alone.
    """
    ret = _ret(name)
    try:
        if record is not None:
            return _released(ret, name, record)
    except (CommandExecutionError, SaltInvocationError) as exc:
        return _failed(ret, exc)
    live = __salt__["binfmt.entry"](name)
    if not live:
        ret["comment"] = f"binfmt entry {name} is not registered"
        return ret
    ret["changes"] = {"old": _shown(live), "new": None}
    if __opts__["test"]:
        ret["result"] = None
        ret["comment"] = f"binfmt entry {name} would be removed"
        return ret
    __salt__["binfmt.unregister"](name)
    ret["comment"] = f"binfmt entry {name} removed"
    return ret


def _released(ret, name, record):
    data = __salt__["binfmt.owned"](record)
    live = __salt__["binfmt.entry"](name)
    if data is None or data.get("name") != name:
        ret["comment"] = (
            f"binfmt entry {name} was not registered by labsalt (no record {record}): "
            + ("left alone" if live else "nothing to do")
        )
        return ret
    previous = data.get("previous")
    ret["changes"] = {
        "old": _shown(live) if live else None,
        "new": _shown(previous) if previous else None,
    }
    if __opts__["test"]:
        ret["result"] = None
        ret["comment"] = f"binfmt entry {name} would be removed" + (
            ", and the entry it replaced registered again" if previous else ""
        )
        return ret
    __salt__["binfmt.release"](name, record)
    ret["comment"] = f"binfmt entry {name} removed" + (
        ", the entry it replaced registered again" if previous else ""
    )
    return ret


def boot_file(name, contents, marker):
    """
    The file in ``/etc/binfmt.d`` that registers an entry again at boot, with
    ``contents`` (which carry ``marker``).  A file of that name without the
    marker is the site's own: it is left alone, and said so.  Decided when the
    state runs (no ``onlyif``: each ``onlyif``/``unless`` makes Salt 3008 load
    every state module once, about 2 s of a no-op highstate).

    .. code-block:: yaml

        qemu-ppc64-at-boot:
          binfmt.boot_file:
            - name: /etc/binfmt.d/qemu-ppc64.conf
            - marker: Managed by Salt (labsalt ppc64_emulation)
            - contents: "# Managed by Salt (labsalt ppc64_emulation)\\n:qemu-ppc64:M::...\\n"
    """
    if marker not in contents:
        raise SaltInvocationError(f"binfmt.boot_file: contents for {name} lack the marker")
    try:
        with open(name, encoding="utf-8", errors="replace") as handle:
            head = handle.read(4096)
    except FileNotFoundError:
        head = None
    except OSError as exc:
        return _failed(_ret(name), exc)
    if head is not None and marker not in head:
        ret = _ret(name)
        ret["comment"] = f"{name} is the site's own file (no labsalt marker): left alone"
        return ret
    return __states__["file.managed"](name=name, contents=contents, mode="0644", makedirs=True)
