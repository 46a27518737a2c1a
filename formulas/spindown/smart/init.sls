{#- smartd logs "is in STANDBY mode, suspending checks", and that write wakes the
    disk: stop and disable it, check the disks once a day with smartctl instead
    (its output reaches root by cron mail). #}
{%- set formula = tpldir.split("/")[0] %}
{%- set mapdata = salt["labsalt.mapdata"](formula) %}
{%- set plan = salt["spindown.plan"](mapdata) %}
{%- include formula ~ "/smart/states.jinja" %}
