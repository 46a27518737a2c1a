{#- Frequent systemd timers disabled and stopped; systemd-tmpfiles-clean.timer
    runs every two weeks instead of daily (a drop-in, as `systemctl edit` makes). #}
{%- set formula = tpldir.split("/")[0] %}
{%- set mapdata = salt["labsalt.mapdata"](formula) %}
{%- set plan = salt["spindown.plan"](mapdata) %}
{%- include formula ~ "/timers/states.jinja" %}
