{#- Packages, and a record of the ones labsalt installed itself (clean removes
    those and nothing else).  pkg.version is a read-only dpkg query. #}
{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{%- set patch = mapdata.singleton_patch %}
{%- set wanted = mapdata.packages + (patch.packages if patch.enabled else []) %}
{%- set record = mapdata.state_dir ~ "/installed-packages" %}
{%- set recorded = salt["file.read"](record).split() if salt["file.file_exists"](record) else [] %}
{%- set missing = [] %}
{%- for name in wanted if not salt["pkg.version"](name) %}{% do missing.append(name) %}{% endfor %}
{%- set to_record = (recorded + missing) | unique | sort %}
{%- if to_record != recorded %}

openmpi-package-record:
  file.managed:
    - name: {{ record }}
    - contents: {{ to_record | join("\n") | json }}
    - makedirs: true
    - mode: "0644"
{%- endif %}

{%- set missing_here = mapdata.packages | select("in", missing) | list %}
{%- if opts.test and missing_here %}

# Test mode: Salt's pkg.installed would run apt-get update to find the versions
# it would install (writing /var/lib/apt/lists); predict without asking apt.
openmpi-packages:
  test.configurable_test_state:
    - name: "{{ missing_here | join(' ') }}"
    - changes: true
    - result: true
    - comment: "would be installed: {{ missing_here | join(', ') }} (test mode does not refresh apt's lists)"
{%- else %}

openmpi-packages:
  pkg.installed:
    - pkgs: {{ mapdata.packages | json }}
    {#- apt's lists: refreshed only when something is missing #}
    - refresh: {{ (missing_here | length > 0) | json }}
{%- endif %}
{%- if to_record != recorded %}
    - require:
      - id: openmpi-package-record
{%- endif %}
