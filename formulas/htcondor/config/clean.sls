{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}

htcondor-config-files-absent:
  file.absent:
    - names:
      - {{ mapdata.config_dir }}/50-labsalt-slots.conf
      - {{ mapdata.config_dir }}/50-labsalt-environment.conf
      - {{ mapdata.libexec_dir }}/condor-job-wrapper
      - {{ mapdata.libexec_dir }}/condor-config-check

# Our script directory and its parents up to the first one that holds anything
# else (makedirs created /usr/local/libexec on Debian); list arguments, no shell.
htcondor-config-libexec-absent:
  module.run:
    - cmd.run_all:
      - cmd:
        - rmdir
        - --parents
        - --ignore-fail-on-non-empty
        - {{ mapdata.libexec_dir }}
      - python_shell: false
    - onlyif:
      - fun: file.directory_exists
        args:
          - {{ mapdata.libexec_dir }}
    - require:
      - file: htcondor-config-files-absent
