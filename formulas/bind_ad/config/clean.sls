{#- Takes bind_ad's include lines out of the site's named.conf.options and
    named.conf.local and removes the formula's own files; the site's zones and
    options stay. #}
{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}

bind_ad-config-removed:
  bind_ad.removed:
    - name: {{ (mapdata.config_dir ~ "/named.conf") | json }}
    - params: {{ mapdata | json }}
