# Undo init.sls in reverse order: recipes, the binfmt entry labsalt registered
# (and its boot file), then the packages labsalt installed (see state_dir).
include:
  - .containers.clean
  - .binfmt.clean
  - .package.clean
