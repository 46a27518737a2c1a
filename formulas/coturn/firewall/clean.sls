{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{%- set fw = mapdata.firewall %}

# Stopping the unit deletes coturn's own table; other tables stay.
coturn-firewall-stopped:
  service.dead:
    - name: {{ fw.unit }}
    - enable: false

coturn-firewall-files-removed:
  file.absent:
    - names:
      - /etc/systemd/system/{{ fw.unit }}
      - {{ fw.rules_file }}
    - require:
      - service: coturn-firewall-stopped
