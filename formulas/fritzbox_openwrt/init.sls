# Flash OpenWRT onto an AVM Fritz!Box 3370 through the EVA bootloader.  Run it on
# purpose (`labsalt apply fritzbox_openwrt`), then power-cycle the box: it is no
# role in formulas/top.sls, since it acts on a box, not on this host.
include:
  - .flash
