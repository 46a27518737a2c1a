{#- Spin-down of a NAS's disks: each step of the lab notebook's
    "Root disk spindown on Debian 9" (see README.md); clean.sls undoes them.
    The parameters are merged and checked against the host once (spindown.plan
    is one SSH round trip under salt-ssh), then every step's states are included;
    each step can also be applied alone: spindown.hdparm, spindown.cron, ... #}
{%- set formula = tpldir.split("/")[0] %}
{%- set mapdata = salt["labsalt.mapdata"](formula) %}
{%- set plan = salt["spindown.plan"](mapdata) %}
{#- Salt 3006's salt-ssh returns a failed remote call's output instead of raising. #}
{%- if plan is not mapping or "disks" not in plan %}{{ raise("spindown.plan: " ~ plan) }}{% endif %}
{%- for step in ["hdparm", "cron", "timers", "smart", "mail", "timesync", "journal"] %}
{%- include formula ~ "/" ~ step ~ "/states.jinja" %}
{%- endfor %}
