{#- A minimal formula for the foundation's own tests: one managed file from mapdata. #}
{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}

sample-file-managed:
  file.managed:
    - name: {{ mapdata.path }}
    - contents: |
        greeting={{ mapdata.greeting }}
        policy={{ mapdata.slots.policy }}
        family={{ mapdata.family }}
    - makedirs: true
