# Big-endian ppc64 emulation: qemu-user-static, the binfmt_misc entry with the
# F flag, and the Adélie / Debian ppc64 container recipes (built where an engine runs).
include:
  - .package.install
  - .binfmt.registered
  - .containers.recipes
