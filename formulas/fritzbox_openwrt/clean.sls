# Nothing on this host to undo except the record of the last flash; a flashed
# box is reflashed with AVM's recovery tool, not by Salt.
{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}

fritzbox-openwrt-record-absent:
  file.absent:
    - name: {{ (opts.cachedir ~ "/eva/" ~ mapdata.box ~ ".json") | json }}
