{#- Installs what is missing, after recording it: bind_ad.clean removes only the
    packages labsalt installed, never the site's. #}
{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{%- set record = mapdata.state_dir ~ "/installed-packages" %}
{%- set recorded = salt["bind_ad.packages_record"](mapdata.packages, record) %}
{%- if recorded is not none %}

bind_ad-package-record:
  file.managed:
    - name: {{ record | json }}
    - contents: {{ recorded | json }}
    - makedirs: true
    - mode: "0644"
    - require_in:
      - pkg: bind_ad-package-installed
{%- endif %}

bind_ad-package-installed:
  pkg.installed:
    - pkgs: {{ mapdata.packages | json }}
