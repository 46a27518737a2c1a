# Undo the ipxe formula, in reverse order.
include:
  - .service.clean
  - .config.clean
  - .package.clean
