{#- systemd-timesyncd touches its clock file after every sync: only metadata, so
    inotify misses it, but it wakes the disk.  Keep the clock files on /run with
    tmpfiles.d links (/var/lib/systemd/clock: systemd <= 234; timesync/clock: >= 235).
    Skipped, with a comment, when the systemd-timesync user does not exist. #}
{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{%- set ts = mapdata.timesync %}
{%- if ts.enabled %}

spindown-timesync-clock-recorded:
  spindown.files_recorded:
    - name: clock_files
    - paths: [/var/lib/systemd/timesync/clock, /var/lib/systemd/clock]
    - undo_file: {{ mapdata.undo_file }}
    - onlyif: getent passwd {{ ts.user }}

spindown-timesync-clock-in-run:
  file.managed:
    - name: {{ ts.conf }}
    - mode: "0644"
    - contents: |
        # Managed by labsalt (spindown formula): timesyncd's clock files live on /run.
        d /run/systemd/timesync 0755 {{ ts.user }} {{ ts.user }} - -
        f /run/systemd/clock 0644 {{ ts.user }} {{ ts.user }} - -
        f /run/systemd/timesync/clock 0644 {{ ts.user }} {{ ts.user }} - -
        L+ /var/lib/systemd/timesync/clock - - - - /run/systemd/timesync/clock
        L+ /var/lib/systemd/clock - - - - /run/systemd/clock
    - onlyif: getent passwd {{ ts.user }}
    - require:
      - spindown: spindown-timesync-clock-recorded

spindown-timesync-links-created:
  cmd.run:
    - name: systemd-tmpfiles --create {{ ts.conf }}
    - onchanges:
      - file: spindown-timesync-clock-in-run
{%- endif %}
