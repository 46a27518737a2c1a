{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}

probe-package-installed:
  pkg.installed:
    - name: {{ mapdata.package }}
