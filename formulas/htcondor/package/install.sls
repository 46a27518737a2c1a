{#- HTCondor's own apt repository (every part from pillar htcondor:repo), its
    signing key, a pin, and the package.  Packages this formula installs are
    recorded, so that clean removes only those. #}
{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{%- set repo = mapdata.repo %}
{%- set installed = salt["pkg.version"](mapdata.package) %}
{%- set record = mapdata.state_dir ~ "/installed-packages" %}
{%- set recorded = salt["file.read"](record).split() if salt["file.file_exists"](record) else [] %}
{%- set to_record = (recorded + ([] if installed else [mapdata.package])) | unique | sort %}
{%- if repo.manage %}
{%- set origin = repo.pin.origin or repo.url.split("/")[2].split(":")[0].split("@")[-1] %}

# The key apt checks the repository's Release file with.  apt reads a keyring
# named *.asc as ASCII-armored and *.gpg as binary (the schema keeps to those).
htcondor-package-keyring:
  htcondor.keyring:
    - name: {{ repo.keyring }}
    - source: {{ repo.key_url }}
    - key_sha256: {{ repo.key_sha256 | json }}

htcondor-package-repo:
  file.managed:
    - name: {{ repo.sources_file }}
    - contents: "deb [signed-by={{ repo.keyring }}] {{ repo.url }} {{ repo.suite or grains.oscodename }} {{ repo.component }}"
    - mode: "0644"
    - require:
      - htcondor: htcondor-package-keyring
{%- if repo.pin.priority is not none %}

# HTCondor's package from HTCondor's repository, not from whatever else offers the name.
htcondor-package-pin:
  file.managed:
    - name: {{ repo.pin.file }}
    - contents: |
        Package: {{ mapdata.package }}
        Pin: origin "{{ origin }}"
        Pin-Priority: {{ repo.pin.priority }}
    - mode: "0644"
{%- endif %}

# Only this repository's index, and only when its source or key changed.
htcondor-package-index:
  module.run:
    - cmd.run_all:
      - cmd:
        - apt-get
        - update
        - -q
        - -o
        - Dir::Etc::sourcelist={{ repo.sources_file }}
        - -o
        - Dir::Etc::sourceparts=-
        - -o
        - APT::Get::List-Cleanup=0
      - python_shell: false
    - onchanges:
      - file: htcondor-package-repo
      - htcondor: htcondor-package-keyring
{%- endif %}
{%- if to_record != recorded %}

# What labsalt installed itself (clean removes these and nothing else).
htcondor-package-record:
  file.managed:
    - name: {{ record }}
    - contents: {{ to_record | join("\n") | json }}
    - makedirs: true
    - mode: "0644"
{%- endif %}

{%- set before = [] %}
{%- if repo.manage %}{% do before.extend(["htcondor-package-index"] + (["htcondor-package-pin"] if repo.pin.priority is not none else [])) %}{% endif %}
{%- if to_record != recorded %}{% do before.append("htcondor-package-record") %}{% endif %}
{%- if opts.test and not installed %}

# Test mode: Salt's pkg.installed would run apt-get update to find the version
# it would install (writing /var/lib/apt/lists); predict without asking apt.
htcondor-package:
  test.configurable_test_state:
    - name: {{ mapdata.package }}
    - changes: true
    - result: true
    - comment: "{{ mapdata.package }} would be installed{{ ' from ' ~ repo.url if repo.manage else '' }} (test mode does not refresh apt's lists)"
{%- else %}

htcondor-package:
  pkg.installed:
    - name: {{ mapdata.package }}
    {#- apt's lists are refreshed only when something is to be installed #}
    - refresh: {{ (not installed) | json }}
{%- endif %}
{%- if before %}
    - require:
{%- for id in before %}
      - id: {{ id }}
{%- endfor %}
{%- endif %}
