{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{%- if mapdata.api.verify %}

include:
  - bigbluebutton.service.restart

# Signed getMeetings/isMeetingRunning calls must succeed (BBB needs a while
# after a restart, hence the retries).
bigbluebutton-api-healthy:
  bbb.api_healthy:
    - url: {{ mapdata.api.url | json }}
    - algorithm: {{ mapdata.api.algorithm }}
    - properties: {{ mapdata.paths.properties }}
    - default_properties: {{ mapdata.paths.default_properties }}
    - retry:
        attempts: {{ mapdata.api.retries }}
        interval: 10
    - require:
      - bbb: bigbluebutton-restart
{%- endif %}
