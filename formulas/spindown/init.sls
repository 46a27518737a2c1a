# Spin-down of a NAS's disks: each step of the lab notebook's
# "Root disk spindown on Debian 9" (see README.md); clean.sls undoes them.
include:
  - spindown.hdparm
  - spindown.cron
  - spindown.timers
  - spindown.smart
  - spindown.mail
  - spindown.timesync
  - spindown.journal
