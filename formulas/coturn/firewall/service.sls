{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{%- set fw = mapdata.firewall %}
{%- if fw.enabled %}

include:
  - coturn.firewall.rules

# A unit of its own loads the table at boot, before coturn starts.  It never
# touches /etc/nftables.conf or other tables; when the site's nftables.service
# (re)loads a ruleset that starts with `flush ruleset`, this unit follows it and
# loads coturn's table again.
coturn-firewall-unit:
  file.managed:
    - name: /etc/systemd/system/{{ fw.unit }}
    - contents: |
        # Managed by Salt (labsalt coturn formula)
        [Unit]
        Description=labsalt: host firewall for coturn (nftables table {{ fw.table }})
        Wants=network-pre.target
        Before=network-pre.target coturn.service
        After=nftables.service
        PartOf=nftables.service
        ReloadPropagatedFrom=nftables.service

        [Service]
        Type=oneshot
        RemainAfterExit=yes
        ExecStart=/usr/sbin/nft -f {{ fw.rules_file }}
        ExecReload=/usr/sbin/nft -f {{ fw.rules_file }}
        ExecStop=-/usr/sbin/nft delete table inet {{ fw.table }}

        [Install]
        WantedBy=multi-user.target
    - require:
      - id: coturn-firewall-package

coturn-firewall-service:
  service.running:
    - name: {{ fw.unit }}
    - enable: true
    - reload: true
    - watch:
      - file: coturn-firewall-rules
      - file: coturn-firewall-unit
{%- endif %}
