{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
# Only the packages the formula installed itself (recorded in
# <state_dir>/installed-packages) are purged; what the host had stays.
ipxe-packages-removed:
  ipxe.packages_removed:
    - state_dir: {{ mapdata.state_dir }}
