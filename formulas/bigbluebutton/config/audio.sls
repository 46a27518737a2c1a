{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{%- set fs = mapdata.paths.freeswitch %}
{%- set audio = mapdata.audio %}
{%- set cdquality = {"tag": "profile", "match": {"name": "cdquality"} } %}
{%- set edits = [
      {"path": fs ~ "/autoload_configs/opus.conf.xml", "tag": "param",
       "match": {"name": "use-dtx"}, "attribute": "value", "value": audio.use_dtx},
      {"path": fs ~ "/dialplan/default/bbb_conference.xml", "tag": "action",
       "match": {"application": "jitterbuffer"}, "attribute": "data", "value": audio.jitterbuffer},
      {"path": fs ~ "/autoload_configs/conference.conf.xml", "tag": "param",
       "match": {"name": "energy-level"}, "attribute": "value", "value": audio.energy_level,
       "scope": cdquality},
    ] %}

include:
  - bigbluebutton.install

# One attribute each in BBB's packaged FreeSWITCH files (the rest stays as
# shipped), set now and kept across BBB upgrades through BBB's apply-config.sh
# (run by bbb-conf --restart before BBB starts), which gets a block that runs
# the same edits from a data file.
bigbluebutton-apply-config:
  bbb.apply_config:
    - name: {{ mapdata.paths.bbb_conf }}
    - xml_edits: {{ edits | json }}
{%- if mapdata.installer.enabled %}
    - require:
      - bbb: bigbluebutton-installed
{%- endif %}
