{#- Removes only the packages labsalt recorded as installed by itself. #}
{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{%- set record = mapdata.state_dir ~ "/installed-packages" %}
{%- set recorded = salt["file.read"](record).split() if salt["file.file_exists"](record) else [] %}

openmpi-packages-removed:
  pkg.removed:
    - pkgs: {{ recorded | json }}

openmpi-package-record-absent:
  file.absent:
    - name: {{ mapdata.state_dir }}
    - require:
      - pkg: openmpi-packages-removed
