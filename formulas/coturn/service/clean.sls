{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}

coturn-service-dead:
  service.dead:
    - name: {{ mapdata.service }}
    - enable: false

coturn-service-drop-in-removed:
  file.absent:
    - name: /etc/systemd/system/{{ mapdata.service }}.service.d/labsalt.conf
