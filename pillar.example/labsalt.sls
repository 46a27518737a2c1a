# Roles of this host; formulas/top.sls maps each role to formulas.
labsalt:
  roles:
    - workstation
