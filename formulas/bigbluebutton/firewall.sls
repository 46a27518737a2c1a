{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{%- set rule = mapdata.dialin.sip_port ~ "/tcp" %}
{%- if mapdata.firewall.enabled and mapdata.dialin.enabled %}

# bbb-install -w enables UFW for SSH, HTTP(S) and the media ports; dial-in adds SIP.
bigbluebutton-firewall-ufw:
  pkg.installed:
    - name: ufw

bigbluebutton-firewall-sip:
  cmd.run:
    - name: ufw allow {{ rule }}
    - unless: ufw show added | grep -qx 'ufw allow {{ rule }}'
    - require:
      - pkg: bigbluebutton-firewall-ufw
{%- else %}

bigbluebutton-firewall-sip:
  test.nop:
    - name: SIP port not opened (no dial-in or firewall disabled)
{%- endif %}
