{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}

ppc64-emulation-packages:
  pkg.installed:
    - pkgs: {{ mapdata.packages | json }}
