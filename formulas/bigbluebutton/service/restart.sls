{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}

include:
  - bigbluebutton.config.properties
  - bigbluebutton.config.dialin
  - bigbluebutton.config.audio

# Only when one of BBB's files changed (the notebook: bbb-conf --stop/--start).
bigbluebutton-restart:
  bbb.argv_run:
    - name: restart BigBlueButton
    - argv: {{ mapdata.restart_cmd | json }}
    - onchanges:
      - bbb: bigbluebutton-properties
      - file: bigbluebutton-dialin-plan
      - bbb: bigbluebutton-apply-config
