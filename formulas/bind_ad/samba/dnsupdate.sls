{#- On a Samba AD DC only: DC registrations go by samba-tool to the DC's own DNS
    (following BIND's delegations) instead of RFC 2136 updates to BIND.  Only the
    `dns update command` line of [global] changes; the line it replaces is
    recorded first (once), for bind_ad.clean to put back. #}
{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{%- set text = salt["bind_ad.samba_conf_text"](mapdata.samba.conf,
                                               mapdata.samba.dns_update_command) %}
{%- if text %}

bind_ad-samba-previous-dns-update-command:
  file.managed:
    - name: {{ (mapdata.state_dir ~ "/samba-dns-update-command") | json }}
    - contents: {{ salt["bind_ad.samba_previous"](mapdata.samba.conf) | json }}
    - replace: false
    - makedirs: true
    - mode: "0644"

bind_ad-samba-dns-update-command:
  file.managed:
    - name: {{ mapdata.samba.conf | json }}
    - contents: {{ text | json }}
    - check_cmd: /usr/bin/testparm --suppress-prompt
    - require:
      - file: bind_ad-samba-previous-dns-update-command
{%- endif %}
