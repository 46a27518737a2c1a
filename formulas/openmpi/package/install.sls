{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}

openmpi-packages:
  pkg.installed:
    - pkgs: {{ mapdata.packages | json }}
