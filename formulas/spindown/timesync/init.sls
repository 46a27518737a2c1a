{#- systemd-timesyncd touches its clock file after every sync: only metadata, so
    inotify misses it, but it wakes the disk.  Keep the clock files on /run with
    tmpfiles.d links (/var/lib/systemd/clock: systemd <= 234; timesync/clock: >= 235).
    Skipped, with a comment, when the systemd-timesync user does not exist. #}
{%- set formula = tpldir.split("/")[0] %}
{%- set mapdata = salt["labsalt.mapdata"](formula) %}
{%- set plan = salt["spindown.plan"](mapdata) %}
{%- include formula ~ "/timesync/states.jinja" %}
