# BIND in front of an Active Directory domain: see README.md.
include:
  - .package.install
  - .service.running
  - .config.file
  - .samba.dnsupdate
  - .verify
