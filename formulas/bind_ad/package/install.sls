{#- Installs what is missing and records it: bind_ad.clean removes only the
    packages labsalt installed, never the site's. #}
{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}

bind_ad-package-installed:
  labsalt_packages.installed:
    - pkgs: {{ mapdata.packages | json }}
    - record_dir: {{ mapdata.state_dir | json }}
