{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
include:
  - ..package.install

vbox-egress-filter:
  vbox_egress.filtered:
    - name: {{ mapdata.cgroup | json }}
    - allow: {{ mapdata.allow | json }}
    - mode: {{ mapdata.mode | json }}
    - table: {{ mapdata.table | json }}
    - classid: {{ mapdata.classid | json }}
    - require:
      - id: vbox-egress-packages
