{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{%- set mm = mapdata.mattermost %}
{%- if mm.url %}

include:
  - bigbluebutton.service.restart

bigbluebutton-mattermost-plugin:
  bbb.mattermost_plugin:
    - name: {{ mm.url }}
    - token_pillar: bigbluebutton:mattermost:token
    - plugin_id: {{ mm.plugin_id }}
    - properties: {{ mapdata.paths.properties }}
    - default_properties: {{ mapdata.paths.default_properties }}
    - require:
      - bbb: bigbluebutton-restart
{%- else %}

bigbluebutton-mattermost-plugin:
  test.nop:
    - name: no Mattermost server in pillar (bigbluebutton:mattermost:url)
{%- endif %}
