{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{%- set root = mapdata.tftp.root %}
# Removes what the formula generated or fetched; the installer trees stay.

ipxe-generated-removed:
  file.absent:
    - names:
      - {{ root }}/{{ mapdata.menu.file }}
      - {{ root }}/ipxe
      - {{ root }}/{{ mapdata.wimboot.file }}
      - {{ root }}/{{ mapdata.ipxe_binaries.bios }}
      - {{ root }}/{{ mapdata.ipxe_binaries.uefi }}
      - {{ mapdata.dhcp.conf }}
      - {{ mapdata.dhcp.unit_dir }}/{{ mapdata.dhcp.unit }}.service
