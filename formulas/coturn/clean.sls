{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
# Undo exactly what coturn added: its firewall table, unit and drop-in, the
# checker, turnserver.conf back to the original, the packages labsalt installed
# (its record), and the directories it made if they are empty.
include:
  - coturn.firewall.clean
  - coturn.service.clean
  - coturn.config.clean
  - coturn.package.clean

coturn-directories-pruned:
  coturn.dirs_pruned:
    - name: coturn
    - dirs:
      - /etc/systemd/system/{{ mapdata.service }}.service.d
      - {{ mapdata.firewall.rules_file.rsplit("/", 1)[0] }}
      - /etc/labsalt
      - {{ mapdata.checker.rsplit("/", 1)[0] }}
      - {{ mapdata.state_dir }}
      - /var/lib/labsalt
    - require:
      - id: coturn-package-removed
      - file: coturn-service-drop-in-removed
      - coturn: coturn-service-site-config
      - file: coturn-config-checker-removed
