{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}

openmpi-packages-removed:
  pkg.removed:
    - pkgs: {{ mapdata.packages | json }}
