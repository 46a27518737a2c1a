{#- openmpi.settings reads the topology from sysfs (nothing installed needed),
    so this renders before the package states below have run. #}
{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{%- set mpi = salt["openmpi.settings"](mapdata) %}
{%- set comment = "Pinning policy " ~ mpi.policy ~ ": " ~ mpi.reason ~ "." %}

include:
  - {{ tpldir.split("/")[0] }}.package.install

# Login shells (and Intel MPI, OpenMP): environment variables, in a file of our own.
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

# Every OpenMPI process, login shell or not (batch jobs, ssh commands): our
# parameters as a marked block in the distribution's file; Debian's and the
# site's lines stay.  The whole candidate is checked with ompi_info first.
openmpi-mca-params:
  file.managed:
    - name: {{ mapdata.mca_params_file }}
    - source: salt://{{ tpldir.split("/")[0] }}/files/mca-params.conf.jinja
    - template: jinja
    - makedirs: true
    - mode: "0644"
    - check_cmd: {{ mapdata.checker }}
    - context:
        path: {{ mapdata.mca_params_file | json }}
        params: {{ mpi.mca_params | json }}
        comment: {{ comment | json }}
    - require:
      - file: openmpi-mca-params-checker
      - id: openmpi-packages
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
        path: {{ mapdata.prte_params_file | json }}
        params: {{ mpi.prte_params | json }}
        comment: {{ comment | json }}
    - require:
      - id: openmpi-packages
{%- endif %}
