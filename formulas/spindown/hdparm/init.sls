{#- hdparm installed, /etc/hdparm.conf stanza per disk, and a hdparm-<disk>.service
    oneshot that applies the standby timeout after boot. #}
{%- set formula = tpldir.split("/")[0] %}
{%- set mapdata = salt["labsalt.mapdata"](formula) %}
{%- set plan = salt["spindown.plan"](mapdata) %}
{%- from formula ~ "/files/verify-unit.jinja" import verify_unit %}
{%- set marker = "# Managed by labsalt (spindown formula)" %}
{%- if mapdata.hdparm.enabled %}

spindown-hdparm-installed:
  pkg.installed:
    - name: hdparm

spindown-hdparm-conf:
  file.blockreplace:
    - name: {{ mapdata.hdparm.conf }}
    - marker_start: "# BEGIN labsalt spindown: edit the spindown pillar, not this block"
    - marker_end: "# END labsalt spindown"
    - content: |
{%- for disk in plan.disks %}
        # {{ disk.kernel }}: spin down after {{ disk.meaning }}
        {{ disk.device }} {
            {{ "force_spindown_time" if disk.force else "spindown_time" }} = {{ disk.spindown_time }}
        }
{%- endfor %}
    - append_if_not_found: true
    # Debian's hdparm package ships the file; in test mode before hdparm is installed, skip.
    - onlyif: test -f {{ mapdata.hdparm.conf }}
    - require:
      - pkg: spindown-hdparm-installed

{%- for disk in plan.disks %}

spindown-hdparm-unit-{{ disk.unit }}:
  file.managed:
    - name: /etc/systemd/system/{{ disk.unit }}
    - source: salt://{{ formula }}/files/hdparm.service.jinja
    - template: jinja
    - context:
        disk: {{ disk | json }}
        marker: "{{ marker }}"
    - mode: "0644"
    - check_cmd: {{ verify_unit(disk.unit) | yaml_encode }}
    - require:
      - pkg: spindown-hdparm-installed

spindown-hdparm-enabled-{{ disk.unit }}:
  service.enabled:
    - name: {{ disk.unit }}
    - require:
      - file: spindown-hdparm-unit-{{ disk.unit }}

spindown-hdparm-applied-{{ disk.unit }}:
  spindown.applied:
    - name: {{ disk.unit }}
    - device: {{ disk.device }}
    - require:
      - service: spindown-hdparm-enabled-{{ disk.unit }}
    - watch:
      - file: spindown-hdparm-unit-{{ disk.unit }}
      - file: spindown-hdparm-conf
{%- endfor %}

{%- for unit in plan.stale_units %}

spindown-hdparm-stale-{{ unit }}:
  service.dead:
    - name: {{ unit }}
    - enable: false
  file.absent:
    - name: /etc/systemd/system/{{ unit }}
    - require:
      - service: spindown-hdparm-stale-{{ unit }}
{%- endfor %}
{%- endif %}
