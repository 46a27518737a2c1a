{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}

bind_ad-service-dead:
  service.dead:
    - name: {{ mapdata.service }}
    - enable: false
