{#- hdparm installed, /etc/hdparm.conf stanza per disk, and a hdparm-<disk>.service
    oneshot that applies the standby timeout after boot. #}
{%- set formula = tpldir.split("/")[0] %}
{%- set mapdata = salt["labsalt.mapdata"](formula) %}
{%- set plan = salt["spindown.plan"](mapdata) %}
{#- Salt 3006's salt-ssh returns a failed remote call's output instead of raising. #}
{%- if plan is not mapping or "disks" not in plan %}{{ raise("spindown.plan: " ~ plan) }}{% endif %}
{%- include formula ~ "/hdparm/states.jinja" %}
