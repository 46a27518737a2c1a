# Roles come from pillar (labsalt:roles), so which host gets what is data:
# see pillar.example/labsalt.sls and the fleet layout in README.md.
base:
  'I@labsalt:roles:workstation':
    - match: compound
    - htcondor
    - openmpi
  'I@labsalt:roles:emu':
    - match: compound
    - ppc64_emulation
  'I@labsalt:roles:vbox':
    - match: compound
    - vbox_egress
  'I@labsalt:roles:dns':
    - match: compound
    - bind_ad
  'I@labsalt:roles:pxe':
    - match: compound
    - ipxe
  'I@labsalt:roles:nas':
    - match: compound
    - spindown
  'I@labsalt:roles:turn':
    - match: compound
    - coturn
  'I@labsalt:roles:bbb':
    - match: compound
    - bigbluebutton
