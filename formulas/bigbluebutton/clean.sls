{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}

# Undoes what the formula adds on top of BBB: its dial plan, the SIP rule, its
# install stamp and the packages it installed itself (its record).  BBB's own
# files keep the settings (key edits in BBB's files; BBB itself is removed with
# its packages, not by Salt).
bigbluebutton-dialin-plan-removed:
  file.absent:
    - name: {{ mapdata.paths.freeswitch }}/dialplan/public/dialin.xml

# labsalt's block in apply-config.sh (the script too, if it was labsalt's alone),
# its module copy and settings file.
bigbluebutton-apply-config-removed:
  bbb.apply_config_absent:
    - name: {{ mapdata.paths.bbb_conf }}

bigbluebutton-firewall-sip-closed:
  bbb.ufw_removed:
    - name: {{ mapdata.dialin.sip_port }}/tcp
    - record: {{ mapdata.paths.record.rsplit("/", 1)[0] }}/ufw-rules

bigbluebutton-install-stamp-removed:
  file.absent:
    - names:
      - {{ mapdata.paths.workdir }}/bbb-install.json
      - {{ mapdata.paths.workdir }}/bbb-install.sh

bigbluebutton-packages-removed:
  labsalt_packages.removed:
    - record_dir: {{ mapdata.paths.record.rsplit("/", 1)[0] | json }}
    - require:
      - bbb: bigbluebutton-firewall-sip-closed

bigbluebutton-directories-pruned:
  coturn.dirs_pruned:
    - name: bigbluebutton
    - dirs:
      - {{ mapdata.paths.record.rsplit("/", 1)[0] }}
      - {{ mapdata.paths.workdir }}
    - require:
      - id: bigbluebutton-packages-removed
      - file: bigbluebutton-install-stamp-removed
