# HTCondor with one partitionable slot per NUMA node (or L3 group), pinned.
include:
  - .package.install
  - .config.file
  - .service.running
  # condor_config_val reads the slot layout back (issue 18)
  - .verify.checked
