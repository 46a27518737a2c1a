{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{#- Validates the installers (files exist, ids and keys unique) or fails the render. #}
{%- set generated = salt["ipxe.plan"](mapdata) %}

include:
  - .tftp
  - .wimboot
  - .iso

{%- for relpath, text in generated | dictsort %}

ipxe-generated-{{ relpath }}:
  file.managed:
    - name: {{ mapdata.tftp.root }}/{{ relpath }}
    # A template keeps the CRLF line ends of the Windows files (contents would not).
    - source: salt://ipxe/files/generated.jinja
    - template: jinja
    - context:
        text: {{ text | json }}
    - mode: "0644"
    - makedirs: True
    # install.cmd holds the share password.
    - show_changes: {{ not relpath.endswith(".cmd") }}
    - require:
      - file: ipxe-wimboot
      - ipxe: ipxe-binary-{{ mapdata.ipxe_binaries.bios }}
      - ipxe: ipxe-binary-{{ mapdata.ipxe_binaries.uefi }}
{%-   for installer in mapdata.installers if installer.iso is defined %}
      - ipxe: ipxe-extract-{{ installer.id }}
{%-   endfor %}
{%- endfor %}
