# Undo every step of spindown, in reverse order.
include:
  - spindown.journal.clean
  - spindown.timesync.clean
  - spindown.mail.clean
  - spindown.smart.clean
  - spindown.timers.clean
  - spindown.cron.clean
  - spindown.hdparm.clean
