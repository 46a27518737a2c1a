{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
include:
  - ..package.install

vbox-egress-filter:
  vbox_egress.filtered:
    - name: {{ mapdata.cgroup }}
    - allow: {{ mapdata.allow | json }}
    - mode: {{ mapdata.mode }}
    - table: {{ mapdata.table }}
    - classid: '{{ mapdata.classid }}'
    - require:
      - pkg: vbox-egress-packages
