# Roles come from pillar (labsalt:roles), so which host gets what is data:
# see pillar.example/labsalt.sls and the fleet layout in README.md.
base:
  'I@labsalt:roles:workstation':
    - match: compound
  'I@labsalt:roles:turn':
    - match: compound
    - coturn
  'I@labsalt:roles:bbb':
    - match: compound
    - bigbluebutton
