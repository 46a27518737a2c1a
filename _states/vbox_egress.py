"""
States for the VirtualBox egress filter (see the ``vbox_egress`` execution module).

.. code-block:: yaml

    labsalt-vbox:
      vbox_egress.filtered:
        - allow:
          - address: 192.0.2.10
            ports: [443]
"""

from salt.exceptions import CommandExecutionError, SaltInvocationError

__virtualname__ = "vbox_egress"


def __virtual__():
    if "vbox_egress.plan" in __salt__:
        return __virtualname__
    return (False, "vbox_egress state: the vbox_egress execution module is not available")


def _failed(ret, exc):
    """A refusal or a failing command: result False and one line, never a traceback."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    ret.update(result=False, changes={}, comment="; ".join(lines) or type(exc).__name__)
    return ret


def filtered(name, allow, mode="auto", table="labsalt_vbox_egress", classid="0x00100001"):
    """
    Cgroup ``name`` exists and the processes in it may reach only ``allow`` (and
    answer connections made to them); all their other connections are rejected.
    """
    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    try:
        changes = __salt__["vbox_egress.plan"](name, allow, mode, table, classid)
        if not changes:
            ret["comment"] = f"egress filter for cgroup {name} is in place"
            return ret
        if __opts__["test"]:
            ret.update(result=None, changes=changes)
            ret["comment"] = f"egress filter for cgroup {name} would be set up"
            return ret
        ret["changes"] = __salt__["vbox_egress.apply"](name, allow, mode, table, classid)
    except (CommandExecutionError, SaltInvocationError) as exc:
        return _failed(ret, exc)
    ret["comment"] = f"egress filter for cgroup {name} set up"
    return ret


def absent(name, mode="auto", table="labsalt_vbox_egress", classid="0x00100001"):
    """The rules and the cgroup ``name`` are gone (refused while a process is in it)."""
    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    try:
        found = __salt__["vbox_egress.existing"](name, mode, table, classid)
        if not found:
            ret["comment"] = f"egress filter for cgroup {name} is absent"
            return ret
        if __opts__["test"]:
            ret.update(result=None, changes={k: f"remove {v}" for k, v in found.items()})
            ret["comment"] = f"egress filter for cgroup {name} would be removed"
            return ret
        ret["changes"] = __salt__["vbox_egress.remove"](name, mode, table, classid)
    except (CommandExecutionError, SaltInvocationError) as exc:
        return _failed(ret, exc)
    ret["comment"] = f"egress filter for cgroup {name} removed"
    return ret
