# Example pillar for the openmpi formula (MPI process pinning).  Every key is
# optional; formulas/openmpi/parameters/defaults.yaml has the defaults.
openmpi:
  # auto: numa where singletons can bind to NUMA (OpenMPI 5 or the patch
  # below), else l3cache.  Or numa, l3cache, socket, core, none.
  policy: auto
  intel_mpi:
    pin_domain: numa
  # OpenMP for hybrid codes (optional):
  # openmp:
  #   OMP_PROC_BIND: close
  #   OMP_PLACES: cores
  singleton_patch:
    # Patch Debian's libopen-rte so that MPI programs started without mpirun
    # can bind to NUMA (see formulas/openmpi/README.md).  Off by default.
    enabled: false
    # type: Die            # default: the NUMA nodes' parent in the live topology
    # allow_unknown_builds: false
    # known_sha256: []
  # After apply, OpenMPI reads the configuration back: ompi_info reports the
  # binding policy and, with the patch, a singleton bound to numa starts.
  # false: not checked on this host.
  verify:
    enabled: true
