include:
  - .singleton.clean
  - .config.clean
  - .package.clean
