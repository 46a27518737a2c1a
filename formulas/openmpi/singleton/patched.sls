{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
{%- set patch = mapdata.singleton_patch %}
{%- if patch.enabled %}
{%- set installed_patch_packages = [] %}
{%- for name in patch.packages if salt["pkg.version"](name) %}{% do installed_patch_packages.append(name) %}{% endfor %}

include:
  - {{ tpldir.split("/")[0] }}.package.install

# elfpatch's parser; a salt-ssh target runs Salt on the system Python, so the
# Debian package is what makes the module load there (then reloaded).
{%- set patch_missing = patch.packages | reject("in", installed_patch_packages) | list %}
{%- if opts.test and patch_missing %}
# Test mode: predicted without apt (pkg.installed would refresh apt's lists).
openmpi-elfpatch-dependencies:
  test.configurable_test_state:
    - name: "{{ patch_missing | join(' ') }}"
    - changes: true
    - result: true
    - comment: "would be installed: {{ patch_missing | join(', ') }} (test mode does not refresh apt's lists)"
{%- else %}
openmpi-elfpatch-dependencies:
  pkg.installed:
    - pkgs: {{ patch.packages | json }}
    - reload_modules: true
    {#- apt's lists: refreshed only when something is missing #}
    - refresh: {{ (patch_missing | length > 0) | json }}
{%- endif %}
    - require:
      - sls: {{ tpldir.split("/")[0] }}.package.install

# OpenMPI 4 singletons (programs started without mpirun) bind to the NUMA
# node's parent instead of the NUMA node, which hwloc 2 no longer lists among
# a core's ancestors.  Re-applied when a package upgrade replaces the library.
openmpi-singleton-numa-patch:
  elfpatch.patched:
    - name: {{ patch.library }}
    - recipe: openmpi-singleton-numa
    - recipes: salt://_modules/elfpatch_recipes.yaml
    - value: {{ patch.type | json }}
    - allow_unknown: {{ patch.allow_unknown_builds | json }}
    - known_sha256: {{ patch.known_sha256 | json }}
    - backup_dir: {{ patch.backup_dir }}
    - require:
      - id: openmpi-packages
      - id: openmpi-elfpatch-dependencies
{%- else %}

openmpi-singleton-numa-patch:
  test.nop:
    - name: singleton bind-to-NUMA patch disabled (openmpi:singleton_patch:enabled)
{%- endif %}
