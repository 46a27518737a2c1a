{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}

# The packages the host lacks are installed and recorded (with the dependencies
# apt pulls in) in <state_dir>/installed-packages, so that clean removes those
# and leaves what the site had; test mode asks dpkg only.
ppc64-emulation-packages:
  labsalt_packages.installed:
    - pkgs: {{ mapdata.packages | json }}
    - record_dir: {{ mapdata.state_dir | json }}
