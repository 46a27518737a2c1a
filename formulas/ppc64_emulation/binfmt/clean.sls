{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{%- set b = mapdata.binfmt %}
{%- set boot_file = b.persist_dir ~ "/" ~ b.name ~ ".conf" %}

# Removed only if labsalt registered it (its record); what it replaced comes back.
ppc64-binfmt-entry-absent:
  binfmt.absent:
    - name: {{ b.name | json }}
    - record: {{ (mapdata.state_dir ~ "/binfmt-" ~ b.name ~ ".json") | json }}

ppc64-binfmt-boot-file-absent:
  file.absent:
    - name: {{ boot_file | json }}
    - onlyif:
      - fun: ppc64_emulation.ours
        args: [{{ boot_file | json }}]
