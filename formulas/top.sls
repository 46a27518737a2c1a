# Which formulas a host gets is data: the roles in pillar labsalt:roles, less
# the formulas in pillar labsalt:skip (e.g. a workstation kept out of HTCondor:
# `labsalt: {roles: [workstation], skip: [htcondor]}`).  See pillar.example/labsalt.sls
# and docs/fleet.md.  fritzbox_openwrt is in no role: it is run on purpose.
base:
  'I@labsalt:roles:workstation and not I@labsalt:skip:htcondor':
    - match: compound
    - htcondor
  'I@labsalt:roles:workstation and not I@labsalt:skip:openmpi':
    - match: compound
    - openmpi
  'I@labsalt:roles:nas and not I@labsalt:skip:spindown':
    - match: compound
    - spindown
  'I@labsalt:roles:dns and not I@labsalt:skip:bind_ad':
    - match: compound
    - bind_ad
  'I@labsalt:roles:pxe and not I@labsalt:skip:ipxe':
    - match: compound
    - ipxe
  'I@labsalt:roles:turn and not I@labsalt:skip:coturn':
    - match: compound
    - coturn
  'I@labsalt:roles:bbb and not I@labsalt:skip:bigbluebutton':
    - match: compound
    - bigbluebutton
  'I@labsalt:roles:emu and not I@labsalt:skip:ppc64_emulation':
    - match: compound
    - ppc64_emulation
  'I@labsalt:roles:vbox and not I@labsalt:skip:vbox_egress':
    - match: compound
    - vbox_egress
