{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}

openmpi-profile-absent:
  file.absent:
    - name: {{ mapdata.profile_file }}

openmpi-prte-params-absent:
  file.absent:
    - name: {{ mapdata.prte_params_file }}

# openmpi-mca-params.conf belongs to openmpi-common: back to the distribution's
# settings only.
openmpi-mca-params-distribution:
  file.managed:
    - name: {{ mapdata.mca_params_file }}
    - source: salt://{{ tpldir.split("/")[0] }}/files/mca-params.conf.jinja
    - template: jinja
    - mode: "0644"
    - onlyif: test -e {{ mapdata.mca_params_file }}
    - context:
        params: {{ mapdata.mca_params | json }}
        mpi: null

openmpi-mca-params-checker-absent:
  file.absent:
    - name: {{ mapdata.checker }}
    - require:
      - file: openmpi-mca-params-distribution
