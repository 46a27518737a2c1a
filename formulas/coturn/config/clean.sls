{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}

# turnserver.conf as it was before labsalt (the package's or the site's file;
# removed if there was none); the checker was labsalt's own.
coturn-config-original-restored:
  coturn.original_restored:
    - name: {{ mapdata.config_file }}
    - backup: {{ mapdata.state_dir }}/turnserver.conf.orig

coturn-config-checker-removed:
  file.absent:
    - name: {{ mapdata.checker }}
