{#- Removes only the packages labsalt installed (its record), then the record. #}
{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{%- set installed = salt["bind_ad.recorded_packages"](mapdata.state_dir ~ "/installed-packages") %}
{%- if installed %}

bind_ad-package-removed:
  pkg.removed:
    - pkgs: {{ installed | json }}
{%- endif %}

bind_ad-state-dir-absent:
  file.absent:
    - name: {{ mapdata.state_dir | json }}
{%- if installed %}
    - require:
      - pkg: bind_ad-package-removed
{%- endif %}
