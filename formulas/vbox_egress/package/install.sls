{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}

vbox-egress-packages:
  pkg.installed:
    - pkgs: {{ mapdata.packages | json }}
