{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}

ipxe-installers-dir:
  file.directory:
    - name: {{ mapdata.tftp.root }}/{{ mapdata.installers_dir }}
    - mode: "0755"
    - makedirs: True

# testparm checks the new text before it replaces the live smb.conf.
ipxe-smb-conf:
  file.managed:
    - name: {{ mapdata.samba.conf }}
    - source: salt://ipxe/files/smb.conf.jinja
    - template: jinja
    - context:
        mapdata: {{ mapdata | json }}
    - mode: "0644"
    - makedirs: True
    - check_cmd: {{ mapdata.samba.testparm }} --suppress-prompt
{%- if not mapdata.share.guest %}

# The share's only reader: no shell, no home; the Samba password from pillar.
ipxe-share-user:
  user.present:
    - name: {{ mapdata.share.user }}
    - system: True
    - shell: /usr/sbin/nologin
    - home: /nonexistent
    - createhome: False

ipxe-share-samba-user:
  ipxe.samba_user:
    - name: {{ mapdata.share.user }}
    - password: {{ mapdata.share.password | json }}
    - conf: {{ mapdata.samba.conf }}
    - require:
      - user: ipxe-share-user
      - file: ipxe-smb-conf
{%- endif %}
