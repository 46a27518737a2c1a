# coturn (role turn): the TURN server BigBlueButton's clients relay through.
coturn:
  realm: turn.lab.example.org
  # The shared secret (TURN REST API auth); the BBB host reads the same key.
  # Generate one with: openssl rand -hex 16
  static_auth_secret: CHANGE-ME-0123456789abcdef
  tls:
    cert: /etc/letsencrypt/live/turn.lab.example.org/fullchain.pem
    pkey: /etc/letsencrypt/live/turn.lab.example.org/privkey.pem
  # A lab-internal peer TURN may relay to despite the denied private ranges:
  # allowed_peer_ips: [10.20.30.40]
