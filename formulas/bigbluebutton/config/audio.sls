{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{%- set fs = mapdata.paths.freeswitch %}
{%- set audio = mapdata.audio %}

include:
  - bigbluebutton.install

# One attribute each, in BBB's own FreeSWITCH files (the rest stays as shipped).
bigbluebutton-audio-opus-dtx:
  bbb.xml_attribute:
    - name: {{ fs }}/autoload_configs/opus.conf.xml
    - tag: param
    - match: {name: use-dtx}
    - attribute: value
    - value: {{ audio.use_dtx }}
{%- if mapdata.installer.enabled %}
    - require:
      - bbb: bigbluebutton-installed
{%- endif %}

bigbluebutton-audio-jitterbuffer:
  bbb.xml_attribute:
    - name: {{ fs }}/dialplan/default/bbb_conference.xml
    - tag: action
    - match: {application: jitterbuffer}
    - attribute: data
    - value: "{{ audio.jitterbuffer }}"
{%- if mapdata.installer.enabled %}
    - require:
      - bbb: bigbluebutton-installed
{%- endif %}

bigbluebutton-audio-energy-level:
  bbb.xml_attribute:
    - name: {{ fs }}/autoload_configs/conference.conf.xml
    - tag: param
    - match: {name: energy-level}
    - attribute: value
    - value: {{ audio.energy_level }}
    - scope:
        tag: profile
        match: {name: cdquality}
{%- if mapdata.installer.enabled %}
    - require:
      - bbb: bigbluebutton-installed
{%- endif %}
