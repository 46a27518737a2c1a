{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{#- Only what labsalt installed (its record); packages the host had stay. #}

vbox-egress-packages-record-absent:
  labsalt_packages.removed:
    - record_dir: {{ mapdata.state_dir | json }}

# The record directory is this formula's own; /var/lib/labsalt goes too when
# nothing else (another formula's records) is left in it.
vbox-egress-state-dir-absent:
  file.absent:
    - name: {{ mapdata.state_dir | json }}
    - require:
      - id: vbox-egress-packages-record-absent

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
