{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{#- Checks the installers (files exist, ids and keys unique) or fails the render;
    reads nothing a package of this run installs (an ISO that needs 7z is checked
    when the state runs). #}
{%- do salt["ipxe.validate"](mapdata) %}

include:
  - .tftp
  - .wimboot
  - .iso

# menu.ipxe, winpeshl.ini and each install.cmd, generated when the state runs.
ipxe-generated-{{ mapdata.menu.file }}:
  ipxe.generated:
    - name: {{ mapdata.tftp.root }}/{{ mapdata.menu.file }}
    - params: {{ mapdata | json }}
    - require:
      - file: ipxe-wimboot
      - ipxe: ipxe-binary-{{ mapdata.ipxe_binaries.bios }}
      - ipxe: ipxe-binary-{{ mapdata.ipxe_binaries.uefi }}
{%- for installer in mapdata.installers if installer.iso is defined %}
      - ipxe: ipxe-extract-{{ installer.id }}
{%- endfor %}
