{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}

coturn-config-removed:
  file.absent:
    - names:
      - {{ mapdata.config_file }}
      - {{ mapdata.checker }}
