{#- Removes only the packages labsalt installed (its record), then the state
    directory and an empty /var/lib/labsalt. #}
{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}

bind_ad-package-removed:
  labsalt_packages.removed:
    - record_dir: {{ mapdata.state_dir | json }}
    - remove_record_dir: true
