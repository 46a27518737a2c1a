"""
MPI process-pinning settings for the openmpi formula, chosen from the topology
and the formula's parameters (lab notebook: "CPU affinity for MPI" and
"OpenMPI bind-to NUMA is broken when running without mpiexec").

The formula's SLS files call :py:func:`settings` once with the merged
parameters; it returns the environment for /etc/profile.d, the MCA parameters
for openmpi-mca-params.conf and, for OpenMPI 5, the PRRTE parameters.  The
topology is read from hwloc's XML export (``lstopo-no-graphics --of xml``,
honouring ``HWLOC_XMLFILE``), the same view OpenMPI's hwloc has.
"""

import re
import shlex
import shutil
import subprocess
import xml.etree.ElementTree as ET

from salt.exceptions import CommandExecutionError, SaltInvocationError

__virtualname__ = "openmpi"

POLICIES = ("auto", "numa", "l3cache", "socket", "core", "none")
# OpenMPI 5 (PRRTE) calls a socket a package.
PRTE_NAMES = {"socket": "package"}


def __virtual__():
    return __virtualname__


def _run(cmd):
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        return None
    return proc.stdout if proc.returncode == 0 else None


def version(package="openmpi-bin"):
    """
    The OpenMPI version this host has (installed), or would get from apt
    (candidate) when the package is not installed yet, as
    ``{"version": "4.1.4-3+b1", "major": 4, "installed": True}``.

    CLI Example:

    .. code-block:: bash

        salt-call openmpi.version
    """
    installed = _run(["dpkg-query", "-W", "-f=${Status} ${Version}", package]) or ""
    if installed.startswith("install ok installed "):
        text, is_installed = installed.rsplit(" ", 1)[1], True
    else:
        policy = _run(["apt-cache", "policy", package]) or ""
        match = re.search(r"Candidate:\s*(\S+)", policy)
        text = match.group(1) if match and match.group(1) != "(none)" else None
        is_installed = False
    if not text:
        return {"version": None, "major": None, "installed": False}
    major = re.match(r"(?:\d+:)?(\d+)", text)
    return {"version": text, "major": int(major.group(1)) if major else None,
            "installed": is_installed}  # fmt: skip


def topology():
    """
    Counts of the hwloc objects the policy depends on: NUMA nodes, L3 caches,
    packages and cores, from ``lstopo-no-graphics --of xml``.

    CLI Example:

    .. code-block:: bash

        salt-call openmpi.topology
    """
    lstopo = shutil.which("lstopo-no-graphics") or shutil.which("lstopo")
    if not lstopo:
        raise CommandExecutionError("lstopo-no-graphics is not installed (package hwloc)")
    text = _run([lstopo, "--no-io", "--of", "xml", "-"])
    if text is None:
        raise CommandExecutionError("lstopo-no-graphics failed to export the topology")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise CommandExecutionError(f"cannot parse lstopo's XML: {exc}") from exc
    counts = {"NUMANode": 0, "L3Cache": 0, "Package": 0, "Core": 0}
    for obj in root.iter("object"):
        if obj.get("type") in counts:
            counts[obj.get("type")] += 1
    return {"numa_nodes": counts["NUMANode"], "l3_caches": counts["L3Cache"],
            "packages": counts["Package"], "cores": counts["Core"]}  # fmt: skip


def _choose_policy(params, major, topo):
    """(policy, reason) for policy 'auto', else the pillar's choice checked."""
    wanted = params.get("policy", "auto")
    if wanted not in POLICIES:
        raise SaltInvocationError(f"openmpi:policy: {wanted!r} is not one of {POLICIES}")
    patched = bool(params.get("singleton_patch", {}).get("enabled"))
    if wanted != "auto":
        if wanted == "l3cache" and topo["l3_caches"] == 0:
            raise SaltInvocationError(
                "openmpi:policy: l3cache, but this host's topology has no L3 cache"
            )
        return wanted, "set in pillar"
    # One chooser for the suite: the same one `labsalt topology` shows.
    return __salt__["topology.binding_domain"](
        topo["numa_nodes"], topo["l3_caches"], major, patched
    )


def settings(params):
    """
    The pinning configuration for the merged formula parameters ``params``
    (``labsalt.mapdata openmpi``): chosen policy and why, OpenMPI major
    version, ``environment`` (profile.d), ``mca_params`` (openmpi-mca-params.conf)
    and ``prte_params`` (OpenMPI 5 only).

    CLI Example:

    .. code-block:: bash

        salt-call openmpi.settings "$(salt-call --out=json labsalt.mapdata openmpi)"
    """
    if not isinstance(params, dict):
        raise SaltInvocationError("openmpi.settings needs the formula's parameters (a dict)")
    major = params.get("openmpi_major") or version()["major"] or 4
    topo = topology()
    policy, reason = _choose_policy(params, major, topo)
    mapping = params.get("mapping_policy") or policy
    env, mca, prte = {}, dict(params.get("mca_params") or {}), {}
    if policy != "none":
        if major >= 5:
            prte["hwloc_default_binding_policy"] = PRTE_NAMES.get(policy, policy)
            prte["rmaps_default_mapping_policy"] = PRTE_NAMES.get(mapping, mapping)
            env.update({f"PRTE_MCA_{k}": v for k, v in prte.items()})
        else:
            mca["hwloc_base_binding_policy"] = policy
            mca["rmaps_base_mapping_policy"] = mapping
            env["OMPI_MCA_hwloc_base_binding_policy"] = policy
            env["OMPI_MCA_rmaps_base_mapping_policy"] = mapping
    for key in mca:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", str(key)):
            raise SaltInvocationError(f"openmpi:mca_params:{key}: not an MCA parameter name")
    for key in params.get("openmp") or {}:
        if not re.fullmatch(r"(OMP|GOMP|KMP)_[A-Z0-9_]+", str(key)):
            raise SaltInvocationError(
                f"openmpi:openmp:{key}: not an OpenMP variable (OMP_*, GOMP_*, KMP_*)"
            )
    intel = (params.get("intel_mpi") or {}).get("pin_domain")
    if intel == "auto":
        intel = __salt__["topology.intel_pin_domain"](policy)
    if intel:
        env["I_MPI_PIN_DOMAIN"] = intel
    env.update(params.get("openmp") or {})
    return {
        "policy": policy,
        "mapping_policy": mapping,
        "reason": reason,
        "openmpi_major": major,
        "topology": topo,
        "environment": env,
        "profile_lines": [f"export {k}={shlex.quote(str(v))}" for k, v in env.items()],
        "mca_params": mca,
        "prte_params": prte,
    }
