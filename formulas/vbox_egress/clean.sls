# Undo init.sls in reverse order: the wrapper, the filter (its own nftables table
# or iptables chain and the cgroup), then the packages labsalt installed (see
# state_dir); packages the host had before stay.
include:
  - .wrapper.clean
  - .filter.clean
  - .package.clean
