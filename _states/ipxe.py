"""
State for the ipxe formula: the read-only Samba user of the installer share.

Compares the passdb's NT hash with the pillar password, so a second run changes
nothing and test mode predicts truthfully; the password is never shown.
"""

__virtualname__ = "ipxe"


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
