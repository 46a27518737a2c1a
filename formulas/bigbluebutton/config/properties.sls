{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{%- set settings = {
      "allowStartStopRecording": mapdata.recording.allow_start_stop,
      "disableRecordingDefault": mapdata.recording.disable_by_default,
      "defaultWelcomeMessageFooter": mapdata.welcome_footer,
    } %}
{%- if mapdata.dialin.enabled %}
{%-   do settings.update({
        "defaultDialAccessNumber": salt["bbb.phone_number"](mapdata.dialin.number),
        "defaultNumDigitsForTelVoice": mapdata.dialin.pin_digits,
      }) %}
{%- endif %}
{%- if mapdata.api.secret is not none %}
{%-   do salt["bbb.check_secret"](mapdata.api.secret, "bigbluebutton:api:secret", "the BBB API secret", "A-Za-z0-9") %}
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
