# HTCondor with one partitionable slot per NUMA node (or L3 group), pinned.
include:
  - .package.install
  - .config.file
  - .service.running
