# Example pillar: every host gets every formula's example pillar; the
# labsalt:roles list in labsalt.sls decides which formulas formulas/top.sls applies.
base:
  '*':
    - labsalt
    - htcondor
    - openmpi
    - ppc64_emulation
    - vbox_egress
    - fritzbox_openwrt
    - bind_ad
    - ipxe
    - spindown
    - coturn
    - bigbluebutton
