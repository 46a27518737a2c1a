# Roles of this host; formulas/top.sls maps each role to formulas.
labsalt:
  roles:
    - workstation
  # Formulas of those roles this host does not get, e.g. [htcondor].
  skip: []
