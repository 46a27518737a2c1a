{#- Postfix polls its queue directories: remove it and deliver cron mail with a
    forwarder that runs no daemon (Debian's dma).  dma's own cron job flushes its
    queue every five minutes; that becomes a daily job. #}
{%- set formula = tpldir.split("/")[0] %}
{%- set mapdata = salt["labsalt.mapdata"](formula) %}
{%- set plan = salt["spindown.plan"](mapdata) %}
{#- Salt 3006's salt-ssh returns a failed remote call's output instead of raising. #}
{%- if plan is not mapping or "disks" not in plan %}{{ raise("spindown.plan: " ~ plan) }}{% endif %}
{%- include formula ~ "/mail/states.jinja" %}
