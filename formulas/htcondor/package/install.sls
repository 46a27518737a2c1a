{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{%- set repo = mapdata.repo %}
{%- if repo.manage %}

htcondor-package-repo:
  pkgrepo.managed:
    - name: deb [signed-by={{ repo.keyring }}] {{ repo.url }} {{ grains.oscodename }} {{ repo.component }}
    - file: /etc/apt/sources.list.d/htcondor.list
    - key_url: {{ repo.key_url }}
    - aptkey: False
    - signedby: {{ repo.keyring }}
    - require_in:
      - pkg: htcondor-package
{%- endif %}

htcondor-package:
  pkg.installed:
    - name: {{ mapdata.package }}
