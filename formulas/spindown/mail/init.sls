{#- Postfix polls its queue directories: remove it and deliver cron mail with a
    forwarder that runs no daemon (Debian's dma).  dma's own cron job flushes its
    queue every five minutes; that becomes a daily job. #}
{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{%- set mail = mapdata.mail %}
{%- if mail.enabled %}

spindown-mail-mta-removed:
  spindown.packages_removed:
    - name: mta
    - pkgs: {{ mail.remove | json }}
    - undo_file: {{ mapdata.undo_file }}
{%- if mail.forwarder == "dma" %}

spindown-mail-dma-installed:
  spindown.packages_added:
    - name: forwarder
    - pkgs: [dma]
    - undo_file: {{ mapdata.undo_file }}
    - require:
      - spindown: spindown-mail-mta-removed

spindown-mail-dma-conf:
  file.managed:
    - name: /etc/dma/dma.conf
    - user: root
    - group: mail
    - mode: "0640"
    - contents: |
        # Managed by labsalt (spindown formula); see dma(8).
{%- if mail.smarthost %}
        SMARTHOST {{ mail.smarthost }}
        PORT {{ mail.port }}
{%- if mail.starttls %}
        SECURETRANSFER
        STARTTLS
{%- endif %}
{%- endif %}
        MAILNAME /etc/mailname
    - require:
      - spindown: spindown-mail-dma-installed

spindown-mail-dma-cron-5min-commented:
  file.replace:
    - name: /etc/cron.d/dma
    - pattern: '^([^#\n]*/usr/sbin/dma -q.*)$'
    - repl: '#labsalt-spindown# \1'
    - flags: ["MULTILINE"]
    - ignore_if_missing: true
    - require:
      - spindown: spindown-mail-dma-installed

spindown-mail-dma-daily-flush:
  file.managed:
    - name: {{ mail.flush_script }}
    - mode: "0755"
    - contents: |
        #!/bin/sh
        # Managed by labsalt (spindown formula): dma delivers at once; this retries
        # what is left in its queue once a day instead of every five minutes.
        [ -x /usr/sbin/dma ] && /usr/sbin/dma -q
        exit 0
    - check_cmd: /bin/sh -n
    - require:
      - spindown: spindown-mail-dma-installed
{%- endif %}
{%- endif %}
