# TURN server for BigBlueButton: package, config, service, host firewall, verify.
{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
include:
  - coturn.package.install
  - coturn.config.file
  - coturn.service.running
  - coturn.firewall.service
  - coturn.verify

# In the whole run, verify once the service runs with the new config (and the
# firewall table is loaded): a failed configuration is that failure alone.
extend:
  coturn-verified:
    coturn.verified:
      - require:
        - service: coturn-service
{%- if mapdata.firewall.enabled %}
        - service: coturn-firewall-service
{%- endif %}
