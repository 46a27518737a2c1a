{#- Drop the tmpfiles.d entries; a clock file that was there becomes a regular
    file again, keeping the time stamp timesyncd last wrote; links where nothing
    was are removed. #}
{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{%- set ts = mapdata.timesync %}

spindown-timesync-clean-conf:
  file.absent:
    - name: {{ ts.conf }}

spindown-timesync-clean-clock:
  spindown.files_restored:
    - name: clock_files
    - user: {{ ts.user }}
    - undo_file: {{ mapdata.undo_file }}

spindown-timesync-clean-packages:
  spindown.packages_dropped:
    - name: timesync_packages
    - undo_file: {{ mapdata.undo_file }}
    - require:
      - spindown: spindown-timesync-clean-clock
