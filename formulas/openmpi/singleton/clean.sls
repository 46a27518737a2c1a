{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{%- set patch = mapdata.singleton_patch %}
{%- if patch.enabled %}

openmpi-singleton-numa-reverted:
  elfpatch.reverted:
    - name: {{ patch.library }}
    - recipe: openmpi-singleton-numa
    - recipes: salt://_modules/elfpatch_recipes.yaml
    - backup_dir: {{ patch.backup_dir }}
{%- else %}

openmpi-singleton-numa-reverted:
  test.nop:
    - name: singleton bind-to-NUMA patch was not enabled
{%- endif %}
