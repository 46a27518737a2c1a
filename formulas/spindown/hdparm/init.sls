{#- hdparm installed, /etc/hdparm.conf stanza per disk, and a hdparm-<disk>.service
    oneshot that applies the standby timeout after boot. #}
{%- set formula = tpldir.split("/")[0] %}
{%- set mapdata = salt["labsalt.mapdata"](formula) %}
{%- set plan = salt["spindown.plan"](mapdata) %}
{%- include formula ~ "/hdparm/states.jinja" %}
