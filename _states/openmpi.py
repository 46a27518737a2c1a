"""
The openmpi formula's verify step (issue 18): after the configuration (and
the singleton patch) is in place, OpenMPI is asked what it reads
(``openmpi.verify``).  A failure is one line naming what does not work; the
change stays as it is.  In test mode nothing runs: the state says what it
would check (result True: a check is not a change).

.. code-block:: yaml

    openmpi-verify:
      openmpi.verified:
        - policy: numa
        - mca_params_file: /etc/openmpi/openmpi-mca-params.conf
        - singleton_library: /usr/lib/x86_64-linux-gnu/libopen-rte.so.40
"""

from salt.exceptions import CommandExecutionError

__virtualname__ = "openmpi"


def __virtual__():
    return __virtualname__


def verified(name, policy, mca_params_file=None, openmpi_major=4, singleton_library=None):
    """
    ``ompi_info`` reports ``policy``; with ``singleton_library`` a singleton
    MPI program bound to numa starts.  No changes are ever reported.
    """
    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    if __opts__["test"]:
        would = [f"ompi_info reports binding policy {policy}"]
        if singleton_library:
            would.append("a singleton MPI program bound to numa starts")
        ret["comment"] = "would check (after the configuration is applied): " + "; ".join(would)
        return ret
    try:
        ret["comment"] = __salt__["openmpi.verify"](
            policy, mca_params_file, openmpi_major, singleton_library
        )
    except CommandExecutionError as exc:
        ret["result"] = False
        ret["comment"] = f"openmpi verify: {exc}"
    return ret
