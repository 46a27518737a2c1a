{#- On a Samba AD DC only: DC registrations go by samba-tool to the DC's own DNS
    (following BIND's delegations) instead of RFC 2136 updates to BIND. #}
{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{%- set text = salt["bind_ad.samba_conf_text"](mapdata.samba.conf,
                                               mapdata.samba.dns_update_command) %}
{%- if text %}

bind_ad-samba-dns-update-command:
  file.managed:
    - name: {{ mapdata.samba.conf }}
    - contents: {{ text | json }}
    - check_cmd: testparm --suppress-prompt
{%- endif %}
