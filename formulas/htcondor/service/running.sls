{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
include:
  - ..config.file

# A running HTCondor rereads its configuration (condor_reconfig); one that is
# not installed or not running reads it when it starts.
htcondor-service-reconfig:
  htcondor.reconfigured:
    - name: {{ mapdata.service }}
    - onchanges:
      - file: htcondor-config-slots
      - file: htcondor-config-environment
