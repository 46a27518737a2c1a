{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}

fritzbox-openwrt-flashed:
  eva.flashed:
    - name: {{ mapdata.box | json }}
    - kernel: {{ mapdata.kernel | json }}
    - filesystem: {{ mapdata.filesystem | json }}
    - address: {{ mapdata.address | json }}
    - port: {{ mapdata.port | json }}
    - user: {{ mapdata.user | json }}
    - password: {{ mapdata.password | json }}
    - model: {{ mapdata.model | json }}
    - hwrevisions: {{ mapdata.hwrevisions | json }}
    - flash_chip: {{ mapdata.flash_chip | json }}
    - window: {{ mapdata.window | json }}
    - retry_interval: {{ mapdata.retry_interval | json }}
    - transfer_timeout: {{ mapdata.transfer_timeout | json }}
    - reboot: {{ mapdata.reboot | json }}
