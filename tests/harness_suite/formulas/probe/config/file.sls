{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}

probe-config-index:
  file.managed:
    - name: {{ mapdata.docroot }}/index.html
    - makedirs: true
    - contents: {{ mapdata.greeting | json }}

probe-config-unit:
  file.managed:
    - name: {{ mapdata.unit_dir }}/labsalt-probe.service
    - makedirs: true
    - source: salt://probe/files/labsalt-probe.service.jinja
    - template: jinja
    - context:
        port: {{ mapdata.port }}
        docroot: {{ mapdata.docroot }}
    # validate before replace: systemd's own checker on the temporary copy
    - check_cmd: systemd-analyze verify
    - tmp_ext: .service
