{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{%- set dialin = mapdata.dialin %}
{%- set plan = mapdata.paths.freeswitch ~ "/dialplan/public/dialin.xml" %}
{%- if dialin.enabled %}
{%-   do salt["bbb.phone_number"](dialin.number) %}
{%-   do salt["bbb.check_secret"](dialin.token, "bigbluebutton:dialin:token", "the SIP provider's calls are matched by it", "A-Za-z0-9") %}

include:
  - bigbluebutton.install

# Phone dial-in (the notebook's plan): the provider sends calls to the secret
# token; the caller enters the conference PIN and is transferred into the
# conference only when it is active (someone joined from a computer).
bigbluebutton-dialin-plan:
  file.managed:
    - name: {{ plan }}
    - source: salt://{{ tpldir.split("/")[0] }}/files/dialin.xml.jinja
    - template: jinja
    - context:
        pin_digits: {{ dialin.pin_digits }}
    - user: root
    - group: root
    - mode: "0640"
    - show_changes: false
    - check_cmd: xmllint --noout
{%-   if mapdata.installer.enabled %}
    - require:
      - bbb: bigbluebutton-installed
{%-   endif %}
{%- else %}

bigbluebutton-dialin-plan:
  file.absent:
    - name: {{ plan }}
{%- endif %}
