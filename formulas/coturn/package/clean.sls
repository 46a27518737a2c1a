{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}

include:
  - coturn.config.clean
  - coturn.firewall.clean

# Only what labsalt installed (its record): coturn, nftables and their
# dependencies if they came with labsalt; packages the site had stay.
coturn-package-removed:
  labsalt_packages.removed:
    - record_dir: {{ mapdata.state_dir | json }}
    - require:
      - coturn: coturn-config-original-restored
      - file: coturn-firewall-files-removed
