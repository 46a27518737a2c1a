# Lab workstations: formulas/top.sls maps the role to its formulas.
labsalt:
  roles:
    - workstation
