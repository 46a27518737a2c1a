# Undo bind_ad, in reverse order of init.sls.
include:
  - .samba.clean
  - .config.clean
  - .service.clean
  - .package.clean
