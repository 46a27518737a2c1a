{#- Drop the tmpfiles.d entries; the clock file becomes a regular file again,
    keeping the time stamp timesyncd last wrote. #}
{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{%- set ts = mapdata.timesync %}

spindown-timesync-clean-conf:
  file.absent:
    - name: {{ ts.conf }}

spindown-timesync-clean-clock:
  cmd.run:
    - name: >-
        rm /var/lib/systemd/timesync/clock &&
        cp --preserve=mode,timestamps /run/systemd/timesync/clock /var/lib/systemd/timesync/clock &&
        chown {{ ts.user }}:{{ ts.user }} /var/lib/systemd/timesync/clock
    - onlyif: test -L /var/lib/systemd/timesync/clock -a -f /run/systemd/timesync/clock

spindown-timesync-clean-old-clock-link:
  file.absent:
    - name: /var/lib/systemd/clock
    - onlyif: test -L /var/lib/systemd/clock
