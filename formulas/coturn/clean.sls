include:
  - coturn.firewall.clean
  - coturn.service.clean
  - coturn.config.clean
  - coturn.package.clean
