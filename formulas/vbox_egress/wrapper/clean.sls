{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}

vbox-egress-wrapper-absent:
  file.absent:
    - name: {{ mapdata.wrapper | json }}
