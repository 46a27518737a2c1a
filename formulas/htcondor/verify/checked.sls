{#- Issue 18: where HTCondor is installed, condor_config_val reads the slot
    layout back from the live configuration after it is written (and
    reread).  Pillar htcondor:verify:enabled: false turns it off on a host. #}
{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{%- if mapdata.verify.enabled %}
{%- set slots = mapdata.slots %}
{%- set plan = salt["topology.slot_plan"](
      slots.policy, reserve_cores=slots.reserve_cores, exclude_nodes=slots.exclude_nodes,
      memory_cap_mb=slots.memory_cap_mb, root=mapdata.topology_root) %}

include:
  - {{ tpldir.split("/")[0] }}.service.running

htcondor-verify:
  htcondor.verified:
    - name: HTCondor reads the slot layout
    - plan: {{ plan | json }}
    - require:
      - file: htcondor-config-slots
      - htcondor: htcondor-service-reconfig
{%- else %}

htcondor-verify:
  test.nop:
    - name: verify disabled (htcondor:verify:enabled)
{%- endif %}
