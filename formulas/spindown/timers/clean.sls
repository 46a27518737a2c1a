{#- Re-enable the timers the formula disabled (only those that were enabled) and
    drop the systemd-tmpfiles-clean.timer override. #}
{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}

spindown-timers-clean-restored:
  spindown.units_restored:
    - name: timers
    - undo_file: {{ mapdata.undo_file }}

spindown-timers-clean-tmpfiles-dropin:
  file.absent:
    - name: /etc/systemd/system/systemd-tmpfiles-clean.timer.d/spindown.conf

spindown-timers-clean-tmpfiles-rearmed:
  cmd.run:
    - name: >-
        rmdir --ignore-fail-on-non-empty /etc/systemd/system/systemd-tmpfiles-clean.timer.d;
        systemctl daemon-reload && systemctl restart systemd-tmpfiles-clean.timer
    - onchanges:
      - file: spindown-timers-clean-tmpfiles-dropin
