{#- named is stopped only when labsalt installed bind9: the site's named keeps running
    (bind_ad.config.clean has told it about the restored files). #}
{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{%- set installed = salt["bind_ad.recorded_packages"](mapdata.state_dir ~ "/installed-packages") %}
{%- if "bind9" in installed %}

bind_ad-service-dead:
  service.dead:
    - name: {{ mapdata.service | json }}
    - enable: false
{%- endif %}
