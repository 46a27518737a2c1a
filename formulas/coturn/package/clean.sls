{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}

coturn-package-removed:
  pkg.removed:
    - name: {{ mapdata.package }}
