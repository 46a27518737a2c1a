base:
  '*':
    - probe
