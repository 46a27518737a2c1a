{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}

include:
  - .samba

{%- for installer in mapdata.installers if installer.iso is defined %}

# Extracted once, into a scratch directory renamed into place when 7z succeeded.
ipxe-extract-{{ installer.id }}:
  ipxe.iso_extracted:
    - name: {{ mapdata.tftp.root }}/{{ mapdata.installers_dir }}/{{ installer.directory }}
    - iso: {{ installer.iso }}
    - require:
      - file: ipxe-installers-dir
      - id: ipxe-packages
{%- endfor %}
