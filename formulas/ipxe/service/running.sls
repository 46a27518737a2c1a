{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}

include:
  - ipxe.config

ipxe-tftpd-running:
  service.running:
    - name: {{ mapdata.tftp.service }}
    - enable: True
    - watch:
      - ipxe: ipxe-tftpd-defaults

ipxe-smbd-running:
  service.running:
    - name: {{ mapdata.samba.service }}
    - enable: True
    - reload: True
    - watch:
      - file: ipxe-smb-conf
      - ipxe: ipxe-smb-conf-include
{%- if mapdata.dhcp.proxy %}

ipxe-dnsmasq-running:
  service.running:
    - name: {{ mapdata.dhcp.unit }}
    - enable: True
    - watch:
      - file: ipxe-dnsmasq-conf
      - file: ipxe-dnsmasq-unit
{%- endif %}
