{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}

spindown-journal-clean-dropin:
  file.absent:
    - name: {{ mapdata.journal.dropin }}

spindown-journal-clean-restarted:
  cmd.run:
    - name: systemctl restart systemd-journald
    - onlyif: test -d /run/systemd/system
    - onchanges:
      - file: spindown-journal-clean-dropin
