{#- Forwarder and its daily flush removed (dma purged if the formula installed it),
    the removed MTA reinstalled. #}
{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}

spindown-mail-clean-daily-flush:
  file.absent:
    - name: {{ mapdata.mail.flush_script }}

spindown-mail-clean-dma-cron:
  file.replace:
    - name: /etc/cron.d/dma
    # No <file>.bak copy next to the site's file.
    - backup: false
    - pattern: '^#labsalt-spindown# '
    - repl: ""
    - flags: ["MULTILINE"]
    - ignore_if_missing: true

spindown-mail-clean-forwarder:
  spindown.packages_dropped:
    - name: forwarder
    - undo_file: {{ mapdata.undo_file }}
    - require:
      - file: spindown-mail-clean-dma-cron

spindown-mail-clean-mta:
  spindown.packages_restored:
    - name: mta
    - undo_file: {{ mapdata.undo_file }}
    - require:
      - spindown: spindown-mail-clean-forwarder
