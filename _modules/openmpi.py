"""
MPI process-pinning settings for the openmpi formula, chosen from the topology
and the formula's parameters (lab notebook: "CPU affinity for MPI" and
"OpenMPI bind-to NUMA is broken when running without mpiexec").

The formula's SLS files call :py:func:`settings` once with the merged
parameters; it returns the environment for /etc/profile.d, the MCA parameters
for openmpi-mca-params.conf and, for OpenMPI 5, the PRRTE parameters.

:py:func:`settings` runs while the SLS files render, before the formula's own
package states have installed anything, so it needs nothing that the formula
installs: the topology comes from sysfs (``topology.discover``, the project's
own reader, checked against hwloc on 47 machines), not from ``lstopo``.  What
only hwloc can tell (the hwloc object type behind the singleton patch byte) is
decided by the ``elfpatch`` state when it runs, after hwloc is installed.
"""

import os
import re
import shlex
import subprocess
import sys

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


def topology(root="/"):
    """
    Counts of the objects the policy depends on: NUMA nodes with CPUs, L3
    cache groups, packages and cores, read from sysfs under ``root`` by
    ``topology.discover`` (nothing needs to be installed).

    CLI Example:

    .. code-block:: bash

        salt-call openmpi.topology
    """
    summary = __salt__["topology.discover"](root)["summary"]
    return {"numa_nodes": summary["numa_nodes_with_cpus"], "l3_caches": summary["l3_groups"],
            "packages": summary["packages"], "cores": summary["cores"]}  # fmt: skip


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


MCA_NAME = re.compile(r"[a-z][a-z0-9_]{0,127}")
OPENMP_NAME = re.compile(r"(OMP|GOMP|KMP)_[A-Z0-9_]{1,64}")


def _shown(key):
    """A dict key as it appears in an error line: plain when harmless, else quoted."""
    text = str(key)
    return text if re.fullmatch(r"[\w.-]{1,60}", text) else repr(text[:40])


def validate(params):
    """
    The checks the schema cannot express (``validator: openmpi.validate``):
    names of MCA parameters and OpenMP variables (dict keys), which end up at
    the start of a config line or after ``export``.  Raises one line naming
    the key; reads nothing from the system.

    CLI Example:

    .. code-block:: bash

        salt-call openmpi.validate "$(salt-call --out=json labsalt.mapdata openmpi)"
    """
    if not isinstance(params, dict):
        raise SaltInvocationError("openmpi: the formula's parameters must be a dict")
    for key in params.get("mca_params") or {}:
        if not isinstance(key, str) or not MCA_NAME.fullmatch(key):
            raise SaltInvocationError(
                f"openmpi:mca_params:{_shown(key)}: not an MCA parameter name "
                "(lowercase letters, digits and _)"
            )
    for key in params.get("openmp") or {}:
        if not isinstance(key, str) or not OPENMP_NAME.fullmatch(key):
            raise SaltInvocationError(
                f"openmpi:openmp:{_shown(key)}: not an OpenMP variable (OMP_*, GOMP_*, KMP_*)"
            )
    return True


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
    validate(params)
    major = params.get("openmpi_major") or version()["major"] or 4
    topo = topology(params.get("topology_root") or "/")
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


# --------------------------------------------------------------------------- the marked block

BLOCK_BEGIN = "# BEGIN labsalt openmpi: managed by Salt, set in pillar openmpi, not here"
BLOCK_END = "# END labsalt openmpi"


def _split_block(text, path):
    """(lines before, lines after) the marked block of ``text``; the block removed."""
    lines = text.splitlines()
    begins = [i for i, line in enumerate(lines) if line.strip() == BLOCK_BEGIN]
    ends = [i for i, line in enumerate(lines) if line.strip() == BLOCK_END]
    if not begins and not ends:
        return lines, []
    if len(begins) != 1 or len(ends) != 1 or ends[0] < begins[0]:
        raise CommandExecutionError(
            f"{path}: the labsalt block markers are damaged ({len(begins)} BEGIN, {len(ends)} "
            "END lines); fix or remove them by hand"
        )
    return lines[: begins[0]], lines[ends[0] + 1 :]


