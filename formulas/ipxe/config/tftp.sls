{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{%- set tftp = mapdata.tftp %}

ipxe-tftp-root:
  file.directory:
    - name: {{ tftp.root }}
    - mode: "0755"
    - makedirs: True

ipxe-tftpd-defaults:
  file.managed:
    - name: {{ tftp.defaults_file }}
    - source: salt://ipxe/files/tftpd-hpa.jinja
    - template: jinja
    - context:
        tftp: {{ tftp | json }}
    - mode: "0644"
    - makedirs: True
    - check_cmd: /bin/sh -n

{%- for binary in [mapdata.ipxe_binaries.bios, mapdata.ipxe_binaries.uefi] %}

ipxe-binary-{{ binary }}:
  file.managed:
    - name: {{ tftp.root }}/{{ binary }}
    - source: {{ mapdata.ipxe_binaries.source_dir }}/{{ binary }}
    - mode: "0644"
    - require:
      - file: ipxe-tftp-root
{%- endfor %}
