# Example pillar for the ipxe formula (role pxe): a TFTP/SMB server that boots
# Windows installers over the network with iPXE and wimboot.
ipxe:
  # This host's address as PXE clients and Windows PE see it.
  server: 192.168.10.5
  wimboot:
    # wimboot is not packaged by Debian: a release URL and the sha256 you
    # computed for that file (`sha256sum wimboot`).  The zeros are a
    # placeholder: the download is refused until they are replaced.
    url: https://github.com/ipxe/wimboot/releases/download/v2.8.0/wimboot
    sha256: "0000000000000000000000000000000000000000000000000000000000000000"
  menu:
    title: Lab network installers
    timeout: 0
  # Each directory below /srv/tftp/installers holds a copied installer DVD.
  installers:
    - id: win10de
      key: w
      title: Windows 10 22H2
      directory: Win10_22H2_German_x64
      arch: x64
      language: de-DE
    - id: win11en
      key: e
      title: Windows 11 24H2
      directory: Win11_24H2_English_x64
      arch: x64
      language: en-US
  share:
    name: installers
    # install.cmd mounts the share with these; Samba maps unknown users to guest.
    user: guest
    password: guest
  dhcp:
    proxy: true
    subnet: 192.168.10.0
