{#- Removes the zone file; named.conf.options/local go back to Debian's empty defaults. #}
{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}

bind_ad-config-zone-absent:
  file.absent:
    - name: {{ mapdata.zone_dir }}

bind_ad-config-local-default:
  file.managed:
    - name: {{ mapdata.config_dir }}/named.conf.local
    - contents: "// Local zones (none; bind_ad removed).\n"
    - check_cmd: {{ mapdata.checkconf }}
