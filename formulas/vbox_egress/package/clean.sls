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

vbox-egress-packages-purged:
  pkg.purged:
    - pkgs: {{ ours | json }}
{%- endif %}

vbox-egress-packages-record-absent:
  file.absent:
    - name: {{ record | json }}
{%- if ours %}
    - require:
      - pkg: vbox-egress-packages-purged
{%- endif %}

# The record directory is this formula's own; /var/lib/labsalt goes too when
# nothing else (another formula's records) is left in it.
vbox-egress-state-dir-absent:
  file.absent:
    - name: {{ mapdata.state_dir | json }}
    - require:
      - file: vbox-egress-packages-record-absent

vbox-egress-state-parent-pruned:
  file.pruned:
    - name: {{ mapdata.state_dir.rsplit("/", 1)[0] | json }}
    - onlyif:
      - fun: file.directory_exists
        path: {{ mapdata.state_dir.rsplit("/", 1)[0] | json }}
    - unless:
      - fun: file.find
        path: {{ mapdata.state_dir.rsplit("/", 1)[0] | json }}
        mindepth: 1
        maxdepth: 1
    - require:
      - file: vbox-egress-state-dir-absent
