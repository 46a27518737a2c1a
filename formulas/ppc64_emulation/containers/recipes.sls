{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{%- set c = mapdata.containers %}
{%- set wanted = [] %}
{%- for distro, image in c.images | dictsort if image.enabled %}
{%-   do wanted.append(c.recipe_dir ~ "/" ~ distro) %}
{%- endfor %}
{%- set created = salt["ppc64_emulation.missing_dirs"](wanted) if wanted else [] %}
include:
  - ..binfmt.registered
{%- if created %}

# Directories this formula is about to create: clean removes them again (if empty).
ppc64-recipe-dirs-record:
  file.append:
    - name: {{ (mapdata.state_dir ~ "/created-dirs") | json }}
    - text: {{ created | json }}
    - makedirs: true
{%- endif %}

{%- for distro, image in c.images | dictsort %}
{%-   if image.enabled %}

ppc64-recipe-{{ distro }}:
  file.managed:
    - name: {{ (c.recipe_dir ~ "/" ~ distro ~ "/Containerfile") | json }}
    - source: salt://{{ tpldir.split("/")[0] }}/files/{{ distro }}.Containerfile.jinja
    - template: jinja
    - makedirs: true
    - mode: '0644'
{%- if created %}
    - require:
      - file: ppc64-recipe-dirs-record
{%- endif %}
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
