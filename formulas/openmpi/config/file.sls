{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{%- set mpi = salt["openmpi.settings"](mapdata) %}

include:
  - {{ tpldir.split("/")[0] }}.package.install

# Login shells (and Intel MPI, OpenMP): environment variables.
openmpi-profile:
  file.managed:
    - name: {{ mapdata.profile_file }}
    - source: salt://{{ tpldir.split("/")[0] }}/files/profile.sh.jinja
    - template: jinja
    - makedirs: true
    - mode: "0644"
    - context:
        mpi: {{ mpi | json }}

openmpi-mca-params-checker:
  file.managed:
    - name: {{ mapdata.checker }}
    - source: salt://{{ tpldir.split("/")[0] }}/files/check-mca-params.py
    - makedirs: true
    - mode: "0755"

# Every OpenMPI process, login shell or not (batch jobs, ssh commands).
openmpi-mca-params:
  file.managed:
    - name: {{ mapdata.mca_params_file }}
    - source: salt://{{ tpldir.split("/")[0] }}/files/mca-params.conf.jinja
    - template: jinja
    - makedirs: true
    - mode: "0644"
    - check_cmd: {{ mapdata.checker }}
    - context:
        params: {{ mpi.mca_params | json }}
        mpi: {{ mpi | json }}
    - require:
      - file: openmpi-mca-params-checker
      - pkg: openmpi-packages
{%- if mpi.prte_params %}

# OpenMPI 5 launches through PRRTE, which has its own parameter names and file.
openmpi-prte-params:
  file.managed:
    - name: {{ mapdata.prte_params_file }}
    - source: salt://{{ tpldir.split("/")[0] }}/files/mca-params.conf.jinja
    - template: jinja
    - makedirs: true
    - mode: "0644"
    - context:
        params: {{ mpi.prte_params | json }}
        mpi: {{ mpi | json }}
{%- endif %}
