{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{%- set samba = mapdata.samba %}
{%- set share_conf = samba.share_conf or (samba.conf.rsplit("/", 1)[0] ~ "/labsalt-ipxe.conf") %}

include:
  - ipxe.package.install

ipxe-installers-dir:
  file.directory:
    - name: {{ mapdata.tftp.root }}/{{ mapdata.installers_dir }}
    - mode: "0755"
    - makedirs: True

# The share lives in a file of its own, checked by testparm before it replaces
# the live one; smb.conf only gets a marked include line (the site's shares and
# settings stay as they are).
ipxe-smb-conf:
  file.managed:
    - name: {{ share_conf }}
    - source: salt://ipxe/files/smb.conf.jinja
    - template: jinja
    - context:
        mapdata: {{ mapdata | json }}
    - mode: "0644"
    - makedirs: True
    - check_cmd: {{ samba.testparm }} --suppress-prompt
    - require:
      - id: ipxe-packages

ipxe-smb-conf-include:
  ipxe.block:
    - name: {{ samba.conf }}
    - body: "include = {{ share_conf }}"
    # At the end of [global]: smbd reads only global parameters when it starts.
    - smb_global: True
    - check: [{{ samba.testparm | json }}, --suppress-prompt]
    - require:
      - file: ipxe-smb-conf
{%- if not mapdata.share.guest %}

# The share's only reader: no shell, no home (created and recorded when missing).
ipxe-share-user:
  ipxe.share_user:
    - name: {{ mapdata.share.user }}
    - state_dir: {{ mapdata.state_dir }}
    - require:
      - id: ipxe-packages

ipxe-share-samba-user:
  ipxe.samba_user:
    - name: {{ mapdata.share.user }}
    - password: {{ mapdata.share.password | json }}
    - conf: {{ samba.conf }}
    - require:
      - ipxe: ipxe-share-user
      - ipxe: ipxe-smb-conf-include
{%- endif %}
