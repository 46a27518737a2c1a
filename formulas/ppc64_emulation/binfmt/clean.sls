{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}

ppc64-binfmt-entry-absent:
  binfmt.absent:
    - name: {{ mapdata.binfmt.name }}

ppc64-binfmt-boot-file-absent:
  file.absent:
    - name: {{ mapdata.binfmt.persist_dir }}/{{ mapdata.binfmt.name }}.conf
