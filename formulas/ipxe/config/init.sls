include:
  - .tftp
  - .wimboot
  - .menu
  - .samba
  - .dhcp
