{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{%- set tftp = mapdata.tftp %}
{%- set settings = {"TFTP_DIRECTORY": tftp.root} %}
{%- if tftp.address %}{% do settings.update({"TFTP_ADDRESS": tftp.address}) %}{% endif %}
{%- if tftp.options %}{% do settings.update({"TFTP_OPTIONS": tftp.options}) %}{% endif %}

include:
  - ipxe.package.install

ipxe-tftp-root:
  file.directory:
    - name: {{ tftp.root }}
    - mode: "0755"
    - makedirs: True

# Only the settings the formula needs, in a marked block at the end of the file
# (a shell sources it: later assignments win); the site's other lines stay.
ipxe-tftpd-defaults:
  ipxe.block:
    - name: {{ tftp.defaults_file }}
    - body: {{ salt["ipxe.shell_assignments"](settings) | json }}
    - check: [/bin/sh, -n]
    - require:
      - id: ipxe-packages

{%- for binary in [mapdata.ipxe_binaries.bios, mapdata.ipxe_binaries.uefi] %}

ipxe-binary-{{ binary }}:
  ipxe.copied:
    - name: {{ tftp.root }}/{{ binary }}
    - source: {{ mapdata.ipxe_binaries.source_dir }}/{{ binary }}
    - require:
      - file: ipxe-tftp-root
      - id: ipxe-packages
{%- endfor %}
