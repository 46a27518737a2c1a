# BIND in front of an Active Directory domain: see README.md.
include:
  - .package.install
  - .service.running
  - .config.file
  - .samba.dnsupdate
  - .verify

# In the whole run, verify only once named has been told about the new files:
# a configuration that failed is that failure alone, not a second one.
extend:
  bind_ad-verified:
    bind_ad.verified:
      - require:
        - bind_ad: bind_ad-named-reloaded
