# vbox_egress: what a VirtualBox VM behind NAT may reach (everything else is rejected).
# Start the VM with:  vbox-egress-run runuser -u alice -- VBoxHeadless --startvm myvm
vbox_egress:
  cgroup: labsalt-vbox
  mode: auto                  # systemd, cgroup2, or cgroup1 (net_cls + iptables)
  allow:
    - address: 192.0.2.10     # the licence server
      ports: [27000, 27001]
    - address: 198.51.100.0/24
      ports: [443]
    - address: 192.0.2.53
      protocol: udp
      ports: [53]
