# HTCondor on the lab's workstations: one partitionable slot per NUMA node,
# pinned to that node's CPUs (formulas/htcondor/README.md).  Every key is optional.
htcondor:
  slots:
    # numa: one slot per NUMA node with CPUs (a Threadripper 1950X gets two of 8 cores);
    # l3: one slot per L3 cache group (a 1950X gets four of 4 cores);
    # single: one slot with the whole machine (SLOT_TYPE_1 = cpus=100%).
    policy: numa
    # Physical cores (with their SMT siblings) kept free for the person at the desk,
    # taken from the lowest-numbered CPUs.
    reserve_cores: 0
    # NUMA node ids HTCondor must not use, e.g. [1].
    exclude_nodes: []
    # Upper limit of each slot's memory in MB (null: the node's memory).
    memory_cap_mb: null
  job_wrapper:
    # Drop MPI/OpenMP binding variables from jobs submitted with getenv = True.
    enabled: true
  submit:
    # false: condor_submit refuses "getenv = true" on this host.
    allow_getenv: true
  # Where HTCondor comes from: its own apt repository, every part a parameter
  # (formulas/htcondor/parameters/defaults.yaml has them all).
  repo:
    manage: true                 # false: the site provides the repository/package
    url: https://research.cs.wisc.edu/htcondor/repo/debian/24.x
    # suite: bookworm            # default: the host's codename
    # component: main
    # The signing key: http(s)://, salt:// or an absolute path; armored or binary.
    key_url: https://research.cs.wisc.edu/htcondor/repo/keys/HTCondor-24.x-Key
    # key_sha256: null           # sha256 of the key file, checked when set
    # apt reads *.asc as ASCII-armored and *.gpg as binary: match the key's form.
    keyring: /usr/share/keyrings/labsalt-htcondor-archive-keyring.asc
    pin:
      priority: 600              # null: no apt pin
      # origin: null             # default: the host of url
  # After apply, condor_config_val reads the slot layout back (where HTCondor
  # is installed); false: not checked on this host.
  verify:
    enabled: true
