{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}

bind_ad-package-installed:
  pkg.installed:
    - pkgs: {{ mapdata.packages | json }}
