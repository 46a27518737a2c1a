{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}

fritzbox-openwrt-flashed:
  eva.flashed:
    - name: {{ mapdata.box }}
    - kernel: {{ mapdata.kernel }}
    - filesystem: {{ mapdata.filesystem }}
    - address: {{ mapdata.address }}
    - port: {{ mapdata.port }}
    - user: {{ mapdata.user }}
    - password: {{ mapdata.password | json }}
    - model: {{ mapdata.model }}
    - hwrevisions: {{ mapdata.hwrevisions | json }}
    - flash_chip: {{ mapdata.flash_chip }}
    - window: {{ mapdata.window }}
    - retry_interval: {{ mapdata.retry_interval }}
    - transfer_timeout: {{ mapdata.transfer_timeout }}
    - reboot: {{ mapdata.reboot }}
