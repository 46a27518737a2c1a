include:
  - .tftp
  - .wimboot
  - .samba
  - .iso
  - .menu
  - .dhcp
