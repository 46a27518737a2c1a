{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}

ipxe-packages:
  pkg.installed:
    - pkgs: {{ mapdata.pkgs | json }}
