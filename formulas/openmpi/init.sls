# MPI process pinning (lab notebook: "CPU affinity for MPI") and, optionally,
# the OpenMPI 4 singleton bind-to-NUMA patch.
include:
  - .package.install
  - .config.file
  - .singleton.patched
  # OpenMPI reads the configuration back (issue 18)
  - .verify.checked
