{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{%- set settings = {
      "allowStartStopRecording": mapdata.recording.allow_start_stop,
      "disableRecordingDefault": mapdata.recording.disable_by_default,
      "defaultWelcomeMessageFooter": mapdata.welcome_footer,
    } %}
{%- if mapdata.dialin.enabled %}
{%-   do settings.update({
        "defaultDialAccessNumber": mapdata.dialin.number,
        "defaultNumDigitsForTelVoice": mapdata.dialin.pin_digits,
      }) %}
{%- endif %}

include:
  - bigbluebutton.install

# Key edits in BBB's override file (kept across BBB upgrades), not blind sed.
bigbluebutton-properties:
  bbb.properties:
    - name: {{ mapdata.paths.properties }}
    - settings: {{ settings | json }}
{%- if mapdata.api.secret is not none %}
    - secret_settings:
        securitySalt: bigbluebutton:api:secret
{%- endif %}
{%- if mapdata.installer.enabled %}
    - require:
      - bbb: bigbluebutton-installed
{%- endif %}
