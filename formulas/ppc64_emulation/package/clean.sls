{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{#- Only what labsalt installed (its record); packages the host had stay. #}

ppc64-emulation-packages-record-absent:
  labsalt_packages.removed:
    - record_dir: {{ mapdata.state_dir | json }}
{#- Directories labsalt created (recipe_dir, persist_dir and their parents),
    deepest first, each only when empty. #}
{%- set dirs_record = mapdata.state_dir ~ "/created-dirs" %}
{%- set dirs = [] %}
{%- if salt["file.file_exists"](dirs_record) %}
{%-   for path in salt["file.read"](dirs_record).split() %}
{%-     if path.startswith("/") and path not in dirs %}{% do dirs.append(path) %}{% endif %}
{%-   endfor %}
{%- endif %}
{%- for path in dirs | sort | reverse %}

ppc64-emulation-created-dir-pruned-{{ loop.index }}:
  file.pruned:
    - name: {{ path | json }}
    - onlyif:
      - fun: file.directory_exists
        path: {{ path | json }}
    - unless:
      - fun: file.find
        path: {{ path | json }}
        mindepth: 1
        maxdepth: 1
    - require:
      - id: ppc64-emulation-packages-record-absent
    - require_in:
      - file: ppc64-emulation-state-dir-absent
{%- endfor %}

# The record directory is this formula's own; /var/lib/labsalt goes too when
# nothing else (another formula's records) is left in it.
ppc64-emulation-state-dir-absent:
  file.absent:
    - name: {{ mapdata.state_dir | json }}
    - require:
      - id: ppc64-emulation-packages-record-absent

ppc64-emulation-state-parent-pruned:
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
      - file: ppc64-emulation-state-dir-absent
