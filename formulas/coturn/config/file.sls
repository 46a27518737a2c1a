{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{#- The secret stays out of the rendered SLS: the template reads it from pillar. #}
{%- set config = mapdata.copy() %}
{%- do config.pop("static_auth_secret") %}
{#- The server's own external/relay addresses inside a denied range (coturn#584):
    allowed exactly, and said so by coturn-own-addresses (see _modules/coturn.py). #}
{%- set own = salt["coturn.own_peer_exceptions"](config, grains.get("ipv4", []) + grains.get("ipv6", [])) %}

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
    - require:
      - id: coturn-package

# labsalt owns turnserver.conf (coturn reads one file, no includes); the
# package's (or the site's) original is kept for coturn.clean.
coturn-config-original:
  coturn.original_kept:
    - name: {{ mapdata.config_file }}
    - backup: {{ mapdata.state_dir }}/turnserver.conf.orig
    - marker: "# Managed by Salt (labsalt coturn formula)"
    - require:
      - id: coturn-package

coturn-config:
  file.managed:
    - name: {{ mapdata.config_file }}
    - source: salt://{{ tpldir.split("/")[0] }}/files/turnserver.conf.jinja
    - template: jinja
    - context:
        config: {{ config | json }}
        own_peers: {{ own | json }}
    # Owner and group stay as the package's dpkg-statoverride sets them
    # (root:turnserver): naming the group here would fail test mode on a host
    # where the package (and its group) is not installed yet.
    - mode: "0640"
    - show_changes: false
    - check_cmd: {{ mapdata.checker }}
    - require:
      - id: coturn-package
      - coturn: coturn-config-original
      - file: coturn-config-checker

coturn-own-addresses:
  coturn.own_addresses_allowed:
    - name: {{ mapdata.config_file }}
    - exceptions: {{ own | json }}
    - require_in:
      - file: coturn-config
