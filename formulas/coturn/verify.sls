{#- After the run: turnutils_uclient, with TURN REST credentials made from the
    pillar's secret (read by the state from pillar, never on a command line),
    allocates a relay on the live server, and a peer in a denied range is
    refused; see _modules/coturn.py (verify).  coturn:verify:enabled: false
    turns it off. #}
{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{%- set params = mapdata.copy() %}
{%- do params.pop("static_auth_secret") %}
include:
  - coturn.package.install

coturn-verified:
  coturn.verified:
    - name: {{ mapdata.realm | json }}
    - params: {{ params | json }}
    - require:
      - id: coturn-package
