probe:
  greeting: hello from the pillar
