{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}

include:
  - .samba

{%- for installer in mapdata.installers if installer.iso is defined %}
{%-   set directory = mapdata.tftp.root ~ "/" ~ mapdata.installers_dir ~ "/" ~ installer.directory %}

# Extracted once, into a scratch directory renamed into place when 7z succeeded.
ipxe-extract-{{ installer.id }}:
  cmd.run:
    - name: >-
        rm -rf {{ directory }}.partial &&
        7z x -y -bd -o{{ directory }}.partial {{ installer.iso }} >/dev/null &&
        chmod -R a+rX {{ directory }}.partial &&
        mv {{ directory }}.partial {{ directory }}
    - creates: {{ directory }}
    - require:
      - file: ipxe-installers-dir
{%- endfor %}
