{#- Optional, beyond the notebook: keep the journal in RAM (Storage=volatile) or
    write it to disk rarely (SyncIntervalSec=), so logging does not wake the disk. #}
{%- set formula = tpldir.split("/")[0] %}
{%- set mapdata = salt["labsalt.mapdata"](formula) %}
{%- set plan = salt["spindown.plan"](mapdata) %}
{#- Salt 3006's salt-ssh returns a failed remote call's output instead of raising. #}
{%- if plan is not mapping or "disks" not in plan %}{{ raise("spindown.plan: " ~ plan) }}{% endif %}
{%- include formula ~ "/journal/states.jinja" %}
