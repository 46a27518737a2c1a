{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}

# Undoes what the formula adds on top of BBB (BBB itself is removed with its
# packages, not by Salt).
bigbluebutton-dialin-plan-removed:
  file.absent:
    - name: {{ mapdata.paths.freeswitch }}/dialplan/public/dialin.xml

bigbluebutton-firewall-sip-closed:
  cmd.run:
    - name: ufw delete allow {{ mapdata.dialin.sip_port }}/tcp
    - onlyif: ufw show added | grep -qx 'ufw allow {{ mapdata.dialin.sip_port }}/tcp'

bigbluebutton-install-stamp-removed:
  file.absent:
    - name: {{ mapdata.paths.workdir }}/bbb-install.json
