{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
include:
  - ..config.file

# A running HTCondor rereads its configuration; one that is not installed or
# not running reads it when it starts.
htcondor-service-reconfig:
  cmd.run:
    - name: condor_reconfig
    - onlyif: systemctl is-active --quiet {{ mapdata.service }}
    - onchanges:
      - file: htcondor-config-slots
      - file: htcondor-config-environment
