{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
# Only the packages the formula installed itself (recorded in
# <state_dir>/installed-packages) are purged; what the host had stays.
ipxe-packages-removed:
  labsalt_packages.removed:
    - record_dir: {{ mapdata.state_dir | json }}
