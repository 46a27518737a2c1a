{#- Back to Samba's default dns update command (samba_dnsupdate without flags). #}
{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}

bind_ad-samba-dns-update-command-absent:
  file.line:
    - name: {{ mapdata.samba.conf }}
    - match: '^\s*dns update command\s*='
    - mode: delete
    - onlyif: test -f {{ mapdata.samba.conf }}
