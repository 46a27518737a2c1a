{#- Comment out /etc/crontab's hourly run-parts line (its "CRON ... CMD" log line
    wakes the disk every hour); hourly jobs are refused or moved to daily. #}
{%- set formula = tpldir.split("/")[0] %}
{%- set mapdata = salt["labsalt.mapdata"](formula) %}
{%- set plan = salt["spindown.plan"](mapdata) %}
{%- include formula ~ "/cron/states.jinja" %}
