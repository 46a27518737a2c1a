{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{%- set installer = mapdata.installer %}
{%- if installer.enabled %}
{%-   if mapdata.turn.host %}
{#-     Refused here, at render time, so that nothing runs without the secret. #}
{%-     do salt["bbb.check_turn_secret"](salt["pillar.get"](mapdata.turn.secret_pillar), mapdata.turn.secret_pillar) %}
{%-   endif %}

bigbluebutton-installed:
  bbb.installed:
    - name: {{ installer.version | json }}
    - url: {{ installer.url | json }}
    - sha256: {{ installer.sha256 | json }}
    - hostname: {{ mapdata.hostname | json }}
    - email: {{ mapdata.email | json }}
    - turn_host: {{ mapdata.turn.host | json }}
    - turn_secret_pillar: {{ mapdata.turn.secret_pillar }}
    - greenlight: {{ installer.greenlight }}
    - firewall: {{ installer.firewall }}
    - extra_args: {{ installer.extra_args | json }}
    - workdir: {{ mapdata.paths.workdir }}
    - log_file: {{ mapdata.paths.workdir }}/bbb-install.log
{%- endif %}
{%- if mapdata.webhooks %}

bigbluebutton-webhooks:
  pkg.installed:
    - name: bbb-webhooks
{%-   if installer.enabled %}
    - require:
      - bbb: bigbluebutton-installed
{%-   endif %}
{%- endif %}
