# fritzbox_openwrt: flash OpenWRT onto an AVM Fritz!Box 3370 through EVA.
# Run `labsalt apply fritzbox_openwrt`, then switch the box off and on.
fritzbox_openwrt:
  box: fritzbox-3370
  address: 192.168.178.1        # EVA's default; this host needs an address in 192.168.178.0/24
  hwrevisions: [175]
  # A cross-check: eva.flash reads the NAND the box itself reports (EVA's
  # HardwareFeatures nand=0x2c.. Micron, 0xad.. Hynix) and refuses images for
  # another; this value is used only when the box reports none.
  flash_chip: micron
  kernel: /srv/openwrt/openwrt-lantiq-xrx200-avm_fritz3370-rev2-micron-squashfs-eva-kernel.bin
  filesystem: /srv/openwrt/openwrt-lantiq-xrx200-avm_fritz3370-rev2-micron-squashfs-eva-filesystem.bin
  window: 120
