{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{%- set recording = mapdata.recording %}
{%- if recording.disable_by_default and recording.purge_raw %}

include:
  - bigbluebutton.config.properties

# Recording is disabled: purge the raw material BBB keeps anyway
# (bigbluebutton#9202), only in BBB's recording directories under paths:var.
bigbluebutton-raw-recordings-purged:
  bbb.raw_recordings_purged:
    - name: {{ mapdata.paths.var }}
    - quiet_minutes: {{ recording.purge_quiet_minutes }}
    - require:
      - bbb: bigbluebutton-properties
{%- else %}

bigbluebutton-raw-recordings-purged:
  test.nop:
    - name: raw recordings kept (recording enabled or recording:purge_raw false)
{%- endif %}
