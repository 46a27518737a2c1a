{#- Slot plan from the machine's topology (topology.slot_plan); this file only writes it out. #}
{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{%- set slots = mapdata.slots %}
{%- set plan = salt["topology.slot_plan"](
      slots.policy, reserve_cores=slots.reserve_cores, exclude_nodes=slots.exclude_nodes,
      memory_cap_mb=slots.memory_cap_mb, root=mapdata.topology_root) %}
{%- set checker = mapdata.libexec_dir ~ "/condor-config-check" %}
{%- set wrapper = mapdata.libexec_dir ~ "/condor-job-wrapper" %}

include:
  - {{ tpldir.split("/")[0] }}.package.install

htcondor-config-libexec:
  file.directory:
    - name: {{ mapdata.libexec_dir }}
    - makedirs: True
    - mode: "0755"

htcondor-config-checker:
  file.managed:
    - name: {{ checker }}
    - source: salt://{{ tpldir.split("/")[0] }}/files/condor-config-check
    - mode: "0755"
    - require:
      - file: htcondor-config-libexec

htcondor-config-job-wrapper:
  file.managed:
    - name: {{ wrapper }}
    - source: salt://{{ tpldir.split("/")[0] }}/files/job-wrapper.sh.jinja
    - template: jinja
    - mode: "0755"
    - context:
        strip: {{ mapdata.job_wrapper.strip | json }}
    - check_cmd: /bin/sh -n
    - require:
      - file: htcondor-config-libexec

htcondor-config-dir:
  file.directory:
    - name: {{ mapdata.config_dir }}
    - makedirs: True
    - mode: "0755"

htcondor-config-slots:
  file.managed:
    - name: {{ mapdata.config_dir }}/50-labsalt-slots.conf
    - source: salt://{{ tpldir.split("/")[0] }}/files/slots.conf.jinja
    - template: jinja
    - mode: "0644"
    - context:
        policy: {{ slots.policy }}
        slots: {{ plan | json }}
    - check_cmd: {{ checker }}
    - require:
      # the checker reads the file with HTCondor's parser, which the package brings
      - id: htcondor-package
      - file: htcondor-config-checker
      - file: htcondor-config-dir

htcondor-config-environment:
  file.managed:
    - name: {{ mapdata.config_dir }}/50-labsalt-environment.conf
    - source: salt://{{ tpldir.split("/")[0] }}/files/environment.conf.jinja
    - template: jinja
    - mode: "0644"
    - context:
        wrapper: {{ (wrapper if mapdata.job_wrapper.enabled else "") | json }}
        allow_getenv: {{ mapdata.submit.allow_getenv | json }}
    - check_cmd: {{ checker }}
    - require:
      - id: htcondor-package
      - file: htcondor-config-checker
      - file: htcondor-config-job-wrapper
      - file: htcondor-config-dir
