# The TURN server for BigBlueButton; not a workstation.
labsalt:
  roles:
    - turn
