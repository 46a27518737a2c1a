{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{%- set root = mapdata.tftp.root %}
{%- set samba = mapdata.samba %}
{%- set share_conf = samba.share_conf or (samba.conf.rsplit("/", 1)[0] ~ "/labsalt-ipxe.conf") %}
# Removes what the formula generated or fetched and its blocks in the site's
# files; the installer trees and every line of the site's stay.

ipxe-generated-removed:
  file.absent:
    - names:
      - {{ root }}/{{ mapdata.menu.file }}
      - {{ root }}/ipxe
      - {{ root }}/{{ mapdata.wimboot.file }}
      - {{ root }}/{{ mapdata.ipxe_binaries.bios }}
      - {{ root }}/{{ mapdata.ipxe_binaries.uefi }}
      - {{ mapdata.dhcp.conf }}
      - {{ mapdata.dhcp.unit_dir }}/{{ mapdata.dhcp.unit }}.service

ipxe-tftpd-defaults-restored:
  ipxe.block_absent:
    - name: {{ mapdata.tftp.defaults_file }}

ipxe-smb-conf-include-removed:
  ipxe.block_absent:
    - name: {{ samba.conf }}

ipxe-smb-conf-removed:
  file.absent:
    - name: {{ share_conf }}
    - require:
      - ipxe: ipxe-smb-conf-include-removed

ipxe-share-users-removed:
  ipxe.share_users_removed:
    - conf: {{ samba.conf }}
    - state_dir: {{ mapdata.state_dir }}

# Back on the site's settings, if they run.
ipxe-tftpd-restarted:
  ipxe.try_restart:
    - name: {{ mapdata.tftp.service }}
    - onchanges:
      - ipxe: ipxe-tftpd-defaults-restored

ipxe-smbd-reloaded:
  ipxe.try_restart:
    - name: {{ samba.service }}
    - reload: True
    - onchanges:
      - ipxe: ipxe-smb-conf-include-removed
      - file: ipxe-smb-conf-removed
