{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
# The formula's own proxy DHCP unit; tftpd-hpa and smbd keep running as the
# site had them (ipxe.config.clean restarts them on the site's settings, and
# ipxe.package.clean purges them if labsalt installed them).

ipxe-dnsmasq-dead:
  service.dead:
    - name: {{ mapdata.dhcp.unit }}
    - enable: False
