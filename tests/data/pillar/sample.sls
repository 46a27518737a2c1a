sample:
  lookup:
    greeting: from-lookup
  slots:
    policy: l3
