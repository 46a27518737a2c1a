include:
  - .package.install
  - .config.file
  - .service.running
