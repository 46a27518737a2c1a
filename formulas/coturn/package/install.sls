{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{%- set fw = mapdata.firewall %}
{#- The secret was checked by the schema (missing, too short, odd characters): never shown. #}
{%- if fw.enabled %}

# coturn's firewall table drops all but SSH and TURN: refuse, first and before
# anything is installed or written, on a host whose own input rules it would
# break (read-only check; failhard stops the run there, in test mode too).
coturn-firewall-compatible:
  coturn.firewall_compatible:
    - name: {{ fw.table }}
    - order: 1
    - failhard: true
{%- endif %}

# Installed and recorded (dependencies too), so that coturn.clean purges only
# what labsalt brought; a coturn the site had stays.
coturn-package:
  labsalt_packages.installed:
    - pkgs: [{{ mapdata.package | json }}]
    - record_dir: {{ mapdata.state_dir | json }}
{%- if fw.enabled %}
    - require:
      - coturn: coturn-firewall-compatible
{%- endif %}
