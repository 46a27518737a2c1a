{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{%- set wimboot = mapdata.wimboot %}
{%- if not wimboot.url or not wimboot.sha256 %}
{{- raise("ipxe:wimboot: url and sha256 must both be set (wimboot is not packaged by Debian)") }}
{%- endif %}

include:
  - .tftp

# Downloaded to Salt's cache and checked against the pinned sha256 before it
# replaces the served file; a mismatch fails here and leaves the old file.
ipxe-wimboot:
  file.managed:
    - name: {{ mapdata.tftp.root }}/{{ wimboot.file }}
    - source: {{ wimboot.url }}
    - source_hash: sha256={{ wimboot.sha256 }}
    - mode: "0644"
    - require:
      - file: ipxe-tftp-root
