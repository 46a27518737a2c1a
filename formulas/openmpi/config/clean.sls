{#- Removes what the formula added: its profile.d file, its checker, its marked
    block in the parameter files (the rest of those files stays as it is). #}
{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}

openmpi-profile-absent:
  file.absent:
    - name: {{ mapdata.profile_file }}
{%- for id, path in [("openmpi-mca-params-block-absent", mapdata.mca_params_file),
                     ("openmpi-prte-params-block-absent", mapdata.prte_params_file)] %}
{%- if salt["openmpi.only_ours"](path) %}

{{ id }}:
  file.absent:
    - name: {{ path }}
{%- elif salt["file.file_exists"](path) %}

{{ id }}:
  file.managed:
    - name: {{ path }}
    - source: salt://{{ tpldir.split("/")[0] }}/files/mca-params.conf.jinja
    - template: jinja
    - context:
        path: {{ path | json }}
        params: null
        comment: null
{%- endif %}
{%- endfor %}

openmpi-mca-params-checker-absent:
  file.absent:
    - name: {{ mapdata.checker }}
