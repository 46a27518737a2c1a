# iPXE + wimboot network installer: packages, served tree, menu, share, services.
include:
  - .package.install
  - .config
  - .service.running
