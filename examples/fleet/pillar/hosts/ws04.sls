# ws04 is the interactive machine of the lab's visitor desk: a workstation, but
# also the emulation host (a second role), so it gets both roles' formulas,
# except HTCondor: visitors should not find their desk busy with batch jobs.
labsalt:
  roles:
    - workstation
    - emu
  skip:
    - htcondor
