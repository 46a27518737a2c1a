{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{#- Only what this host will use: the proxy DHCP's dnsmasq and the ISO extractor
    when the pillar asks for them.  Packages the host lacked are recorded, so
    ipxe.clean removes those and nothing the site had before. #}
{%- set pkgs = mapdata.pkgs + (mapdata.dhcp_pkgs if mapdata.dhcp.proxy else []) %}
{%- if mapdata.installers | selectattr("iso", "defined") | list %}
{%-   set pkgs = pkgs + mapdata.iso_pkgs %}
{%- endif %}

ipxe-packages:
  labsalt_packages.installed:
    - pkgs: {{ pkgs | json }}
    - record_dir: {{ mapdata.state_dir | json }}
