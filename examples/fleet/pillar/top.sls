# Fleet pillar: which host has which role, and the few hosts that differ, as data.
# Later matches override earlier ones key by key (lists are replaced).
base:
  '*':
    - roles.workstation
  'turn*':
    - roles.turn
  'ws02':
    - hosts.ws02
  'ws03':
    - hosts.ws03
  'ws04':
    - hosts.ws04
