{#- Optional, beyond the notebook: keep the journal in RAM (Storage=volatile) or
    write it to disk rarely (SyncIntervalSec=), so logging does not wake the disk. #}
{%- set formula = tpldir.split("/")[0] %}
{%- set mapdata = salt["labsalt.mapdata"](formula) %}
{%- set plan = salt["spindown.plan"](mapdata) %}
{%- include formula ~ "/journal/states.jinja" %}
