include:
  - probe.config.file

probe-service-running:
  service.running:
    - name: labsalt-probe
    - enable: true
    - watch:
      - file: probe-config-unit
