{#- Optional, beyond the notebook: keep the journal in RAM (Storage=volatile) or
    write it to disk rarely (SyncIntervalSec=), so logging does not wake the disk. #}
{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{%- set journal = mapdata.journal %}
{%- if journal.storage or journal.sync_interval %}

spindown-journal-dropin:
  file.managed:
    - name: {{ journal.dropin }}
    - makedirs: true
    - mode: "0644"
    - contents: |
        # Managed by labsalt (spindown formula); see journald.conf(5).
        [Journal]
{%- if journal.storage %}
        Storage={{ journal.storage }}
{%- endif %}
{%- if journal.sync_interval %}
        SyncIntervalSec={{ journal.sync_interval }}
{%- endif %}
{%- else %}

spindown-journal-dropin:
  file.absent:
    - name: {{ journal.dropin }}
{%- endif %}

spindown-journal-restarted:
  cmd.run:
    - name: systemctl restart systemd-journald
    - onlyif: test -d /run/systemd/system
    - onchanges:
      - file: spindown-journal-dropin
