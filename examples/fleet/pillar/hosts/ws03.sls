# ws03 runs many small jobs: one HTCondor slot per L3 cache group instead of
# one per NUMA node, and no job may take more than 16 GB.
htcondor:
  slots:
    policy: l3
    memory_cap_mb: 16384
