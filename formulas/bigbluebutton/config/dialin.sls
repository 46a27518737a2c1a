{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{%- set dialin = mapdata.dialin %}
{%- set plan = mapdata.paths.freeswitch ~ "/dialplan/public/dialin.xml" %}
{%- if dialin.enabled %}
{#-   number and token: checked by the schema and bbb.validate (never shown) #}

include:
  - bigbluebutton.install

# The dial plan's check_cmd (installed and recorded: clean purges it only if
# labsalt installed it).
bigbluebutton-xmllint:
  labsalt_packages.installed:
    - pkgs: [libxml2-utils]
    - record_dir: {{ mapdata.paths.record.rsplit("/", 1)[0] | json }}

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
    - check_cmd: /usr/bin/xmllint --noout
    - require:
      - id: bigbluebutton-xmllint
{%-   if mapdata.installer.enabled %}
      - bbb: bigbluebutton-installed
{%-   endif %}
{%- else %}

bigbluebutton-dialin-plan:
  file.absent:
    - name: {{ plan }}
{%- endif %}
