{#- Issue 18: OpenMPI reads back what the formula configured, after it is in
    place (openmpi.verify; one line naming what does not work, nothing undone).
    Pillar openmpi:verify:enabled: false turns it off on a host. #}
{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{%- if mapdata.verify.enabled %}
{%- set mpi = salt["openmpi.settings"](mapdata) %}
{%- set patch = mapdata.singleton_patch %}

include:
  - {{ tpldir.split("/")[0] }}.config.file
  - {{ tpldir.split("/")[0] }}.singleton.patched

openmpi-verify:
  openmpi.verified:
    - name: OpenMPI reads the pinning policy
    - policy: {{ mpi.policy | json }}
    - mca_params_file: {{ mapdata.mca_params_file | json }}
    - openmpi_major: {{ mpi.openmpi_major | json }}
    {#- the singleton check needs the patch (OpenMPI 4 only) #}
    - singleton_library: {{ (patch.library if patch.enabled and mpi.openmpi_major < 5 else none) | json }}
    - require:
      - file: openmpi-mca-params
      - id: openmpi-singleton-numa-patch
{%- else %}

openmpi-verify:
  test.nop:
    - name: verify disabled (openmpi:verify:enabled)
{%- endif %}
