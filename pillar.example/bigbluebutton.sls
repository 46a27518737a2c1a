# bigbluebutton (role bbb): BBB via the pinned bbb-install.sh plus the lab's settings.
bigbluebutton:
  hostname: bbb.lab.example.org
  email: admin@lab.example.org
  installer:
    version: jammy-300
    url: https://raw.githubusercontent.com/bigbluebutton/bbb-install/v3.0.x-release/bbb-install.sh
    # sha256sum of the script at url, after you read it (required).
    # (placeholder: replace with the real digest)
    sha256: "0000000000000000000000000000000000000000000000000000000000000000"
    greenlight: false
  turn:
    host: turn.lab.example.org
    # The secret comes from coturn:static_auth_secret (coturn.sls).
  dialin:
    enabled: true
    number: "+49 711 12345678"
    # Your SIP provider routes calls to sip:TOKEN@bbb.lab.example.org;transport=tcp
    token: CHANGEME0123456789
  # Recording stays off (disableRecordingDefault=true); the raw recordings BBB
  # keeps anyway are purged (recording:purge_raw, default true; entries changed
  # within recording:purge_quiet_minutes, default 60, stay).
  recording:
    disable_by_default: true
    purge_raw: true
  # mattermost:
  #   url: https://chat.lab.example.org
  #   token: personal-access-token-of-a-system-admin
