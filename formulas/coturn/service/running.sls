{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}

include:
  - coturn.config.file

# Debian's unit runs turnserver as user turnserver: let it bind the TLS port 443.
coturn-service-bind-low-ports:
  file.managed:
    - name: /etc/systemd/system/{{ mapdata.service }}.service.d/labsalt.conf
    - makedirs: true
    - contents: |
        # Managed by Salt (labsalt coturn formula)
        [Service]
        AmbientCapabilities=CAP_NET_BIND_SERVICE
        LimitNOFILE=1048576
    - require:
      - id: coturn-package

# systemd only reads the drop-in on daemon-reload.  Salt's service functions
# reload only when `systemctl status` warns that the unit changed on disk, which
# it does not for a drop-in directory created after the unit was loaded: the
# first start then ran without the capability ("bind: Permission denied" on
# 443).  So reload explicitly whenever the drop-in changes, before the service
# state (same on Salt 3006 and 3008: new-style module.run is the default).
coturn-service-daemon-reload:
  module.run:
    - service.systemctl_reload: []
    - onchanges:
      - file: coturn-service-bind-low-ports
    - require_in:
      - service: coturn-service

coturn-service:
  service.running:
    - name: {{ mapdata.service }}
    - enable: true
    - watch:
      - file: coturn-config
      - file: coturn-service-bind-low-ports
