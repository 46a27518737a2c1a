{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}

htcondor-package-removed:
  pkg.removed:
    - name: {{ mapdata.package }}

htcondor-package-repo-absent:
  pkgrepo.absent:
    - name: deb [signed-by={{ mapdata.repo.keyring }}] {{ mapdata.repo.url }} {{ grains.oscodename }} {{ mapdata.repo.component }}
    - require:
      - pkg: htcondor-package-removed
