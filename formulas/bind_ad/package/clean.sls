{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}

bind_ad-package-removed:
  pkg.removed:
    - pkgs: {{ mapdata.packages | json }}
