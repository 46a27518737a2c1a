# VirtualBox NAT egress filter: the VM's processes in a dedicated cgroup, rules
# that let that cgroup reach only the pillar's destinations, and the wrapper
# that starts a command (VBoxHeadless, vboxmanage startvm) inside the cgroup.
include:
  - .package.install
  - .filter.loaded
  - .wrapper.file
