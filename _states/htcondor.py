"""
The htcondor formula's apt signing key (see ``_modules/htcondor.py``): fetched
only when the keyring is missing or does not match ``key_sha256``; in test mode
nothing is fetched, the state predicts.

.. code-block:: yaml

    /usr/share/keyrings/labsalt-htcondor-archive-keyring.asc:
      htcondor.keyring:
        - source: https://research.cs.wisc.edu/htcondor/repo/keys/HTCondor-24.x-Key
"""

from salt.exceptions import CommandExecutionError, SaltInvocationError

__virtualname__ = "htcondor"


def __virtual__():
    return __virtualname__


def keyring(name, source, key_sha256=None):
    """
    Keep the repository key from ``source`` in ``name`` (``*.asc``: armored,
    ``*.gpg``: binary, whatever form the source has).
    """
    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    status = __salt__["htcondor.keyring_status"](name, key_sha256)
    if status["current"]:
        ret["comment"] = f"{name} is in place"
        return ret
    what = "replaced" if status["present"] else "created"
    if __opts__["test"]:
        ret["result"] = None
        ret["changes"] = {"keyring": f"would be {what} from {source}"}
        ret["comment"] = f"{name} would be {what} from {source}"
        return ret
    try:
        digest = __salt__["htcondor.install_keyring"](name, source, key_sha256)
    except (CommandExecutionError, SaltInvocationError, OSError) as exc:
        ret["result"] = False
        ret["comment"] = str(exc)
        return ret
    ret["changes"] = {"keyring": f"{what} from {source}", "sha256": digest}
    ret["comment"] = f"{name} {what} from {source}"
    return ret


def reconfigured(name):
    """
    A running HTCondor (systemd unit ``name``) rereads its configuration;
    one that is not running reads it when it starts, so nothing is done then.
    Meant for ``onchanges`` on the config files.
    """
    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    if not __salt__["htcondor.is_active"](name):
        ret["comment"] = f"{name} is not running; it reads the configuration when it starts"
        return ret
    if __opts__["test"]:
        ret["result"] = None
        ret["changes"] = {"reconfig": f"{name} would reread its configuration"}
        ret["comment"] = f"condor_reconfig would run ({name} is running)"
        return ret
    try:
        out = __salt__["htcondor.reconfig"]()
    except CommandExecutionError as exc:
        ret["result"] = False
        ret["comment"] = str(exc)
        return ret
    ret["changes"] = {"reconfig": out or "condor_reconfig done"}
    ret["comment"] = f"{name} rereads its configuration"
    return ret


def verified(name, plan):
    """
    Where HTCondor is installed, ``condor_config_val`` reads the slot layout
    ``plan`` (``topology.slot_plan``) back from the live configuration
    (``htcondor.verify_slots``).  One line naming the first value that
    disagrees; nothing is undone, no changes are ever reported.  Test mode
    runs nothing.
    """
    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    if __opts__["test"]:
        ret["comment"] = (
            f"would read the layout of {len(plan)} slots back with condor_config_val "
            "(where HTCondor is installed)"
        )
        return ret
    try:
        ret["comment"] = __salt__["htcondor.verify_slots"](plan)
    except (CommandExecutionError, SaltInvocationError) as exc:
        ret["result"] = False
        ret["comment"] = f"htcondor verify: {exc}"
    return ret
