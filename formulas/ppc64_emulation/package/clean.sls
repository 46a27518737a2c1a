{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{%- set record = mapdata.state_dir ~ "/installed-packages" %}
{#- Only what labsalt installed (its record); packages the host had stay. #}
{%- set ours = [] %}
{%- if salt["file.file_exists"](record) %}
{%-   for name in salt["file.read"](record).split() %}
{%-     if name not in ours %}{% do ours.append(name) %}{% endif %}
{%-   endfor %}
{%- endif %}
{%- if ours %}

ppc64-emulation-packages-purged:
  pkg.purged:
    - pkgs: {{ ours | json }}
{%- endif %}

ppc64-emulation-packages-record-absent:
  file.absent:
    - name: {{ record | json }}
{%- if ours %}
    - require:
      - pkg: ppc64-emulation-packages-purged
{%- endif %}
