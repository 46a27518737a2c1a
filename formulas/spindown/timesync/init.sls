{#- systemd-timesyncd touches its clock file after every sync: only metadata, so
    inotify misses it, but it wakes the disk.  Keep the clock files on /run with
    tmpfiles.d links (/var/lib/systemd/clock: systemd <= 234; timesync/clock: >= 235).
    Skipped, with a comment, when the systemd-timesync user does not exist. #}
{%- set formula = tpldir.split("/")[0] %}
{%- set mapdata = salt["labsalt.mapdata"](formula) %}
{%- set plan = salt["spindown.plan"](mapdata) %}
{#- Salt 3006's salt-ssh returns a failed remote call's output instead of raising. #}
{%- if plan is not mapping or "disks" not in plan %}{{ raise("spindown.plan: " ~ plan) }}{% endif %}
{%- include formula ~ "/timesync/states.jinja" %}
