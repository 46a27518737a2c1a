{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{%- set fw = mapdata.firewall %}
{%- if fw.enabled %}
{%- set turn_ports = [mapdata.listening_port] %}
{%- if mapdata.tls.cert and mapdata.tls.pkey %}
{%-   do turn_ports.append(mapdata.tls_listening_port) %}
{%- endif %}

include:
  - coturn.package.install

# nft, installed (and recorded) only after the coexistence check passed.
coturn-firewall-package:
  labsalt_packages.installed:
    - pkgs: [nftables]
    - record_dir: {{ mapdata.state_dir | json }}
    - require:
      - coturn: coturn-firewall-compatible

coturn-firewall-rules:
  file.managed:
    - name: {{ fw.rules_file }}
    - source: salt://{{ tpldir.split("/")[0] }}/files/coturn.nft.jinja
    - template: jinja
    - makedirs: true
    - mode: "0644"
    - context:
        fw: {{ fw | json }}
        config: {min_port: {{ mapdata.min_port }}, max_port: {{ mapdata.max_port }}}
        tcp_ports: {{ (turn_ports + fw.extra_tcp_ports) | unique | list | json }}
        udp_ports: {{ turn_ports | json }}
    - check_cmd: /usr/sbin/nft --check --file
    - require:
      - id: coturn-firewall-package
{%- else %}

include:
  - coturn.firewall.clean
{%- endif %}
