{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}

htcondor-config-files-absent:
  file.absent:
    - names:
      - {{ mapdata.config_dir }}/50-labsalt-slots.conf
      - {{ mapdata.config_dir }}/50-labsalt-environment.conf
      - {{ mapdata.libexec_dir }}/condor-job-wrapper
      - {{ mapdata.libexec_dir }}/condor-config-check
