{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{%- set b = mapdata.binfmt %}
include:
  - ..package.install

# systemd-binfmt registers this again at boot (it overrides Debian's file of the same name).
ppc64-binfmt-boot-file:
  file.managed:
    - name: {{ b.persist_dir }}/{{ b.name }}.conf
    - makedirs: true
    - mode: '0644'
    - contents: |
        # Managed by Salt (labsalt ppc64_emulation): big-endian ppc64 through qemu, flags {{ b.flags }}
        :{{ b.name }}:M:{{ b.offset or "" }}:{{ b.magic }}:{{ b.mask }}:{{ b.interpreter }}:{{ b.flags }}

ppc64-binfmt-entry:
  binfmt.registered:
    - name: {{ b.name }}
    - interpreter: {{ b.interpreter }}
    - magic: '{{ b.magic }}'
    - mask: '{{ b.mask }}'
    - offset: {{ b.offset }}
    - flags: {{ b.flags }}
    - require:
      - pkg: ppc64-emulation-packages
