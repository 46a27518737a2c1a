{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}

vbox-egress-filter-absent:
  vbox_egress.absent:
    - name: {{ mapdata.cgroup }}
    - mode: {{ mapdata.mode }}
    - table: {{ mapdata.table }}
    - classid: '{{ mapdata.classid }}'
