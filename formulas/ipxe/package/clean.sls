# samba and dnsmasq-base may serve other roles (nas, dns): only the packages
# that exist for this formula alone are removed.
ipxe-packages-removed:
  pkg.removed:
    - pkgs:
      - tftpd-hpa
      - ipxe
