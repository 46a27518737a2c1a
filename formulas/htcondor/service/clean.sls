{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}

htcondor-service-dead:
  service.dead:
    - name: {{ mapdata.service }}
    - enable: False
    - onlyif: systemctl cat {{ mapdata.service }}.service
