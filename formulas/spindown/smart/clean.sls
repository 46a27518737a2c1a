{#- smartd back as it was (enabled/running only if it was), daily check removed. #}
{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}

spindown-smart-clean-daily-check:
  file.absent:
    - name: {{ mapdata.smart.check_script }}

spindown-smart-clean-smartd:
  spindown.units_restored:
    - name: smartd
    - undo_file: {{ mapdata.undo_file }}

spindown-smart-clean-packages:
  spindown.packages_dropped:
    - name: smart_packages
    - undo_file: {{ mapdata.undo_file }}
    - require:
      - spindown: spindown-smart-clean-smartd
