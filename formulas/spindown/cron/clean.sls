{#- Uncomment the hourly run-parts line and move moved jobs back. #}
{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{%- set cron = mapdata.cron %}

spindown-cron-clean-hourly-uncommented:
  file.replace:
    - name: {{ cron.crontab }}
    # No <file>.bak copy next to the site's file.
    - backup: false
    - pattern: '^#labsalt-spindown# '
    - repl: ""
    - flags: ["MULTILINE"]
    - ignore_if_missing: true

spindown-cron-clean-hourly-jobs:
  spindown.jobs_restored:
    - name: hourly_jobs
    - source: {{ cron.hourly_dir }}
    - target: {{ cron.daily_dir }}
    - undo_file: {{ mapdata.undo_file }}

spindown-cron-clean-packages:
  spindown.packages_dropped:
    - name: cron_packages
    - undo_file: {{ mapdata.undo_file }}
    - require:
      - file: spindown-cron-clean-hourly-uncommented
      - spindown: spindown-cron-clean-hourly-jobs
