{#- Frequent systemd timers disabled and stopped; systemd-tmpfiles-clean.timer
    runs every two weeks instead of daily (a drop-in, as `systemctl edit` makes). #}
{%- set formula = tpldir.split("/")[0] %}
{%- set mapdata = salt["labsalt.mapdata"](formula) %}
{%- set plan = salt["spindown.plan"](mapdata) %}
{%- from formula ~ "/files/verify-unit.jinja" import verify_unit %}
{%- set timers = mapdata.timers %}
{%- if timers.enabled %}

spindown-timers-disabled:
  spindown.units_disabled:
    - name: timers
    - units: {{ plan.timers | json }}
    - undo_file: {{ mapdata.undo_file }}
{%- endif %}
{%- if timers.enabled and timers.tmpfiles_clean_interval %}

spindown-tmpfiles-clean-timer-dropin:
  file.managed:
    - name: /etc/systemd/system/systemd-tmpfiles-clean.timer.d/spindown.conf
    - makedirs: true
    - mode: "0644"
    - contents: |
        # Managed by labsalt (spindown formula): clean temporary directories every
        # {{ timers.tmpfiles_clean_interval }} instead of daily, so the disk can sleep.
        # An empty assignment resets the list of OnUnitActiveSec= timers (systemd.timer(5)).
        [Timer]
        OnUnitActiveSec=
        OnUnitActiveSec={{ timers.tmpfiles_clean_interval }}
    - check_cmd: {{ verify_unit("spindown.conf", dropin_of="systemd-tmpfiles-clean.timer") | yaml_encode }}

spindown-tmpfiles-clean-timer-rearmed:
  service.running:
    - name: systemd-tmpfiles-clean.timer
    - watch:
      - file: spindown-tmpfiles-clean-timer-dropin
{%- else %}

spindown-tmpfiles-clean-timer-dropin:
  file.absent:
    - name: /etc/systemd/system/systemd-tmpfiles-clean.timer.d/spindown.conf
{%- endif %}
