{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}

vbox-egress-filter-absent:
  vbox_egress.absent:
    - name: {{ mapdata.cgroup | json }}
    - mode: {{ mapdata.mode | json }}
    - table: {{ mapdata.table | json }}
    - classid: {{ mapdata.classid | json }}
