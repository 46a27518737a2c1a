{#- The `dns update command` line back to what it was before bind_ad set it. #}
{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{%- set record = mapdata.state_dir ~ "/samba-dns-update-command" %}
{%- set text = salt["bind_ad.samba_restore_text"](mapdata.samba.conf, record) %}
{%- if text is not none %}

bind_ad-samba-dns-update-command-restored:
  file.managed:
    - name: {{ mapdata.samba.conf | json }}
    - contents: {{ text | json }}
    - check_cmd: /usr/bin/testparm --suppress-prompt

bind_ad-samba-record-absent:
  file.absent:
    - name: {{ record | json }}
    - require:
      - file: bind_ad-samba-dns-update-command-restored
{%- endif %}
