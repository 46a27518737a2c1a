{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{%- set c = mapdata.containers %}
include:
  - ..binfmt.registered

{%- for distro, image in c.images | dictsort %}
{%-   if image.enabled %}

ppc64-recipe-{{ distro }}:
  file.managed:
    - name: {{ (c.recipe_dir ~ "/" ~ distro ~ "/Containerfile") | json }}
    - source: salt://{{ tpldir.split("/")[0] }}/files/{{ distro }}.Containerfile.jinja
    - template: jinja
    - makedirs: true
    - mode: '0644'
    - context:
        image: {{ image | json }}

ppc64-image-{{ distro }}:
  ppc64_emulation.image_built:
    - name: {{ image.tag | json }}
    - recipe_dir: {{ (c.recipe_dir ~ "/" ~ distro) | json }}
    - engine: {{ c.engine | json }}
    - require:
      - file: ppc64-recipe-{{ distro }}
      - binfmt: ppc64-binfmt-entry
{%-   endif %}
{%- endfor %}
