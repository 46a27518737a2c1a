{#- smartd logs "is in STANDBY mode, suspending checks", and that write wakes the
    disk: stop and disable it, check the disks once a day with smartctl instead
    (its output reaches root by cron mail). #}
{%- set formula = tpldir.split("/")[0] %}
{%- set mapdata = salt["labsalt.mapdata"](formula) %}
{%- set plan = salt["spindown.plan"](mapdata) %}
{#- Salt 3006's salt-ssh returns a failed remote call's output instead of raising. #}
{%- if plan is not mapping or "disks" not in plan %}{{ raise("spindown.plan: " ~ plan) }}{% endif %}
{%- include formula ~ "/smart/states.jinja" %}
