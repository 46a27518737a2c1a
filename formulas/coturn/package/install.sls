{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{#- Refuse a missing or weak secret before anything is installed (never shows it). #}
{%- do salt["bbb.check_turn_secret"](mapdata.static_auth_secret, "coturn:static_auth_secret") %}

coturn-package:
  pkg.installed:
    - name: {{ mapdata.package }}
