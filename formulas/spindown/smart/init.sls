{#- smartd logs "is in STANDBY mode, suspending checks", and that write wakes the
    disk: stop and disable it, check the disks once a day with smartctl instead
    (its output reaches root by cron mail). #}
{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{%- set plan = salt["spindown.plan"](mapdata) %}
{%- set smart = mapdata.smart %}
{%- if smart.enabled %}

spindown-smart-installed:
  pkg.installed:
    - name: smartmontools

spindown-smartd-disabled:
  spindown.units_disabled:
    - name: smartd
    - units: [{{ smart.unit }}]
    - undo_file: {{ mapdata.undo_file }}
    - require:
      - pkg: spindown-smart-installed

spindown-smart-daily-check:
  file.managed:
    - name: {{ smart.check_script }}
    - mode: "0755"
    - contents: |
        #!/bin/sh
        # Managed by labsalt (spindown formula): smartd is off so that it does not
        # wake the disks; this checks their SMART attributes once a day instead.
        # Output (failing attributes, or smartctl's error) goes to root by cron mail.
        status=0
{%- for disk in plan.disks %}
        /usr/sbin/smartctl -q errorsonly -A {{ disk.device }} || {
            rc=$?; status=1
            echo "smartctl -A {{ disk.device }} exited $rc (bits: see EXIT STATUS in smartctl(8))"
        }
{%- endfor %}
        exit $status
    - check_cmd: /bin/sh -n
    - require:
      - pkg: spindown-smart-installed
{%- endif %}
