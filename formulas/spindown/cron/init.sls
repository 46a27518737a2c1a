{#- Comment out /etc/crontab's hourly run-parts line (its "CRON ... CMD" log line
    wakes the disk every hour); hourly jobs are refused or moved to daily. #}
{%- set formula = tpldir.split("/")[0] %}
{%- set mapdata = salt["labsalt.mapdata"](formula) %}
{%- set plan = salt["spindown.plan"](mapdata) %}
{#- Salt 3006's salt-ssh returns a failed remote call's output instead of raising. #}
{%- if plan is not mapping or "disks" not in plan %}{{ raise("spindown.plan: " ~ plan) }}{% endif %}
{%- include formula ~ "/cron/states.jinja" %}
