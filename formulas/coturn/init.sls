# TURN server for BigBlueButton: package, config, service, host firewall.
include:
  - coturn.package.install
  - coturn.config.file
  - coturn.service.running
  - coturn.firewall.service
