# Undo init.sls in reverse order: recipes, then the binfmt entry and its boot file.
# The packages stay installed (other emulation users may need them).
include:
  - .containers.clean
  - .binfmt.clean
