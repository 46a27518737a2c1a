{#- Removes the repository, key and pin this formula added and the packages it
    recorded as installed by itself; packages that were there before stay. #}
{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{%- set repo = mapdata.repo %}
{%- set record = mapdata.state_dir ~ "/installed-packages" %}
{%- set recorded = salt["file.read"](record).split() if salt["file.file_exists"](record) else [] %}

htcondor-package-removed:
  pkg.removed:
    - pkgs: {{ recorded | json }}

htcondor-package-record-absent:
  file.absent:
    - names:
      - {{ record }}
      - {{ mapdata.state_dir }}
    - require:
      - pkg: htcondor-package-removed
{%- if repo.manage %}

htcondor-package-repo-absent:
  file.absent:
    - names:
      - {{ repo.sources_file }}
      - {{ repo.pin.file }}
      - {{ repo.keyring }}
    - require:
      - pkg: htcondor-package-removed
{%- endif %}
