{#- named is stopped only when labsalt installed bind9: the site's named keeps running
    (bind_ad.config.clean has told it about the restored files). #}
{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{%- set installed = salt["labsalt_packages.recorded"](None, mapdata.state_dir) %}
{%- if "bind9" in installed %}

bind_ad-service-dead:
  service.dead:
    - name: {{ mapdata.service | json }}
    - enable: false
{%- endif %}
