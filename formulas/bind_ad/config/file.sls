{#- named.conf.options, named.conf.local and the AD zone: rendered by the bind_ad
    module, validated together, then each replaced only after its own checker
    passed; named reloads by rndc only what changed. #}
{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{%- set rendered = salt["bind_ad.render"](mapdata) %}
{%- set named_conf = mapdata.config_dir ~ "/named.conf" %}
{%- set zone_file = rendered.zone_file %}
{%- set rndc = mapdata.rndc | map("quote") | join(" ") %}

bind_ad-config-valid:
  bind_ad.config_valid:
    - name: {{ named_conf }}
    - files: {{ rendered.files | json }}
    - checkconf: {{ mapdata.checkconf }}

{%- for path, text in rendered.files | dictsort %}

bind_ad-config-{{ path }}:
  file.managed:
    - name: {{ path }}
    - contents: {{ text | json }}
    - user: root
    - group: {{ mapdata.group }}
    - mode: "0644"
    - makedirs: true
{%- if path == zone_file %}
    - check_cmd: {{ mapdata.checkzone }} -q {{ rendered.domain }}
{%- else %}
    - check_cmd: {{ mapdata.checkconf }}
{%- endif %}
    - require:
      - bind_ad: bind_ad-config-valid
{%- endfor %}

bind_ad-config-reconfig:
  cmd.run:
    - name: {{ rndc }} reconfig
    - onchanges:
{%- for path in rendered.files | reject("equalto", zone_file) %}
      - file: bind_ad-config-{{ path }}
{%- endfor %}

{%- if zone_file %}

bind_ad-config-reload-zone:
  cmd.run:
    - name: {{ rndc }} reload {{ rendered.domain }}
    - onchanges:
      - file: bind_ad-config-{{ zone_file }}
    - require:
      - cmd: bind_ad-config-reconfig
{%- endif %}
