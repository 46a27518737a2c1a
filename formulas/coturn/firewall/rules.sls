{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{%- set fw = mapdata.firewall %}
{%- if fw.enabled %}
{%- set turn_ports = [mapdata.listening_port] %}
{%- if mapdata.tls.cert and mapdata.tls.pkey %}
{%-   do turn_ports.append(mapdata.tls_listening_port) %}
{%- endif %}

coturn-firewall-package:
  pkg.installed:
    - name: nftables

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
      - pkg: coturn-firewall-package

coturn-firewall-unit:
  file.managed:
    - name: /etc/systemd/system/{{ fw.unit }}
    - contents: |
        # Managed by Salt (labsalt coturn formula)
        [Unit]
        Description=labsalt: host firewall for coturn (nftables table {{ fw.table }})
        Wants=network-pre.target
        Before=network-pre.target coturn.service

        [Service]
        Type=oneshot
        RemainAfterExit=yes
        ExecStart=/usr/sbin/nft -f {{ fw.rules_file }}
        ExecReload=/usr/sbin/nft -f {{ fw.rules_file }}
        ExecStop=/usr/sbin/nft delete table inet {{ fw.table }}

        [Install]
        WantedBy=multi-user.target

coturn-firewall-service:
  service.running:
    - name: {{ fw.unit }}
    - enable: true
    - reload: true
    - watch:
      - file: coturn-firewall-rules
      - file: coturn-firewall-unit
{%- else %}

include:
  - coturn.firewall.clean
{%- endif %}