def _read_text(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return ""
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandExecutionError(f"cannot read {path}: {exc}") from exc


def params_file(path, params=None, comment=None):
    """
    The content ``path`` (an MCA parameter file) gets: the lines it has now,
    Debian's and the site's, kept as they are, with the formula's parameters
    ``params`` in one marked block (replaced where it is, else appended).
    ``params`` empty or None: the block is removed (what clean writes).  Reads
    the file, writes nothing.

    CLI Example:

    .. code-block:: bash

        salt-call openmpi.params_file /etc/openmpi/openmpi-mca-params.conf \\
            '{hwloc_base_binding_policy: numa}'
    """
    text = _read_text(path)
    # a file without a final newline keeps it that way, so clean can restore it exactly
    final = "\n" if text.endswith("\n") or not text else ""
    before, after = _split_block(text, path)
    block = []
    if params:
        block = [BLOCK_BEGIN]
        if comment:
            block += [f"# {line}" for line in str(comment).splitlines()]
        for name, value in sorted(params.items()):
            if not MCA_NAME.fullmatch(str(name)) or re.search(r"[\x00-\x1f\x7f#]", str(value)):
                raise CommandExecutionError(f"openmpi:mca_params:{_shown(name)}: not writable")
            block.append(f"{name} = {value}")
        block.append(BLOCK_END)
    lines = before + block + after
    return "\n".join(lines) + final if lines else ""


def only_ours(path):
    """
    True when ``path`` holds nothing but the formula's block (labsalt created
    it); clean then removes the file instead of leaving it empty.

    CLI Example:

    .. code-block:: bash

        salt-call openmpi.only_ours /etc/openmpi/prte-mca-params.conf
    """
    text = _read_text(path)
    if not text:
        return False
    before, after = _split_block(text, path)
    return not any(line.strip() for line in before + after) and BLOCK_BEGIN in text


# --------------------------------------------------------------------------- verify (issue 18)

# A singleton: MPI_Init without mpirun, in a process of its own, through
# ctypes (Debian's openmpi-bin brings libmpi but no compiler; python3 is on
# every host Salt runs on).  Prints the CPUs the process is bound to.
SINGLETON = (
    "import ctypes, os, sys\n"
    "mpi = ctypes.CDLL(sys.argv[1], mode=ctypes.RTLD_GLOBAL)\n"
    "if mpi.MPI_Init(None, None) != 0:\n"
    "    sys.exit('MPI_Init failed')\n"
    "cpus = sorted(os.sched_getaffinity(0))\n"
    "mpi.MPI_Finalize()\n"
    "print('bound to CPUs', ','.join(map(str, cpus)))\n"
)


def _mpi_env(mca_params_file=None, **extra):
    """The environment without the caller's OpenMPI/PRRTE variables (the files decide)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OMPI_MCA_", "PRTE_MCA_", "PMIX_MCA_"))
    }
    if mca_params_file:
        env["OMPI_MCA_mca_param_files"] = mca_params_file
    env.update(extra)
    return env


def reported_binding_policy(mca_params_file=None):
    """
    The binding policy OpenMPI reports, as ``{"value": ..., "source": ...}``:
    ``ompi_info --parsable --level 9 --param hwloc base`` (an argument list),
    with the caller's ``OMPI_MCA_*`` variables removed, reading
    ``mca_params_file`` (default: OpenMPI's own list of files).  Read-only.

    CLI Example:

    .. code-block:: bash

        salt-call openmpi.reported_binding_policy
    """
    cmd = ["ompi_info", "--parsable", "--level", "9", "--param", "hwloc", "base"]
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=120, check=False,
            env=_mpi_env(mca_params_file),
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CommandExecutionError(f"ompi_info does not run: {exc}") from exc
    if done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines()
        raise CommandExecutionError(
            "ompi_info failed: " + (last[-1] if last else f"exit {done.returncode}")
        )
    found = {}
    for line in done.stdout.splitlines():
        match = re.match(r"mca:hwloc:base:param:hwloc_base_binding_policy:(value|source):(.*)$",
                         line)  # fmt: skip
        if match:
            found.setdefault(match.group(1), match.group(2))
    if "value" not in found:
        raise CommandExecutionError("ompi_info does not list hwloc_base_binding_policy")
    return {"value": found["value"], "source": found.get("source")}


def singleton_starts(library_dir=None, policy="numa", mca_params_file=None, timeout=120):
    """
    Start a singleton MPI program (MPI_Init without mpirun, via ctypes on
    ``libmpi.so.40``) with ``OMPI_MCA_hwloc_base_binding_policy=<policy>``,
    the lab notebook's check of the singleton patch.  ``library_dir``: where
    the (patched) libopen-rte is, put first on the library path.  Returns
    ``{"started": bool, "output": last line}``.  Runs a process and nothing else.

    CLI Example:

    .. code-block:: bash

        salt-call openmpi.singleton_starts /usr/lib/x86_64-linux-gnu numa
    """
    extra = {
        "OMPI_MCA_hwloc_base_binding_policy": policy,
        "OMPI_ALLOW_RUN_AS_ROOT": "1",
        "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
    }
    if library_dir:
        extra["LD_LIBRARY_PATH"] = ":".join(
            p for p in (library_dir, os.environ.get("LD_LIBRARY_PATH")) if p
        )
    try:
        done = subprocess.run(
            [sys.executable, "-c", SINGLETON, "libmpi.so.40"],
            capture_output=True, text=True, timeout=timeout, check=False,
            env=_mpi_env(mca_params_file, **extra), stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return {"started": False, "output": f"no answer within {timeout} s"}
    except OSError as exc:
        return {"started": False, "output": str(exc)}
    text = [line.strip(" *") for line in (done.stdout + "\n" + done.stderr).splitlines()]
    text = [line for line in text if line and not set(line) <= set("-")]
    started = done.returncode == 0 and done.stdout.startswith("bound to CPUs")
    if started:
        return {"started": True, "output": done.stdout.strip()}
    # OpenMPI's words, most telling first: "Setting processor affinity failed"
    # (the unpatched bug), "An error occurred in MPI_Init", else the last line
    reason = next(
        (line for pattern in (r"affinity|bind", r"error occurred in")
         for line in text if re.search(pattern, line, re.I)),
        text[-1] if text else "",
    )  # fmt: skip
    return {"started": False, "output": reason or f"exit {done.returncode}"}


def verify(policy, mca_params_file=None, openmpi_major=4, singleton_library=None):
    """
    Check the configured pinning the way OpenMPI's users meet it: ``ompi_info``
    reports ``policy`` as hwloc_base_binding_policy (OpenMPI 4), and with
    ``singleton_library`` (the patched libopen-rte) a singleton bound to numa
    starts.  Returns a one-line summary; raises CommandExecutionError with one
    line naming what does not work.  Changes nothing.

    CLI Example:

    .. code-block:: bash

        salt-call openmpi.verify numa
    """
    done = []
    if policy != "none" and openmpi_major and openmpi_major >= 5:
        done.append(
            "binding policy not read back (OpenMPI 5: PRRTE's, which ompi_info does not show)"
        )
    elif policy != "none":
        reported = reported_binding_policy(mca_params_file)
        if reported["value"] != policy:
            raise CommandExecutionError(
                f"ompi_info reports hwloc_base_binding_policy {reported['value']!r} "
                f"({reported['source'] or 'no source'}), not the configured {policy!r}"
            )
        done.append(f"ompi_info reports binding policy {policy}")
    if singleton_library:
        run = singleton_starts(os.path.dirname(singleton_library), "numa", mca_params_file)
        if not run["started"]:
            raise CommandExecutionError(
                f"a singleton MPI program bound to numa does not start "
                f"({singleton_library}): {run['output'][:200]}"
            )
        done.append(f"a singleton bound to numa starts ({run['output']})")
    return "; ".join(done) or "nothing to check (policy none, no singleton patch)"
