{#- The service is stopped only when labsalt installed HTCondor itself; a site's
    own HTCondor keeps running and rereads its configuration without ours. #}
{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{%- set record = mapdata.state_dir ~ "/installed-packages" %}
{%- set recorded = salt["file.read"](record).split() if salt["file.file_exists"](record) else [] %}
include:
  - ..config.clean
{%- if mapdata.package in recorded %}

htcondor-service-dead:
  service.dead:
    - name: {{ mapdata.service }}
    - enable: False
    - onlyif:
      - fun: service.available
        args:
          - {{ mapdata.service }}
{%- else %}

htcondor-service-reconfig-after-clean:
  htcondor.reconfigured:
    - name: {{ mapdata.service }}
    - onchanges:
      - file: htcondor-config-files-absent
{%- endif %}
