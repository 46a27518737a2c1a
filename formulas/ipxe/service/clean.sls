{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}

ipxe-dnsmasq-dead:
  service.dead:
    - name: {{ mapdata.dhcp.unit }}
    - enable: False

ipxe-tftpd-dead:
  service.dead:
    - name: {{ mapdata.tftp.service }}
    - enable: False
