{#- After the run: the running named answers what clients ask it (the zone, the
    referrals to the DCs with glue, the SRV CNAMEs, _kpasswd, the DCs'
    addresses, and through a DC that answers, _ldap._tcp.dc._msdcs and
    _kerberos._udp SRV), queried with dig at named's own listen address; see
    _modules/bind_ad.py (verify).  bind_ad:verify:enabled: false turns it off. #}
{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}
include:
  - .package.install

bind_ad-verified:
  bind_ad.verified:
    - name: {{ mapdata.domain | json }}
    - params: {{ mapdata | json }}
    - require:
      - labsalt_packages: bind_ad-package-installed
