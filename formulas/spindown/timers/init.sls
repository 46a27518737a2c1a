{#- Frequent systemd timers disabled and stopped; systemd-tmpfiles-clean.timer
    runs every two weeks instead of daily (a drop-in, as `systemctl edit` makes). #}
{%- set formula = tpldir.split("/")[0] %}
{%- set mapdata = salt["labsalt.mapdata"](formula) %}
{%- set plan = salt["spindown.plan"](mapdata) %}
{#- Salt 3006's salt-ssh returns a failed remote call's output instead of raising. #}
{%- if plan is not mapping or "disks" not in plan %}{{ raise("spindown.plan: " ~ plan) }}{% endif %}
{%- include formula ~ "/timers/states.jinja" %}
