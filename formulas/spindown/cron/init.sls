{#- Comment out /etc/crontab's hourly run-parts line (its "CRON ... CMD" log line
    wakes the disk every hour); hourly jobs are refused or moved to daily. #}
{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{%- set plan = salt["spindown.plan"](mapdata) %}
{%- set cron = mapdata.cron %}
{%- if cron.enabled %}
{%- if plan.hourly_jobs %}

spindown-cron-hourly-jobs-moved:
  spindown.jobs_moved:
    - name: hourly_jobs
    - source: {{ cron.hourly_dir }}
    - target: {{ cron.daily_dir }}
    - undo_file: {{ mapdata.undo_file }}
    - require_in:
      - file: spindown-cron-hourly-commented
{%- endif %}

spindown-cron-hourly-commented:
  file.replace:
    - name: {{ cron.crontab }}
    - pattern: '^([^#\n]*run-parts[^\n]*{{ cron.hourly_dir | regex_escape }}\b.*)$'
    - repl: '#labsalt-spindown# \1'
    - flags: ["MULTILINE"]
    - ignore_if_missing: true
{%- endif %}
