# ws04 is the interactive machine of the lab's visitor desk: a workstation, but
# also the emulation host (a second role), so it gets both role's formulas.
labsalt:
  roles:
    - workstation
    - emu
