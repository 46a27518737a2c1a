{#- Stop and remove the hdparm units this formula wrote and its hdparm.conf block.
    Works from what is on the host, so it also cleans up after a disk is gone. #}
{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{%- set units = salt["spindown.managed_units"]() %}

{%- for unit in units %}

spindown-hdparm-clean-{{ unit }}:
  service.dead:
    - name: {{ unit }}
    - enable: false
  file.absent:
    - name: /etc/systemd/system/{{ unit }}
    - require:
      - service: spindown-hdparm-clean-{{ unit }}
    - onchanges_in:
      - spindown: spindown-hdparm-clean-daemon-reload
{%- endfor %}
{%- if units %}

spindown-hdparm-clean-daemon-reload:
  spindown.daemon_reloaded: []
{%- endif %}

spindown-hdparm-clean-conf:
  file.replace:
    - name: {{ mapdata.hdparm.conf }}
    # No <file>.bak copy next to the site's file.
    - backup: false
    - pattern: '^# BEGIN labsalt spindown[^\n]*\n(?:.*\n)*?# END labsalt spindown\n'
    - repl: ""
    - flags: ["MULTILINE"]
    - ignore_if_missing: true

spindown-hdparm-clean-packages:
  spindown.packages_dropped:
    - name: hdparm_packages
    - undo_file: {{ mapdata.undo_file }}
    - require:
      - file: spindown-hdparm-clean-conf
