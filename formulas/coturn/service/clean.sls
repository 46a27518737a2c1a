{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}

include:
  - coturn.package.clean

# The coturn service itself is Debian's: a coturn that labsalt installed goes
# with its package (coturn.package.clean purges it, which stops and disables
# it); a coturn the site had keeps running, with its own config again.
coturn-service-drop-in-removed:
  file.absent:
    - name: /etc/systemd/system/{{ mapdata.service }}.service.d/labsalt.conf

# Make systemd forget the removed drop-in before the site's coturn restarts.
coturn-service-drop-in-daemon-reload:
  module.run:
    - service.systemctl_reload: []
    - onchanges:
      - file: coturn-service-drop-in-removed
    - require_in:
      - coturn: coturn-service-site-config

coturn-service-site-config:
  coturn.restarted_if_running:
    - name: {{ mapdata.service }}
    - onchanges:
      - coturn: coturn-config-original-restored
      - file: coturn-service-drop-in-removed
    - require:
      - id: coturn-package-removed
