"""
State over the bind_ad execution module: validate BIND's new files as one set.

``named-checkconf`` and ``named-checkzone`` on each file alone cannot see that a
zone statement points at a zone file that is broken, or that two fragments
disagree; :func:`config_valid` checks the whole set in a temporary copy, and the
``file.managed`` states that replace the live files require it.
"""

import salt.utils.path
from salt.exceptions import CommandExecutionError

__virtualname__ = "bind_ad"


def __virtual__():
    if "bind_ad.check_config" not in __salt__:
        return (False, "bind_ad: the bind_ad execution module is not available")
    return __virtualname__


def config_valid(name, files, checkconf="named-checkconf"):
    """
    Check that the configuration rooted at ``name`` (named.conf) is valid once
    ``files`` (``{path: text}``) replace the live ones, with every zone loaded.
    Changes nothing; fails with the checker's message when the set is invalid.

    .. code-block:: yaml

        bind_ad-config-valid:
          bind_ad.config_valid:
            - name: /etc/bind/named.conf
            - files: {/etc/bind/named.conf.local: "zone ..."}
    """
    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    if __opts__["test"] and not salt.utils.path.which(checkconf):
        # A fresh host in test mode: bind9 is only about to be installed.
        ret["result"] = None
        ret["comment"] = f"{checkconf} is not installed yet; the files are checked when applied"
        return ret
    try:
        __salt__["bind_ad.check_config"](files, named_conf=name, checkconf=checkconf)
    except CommandExecutionError as exc:
        ret["result"] = False
        ret["comment"] = str(exc)
        return ret
    ret["comment"] = f"{name} with {len(files)} new file(s) passes named-checkconf -z"
    return ret
