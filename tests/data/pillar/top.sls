base:
  '*':
    - sample
