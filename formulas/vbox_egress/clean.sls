# Undo init.sls in reverse order; the packages stay installed.
include:
  - .wrapper.clean
  - .filter.clean
