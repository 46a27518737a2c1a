{#- BIND's files for the AD domain: the formula's own zone statement, options
    fragment and zone file, plus one marked include line in each of the site's
    named.conf.options and named.conf.local.  Computed and validated together
    (named-checkconf -z in a temporary copy) when the state runs, then named is
    told by rndc until it serves them (see _states/bind_ad.py). #}
{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}

bind_ad-config:
  bind_ad.configured:
    - name: {{ (mapdata.config_dir ~ "/named.conf") | json }}
    - params: {{ mapdata | json }}

bind_ad-named-reloaded:
  bind_ad.reloaded:
    - name: {{ mapdata.domain | json }}
    - params: {{ mapdata | json }}
    - require:
      - bind_ad: bind_ad-config
