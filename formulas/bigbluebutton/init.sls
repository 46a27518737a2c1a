# BigBlueButton host: pinned installer, post-install settings, restart when a
# file changed, firewall, Mattermost plugin settings, API health check.
include:
  - bigbluebutton.install
  - bigbluebutton.config.properties
  - bigbluebutton.config.dialin
  - bigbluebutton.config.audio
  - bigbluebutton.config.recording
  - bigbluebutton.service.restart
  - bigbluebutton.firewall
  - bigbluebutton.mattermost
  - bigbluebutton.verify
