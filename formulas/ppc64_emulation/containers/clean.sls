{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
# Built images are left to the container engine (`docker image rm` / `podman rmi`).
{%- for distro in mapdata.containers.images | sort %}

ppc64-recipe-{{ distro }}-absent:
  file.absent:
    - name: {{ (mapdata.containers.recipe_dir ~ "/" ~ distro) | json }}
{%- endfor %}
