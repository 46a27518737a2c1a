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

coturn-service:
  service.running:
    - name: {{ mapdata.service }}
    - enable: true
    - watch:
      - file: coturn-config
      - file: coturn-service-bind-low-ports
