{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{%- set dhcp = mapdata.dhcp %}
{%- if dhcp.proxy %}

include:
  - ipxe.package.install
{%-   if not dhcp.subnet or not mapdata.server %}
{{-     raise("ipxe:dhcp:subnet and ipxe:server must be set for the proxy DHCP (or set ipxe:dhcp:proxy: false)") }}
{%-   endif %}

# dnsmasq checks the new text before it replaces the live file.
ipxe-dnsmasq-conf:
  file.managed:
    - name: {{ dhcp.conf }}
    - source: salt://ipxe/files/dnsmasq.conf.jinja
    - template: jinja
    - context:
        mapdata: {{ mapdata | json }}
    - mode: "0644"
    - makedirs: True
    - check_cmd: {{ dhcp.dnsmasq }} --test -C
    - require:
      - id: ipxe-packages

ipxe-dnsmasq-unit:
  file.managed:
    - name: {{ dhcp.unit_dir }}/{{ dhcp.unit }}.service
    - source: salt://ipxe/files/dnsmasq.service.jinja
    - template: jinja
    - context:
        dhcp: {{ dhcp | json }}
    - mode: "0644"
    - makedirs: True
{%- endif %}
