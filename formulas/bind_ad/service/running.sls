{#- named runs before the configuration is applied, so that changes reach it by rndc. #}
{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}

bind_ad-service-running:
  service.running:
    - name: {{ mapdata.service }}
    - enable: true
