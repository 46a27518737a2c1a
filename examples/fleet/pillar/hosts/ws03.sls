# ws03 runs many small jobs: one HTCondor slot per L3 cache group instead of
# one per NUMA node, and no job may take more than 16 GB.
htcondor:
  slots:
    policy: l3
    memory_cap_mb: 16384
# ws03 also keeps the lab's backups on a second disk that sleeps between runs:
# a second role, and that disk.
labsalt:
  roles:
    - workstation
    - nas
spindown:
  disks:
    - device: /dev/disk/by-id/ata-ST4000VN008-2DR166_ZGY0ABCD
      spindown_time: 241   # hdparm -S: 241 = 30 minutes
