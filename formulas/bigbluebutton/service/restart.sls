{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}

include:
  - bigbluebutton.config.properties
  - bigbluebutton.config.dialin
  - bigbluebutton.config.audio

# Only when one of BBB's files changed (the notebook: bbb-conf --stop/--start).
bigbluebutton-restart:
  cmd.run:
    - name: {{ mapdata.restart_cmd }}
    - onchanges:
      - bbb: bigbluebutton-properties
      - file: bigbluebutton-dialin-plan
      - bbb: bigbluebutton-audio-opus-dtx
      - bbb: bigbluebutton-audio-jitterbuffer
      - bbb: bigbluebutton-audio-energy-level
