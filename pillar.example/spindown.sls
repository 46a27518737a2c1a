# spindown: a NAS whose disk sleeps between its daily backups
# (formulas/spindown/README.md; the lab notebook's "Root disk spindown on Debian 9").
spindown:
  # Disks by stable name (ls -l /dev/disk/by-id); "sda" is accepted and resolved.
  # Uncomment on the NAS (this example renders on hosts without that disk):
  # disks:
  #   - device: /dev/disk/by-id/ata-ST3000DM001-1CH166_Z1F2ABCD
  #     spindown_time: 120   # hdparm -S: 120 x 5 s = 10 minutes
  disks: []
  spindown_time: 120
  cron:
    # /etc/cron.hourly jobs: refuse (error while it has any) or move_to_daily.
    hourly_jobs: refuse
  timers:
    # Also disable these (each must exist on the host).
    disable: []
    tmpfiles_clean_interval: 2w
  smart:
    enabled: true
  mail:
    remove: [postfix]
    forwarder: dma
    # Relay cron mail through this host (null: deliver locally to /var/mail).
    smarthost: null
  timesync:
    enabled: true
  journal:
    # volatile keeps the journal in RAM only; null leaves journald alone.
    storage: null
    sync_interval: null
