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
    - retry:
        attempts: 12
        interval: 10
    - require:
      - cmd: bigbluebutton-restart
{%- endif %}
