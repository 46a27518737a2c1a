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
  # The server's own external or relay address inside a denied range (a lab behind
  # NAT) is allowed exactly (allowed-peer-ip), so that clients relaying to each
  # other through this server work (coturn/coturn#584); false keeps it denied.
  # allow_own_addresses: true
  # After each run a real TURN client checks the live server (a relay is
  # allocated, a denied peer is refused); off for this host with enabled: false.
  verify:
    enabled: true
    timeout: 10
