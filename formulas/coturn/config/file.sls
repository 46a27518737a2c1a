{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{#- The secret stays out of the rendered SLS: the template reads it from pillar. #}
{%- set config = mapdata.copy() %}
{%- do config.pop("static_auth_secret") %}
{%- do salt["bbb.check_turn_secret"](mapdata.static_auth_secret, "coturn:static_auth_secret") %}

include:
  - coturn.package.install

# turnserver has no check mode: this checks the new file against the options the
# installed turnserver lists in its --help, the port range and the peer ranges.
coturn-config-checker:
  file.managed:
    - name: {{ mapdata.checker }}
    - source: salt://{{ tpldir.split("/")[0] }}/files/turnserver-check.py
    - makedirs: true
    - mode: "0755"

coturn-config:
  file.managed:
    - name: {{ mapdata.config_file }}
    - source: salt://{{ tpldir.split("/")[0] }}/files/turnserver.conf.jinja
    - template: jinja
    - context:
        config: {{ config | json }}
    - user: root
    - group: turnserver
    - mode: "0640"
    - show_changes: false
    - check_cmd: {{ mapdata.checker }}
    - require:
      - pkg: coturn-package
      - file: coturn-config-checker
