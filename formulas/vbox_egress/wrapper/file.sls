{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{%- set context = salt["vbox_egress.wrapper_context"](mapdata.cgroup, mapdata.mode, mapdata.table) %}

vbox-egress-wrapper:
  file.managed:
    - name: {{ mapdata.wrapper | json }}
    - source: salt://{{ tpldir.split("/")[0] }}/files/vbox-egress-run.sh.jinja
    - template: jinja
    - mode: '0755'
    - makedirs: true
    - check_cmd: /bin/sh -n
    - context: {{ context | json }}
