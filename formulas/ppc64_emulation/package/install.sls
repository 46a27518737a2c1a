{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{#- The packages missing now are the ones labsalt installs: recorded, so that
    clean removes those and leaves what the site had (pkg.version is read-only). #}
{%- set missing = [] %}
{%- for name in mapdata.packages %}
{%-   if not salt["pkg.version"](name) %}{% do missing.append(name) %}{% endif %}
{%- endfor %}

ppc64-emulation-packages:
  pkg.installed:
    - pkgs: {{ mapdata.packages | json }}
{%- if missing %}

ppc64-emulation-packages-record:
  file.append:
    - name: {{ (mapdata.state_dir ~ "/installed-packages") | json }}
    - text: {{ missing | json }}
    - makedirs: true
    - require:
      - pkg: ppc64-emulation-packages
{%- endif %}
