{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{%- set b = mapdata.binfmt %}
{%- set boot_file = b.persist_dir ~ "/" ~ b.name ~ ".conf" %}
{%- set marker = "Managed by Salt (labsalt ppc64_emulation)" %}
{%- set created = salt["ppc64_emulation.missing_dirs"]([b.persist_dir]) %}
include:
  - ..package.install
{%- if created %}

# Directories this formula is about to create: clean removes them again (if empty).
ppc64-binfmt-dirs-record:
  file.append:
    - name: {{ (mapdata.state_dir ~ "/created-dirs") | json }}
    - text: {{ created | json }}
    - makedirs: true
{%- endif %}

# systemd-binfmt registers this again at boot (it overrides Debian's file of the
# same name).  A site's own file of that name is left alone (no marker: not ours).
ppc64-binfmt-boot-file:
  binfmt.boot_file:
    - name: {{ boot_file | json }}
    - marker: {{ marker | json }}
    - contents: |
        # {{ marker }}: big-endian ppc64 through qemu, flags {{ b.flags }}
        :{{ b.name }}:M:{{ b.offset or "" }}:{{ b.magic }}:{{ b.mask }}:{{ b.interpreter }}:{{ b.flags }}
{%- if created %}
    - require:
      - file: ppc64-binfmt-dirs-record
{%- endif %}

# Only labsalt's registration is managed: the record says what labsalt replaced
# (if anything), so clean puts that back; an equal entry binfmt-support made is
# left as binfmt-support's.
ppc64-binfmt-entry:
  binfmt.registered:
    - name: {{ b.name | json }}
    - interpreter: {{ b.interpreter | json }}
    - magic: {{ b.magic | json }}
    - mask: {{ b.mask | json }}
    - offset: {{ b.offset | json }}
    - flags: {{ b.flags | json }}
    - record: {{ (mapdata.state_dir ~ "/binfmt-" ~ b.name ~ ".json") | json }}
    - require:
      - id: ppc64-emulation-packages
