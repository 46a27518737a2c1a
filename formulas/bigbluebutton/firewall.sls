{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{%- set rule = mapdata.dialin.sip_port ~ "/tcp" %}
{%- if mapdata.firewall.enabled and mapdata.dialin.enabled %}

# bbb-install -w enables UFW for SSH, HTTP(S) and the media ports; dial-in adds SIP.
bigbluebutton-firewall-ufw:
  labsalt_packages.installed:
    - pkgs: [ufw]
    - record_dir: {{ mapdata.paths.record.rsplit("/", 1)[0] | json }}

bigbluebutton-firewall-sip:
  bbb.ufw_allowed:
    - name: {{ rule }}
    - record: {{ mapdata.paths.record.rsplit("/", 1)[0] }}/ufw-rules
    - require:
      - id: bigbluebutton-firewall-ufw
{%- else %}

bigbluebutton-firewall-sip:
  test.nop:
    - name: SIP port not opened (no dial-in or firewall disabled)
{%- endif %}
