# bind_ad: BIND serves the AD domain's zone and delegates _msdcs, _sites,
# DomainDnsZones and ForestDnsZones to the domain controllers (formulas/bind_ad/README.md).
bind_ad:
  # The AD domain's DNS name (the Kerberos realm in lower case).
  domain: ad.example.org
  # Every DC of the domain; adding or removing one here updates the NS, glue
  # and _kpasswd records in one highstate.
  dcs:
    - name: dc1            # dc1.ad.example.org
      ipv4: 192.0.2.11
      ipv6: 2001:db8::11
    - name: dc2.ad.example.org
      ipv4: 192.0.2.12
  # This BIND server: SOA primary and NS of the zone.
  nameservers:
    - name: ns1
      ipv4: 192.0.2.2
  # Who may use BIND as a recursive resolver (allow-recursion/allow-query-cache).
  # Never an open range (any, 0.0.0.0/0, ::/0). Leave it out to keep the site's
  # own setting; if the site's named.conf.options sets it differently, the run
  # stops naming the option.
  clients:
    - localhost
    - 192.0.2.0/24
    - 2001:db8::/64
  # Names outside the AD subtrees that BIND answers itself.
  records:
    - {name: www, type: CNAME, data: ns1}
  # NOTIFY from the zone: explicit (the default: to no one; the DCs are NS of
  # the zone, not its secondaries), no, or yes.
  notify: explicit
  # TTLs in seconds of the delegations (NS) and of the SRV CNAMEs (default 3600).
  ttl:
    delegation: 3600
    cname: 3600
  # After each run, query named the way clients do (bind_ad.verify); a DC that
  # does not answer on 53/88 is a warning. false turns it off on this host.
  verify:
    enabled: true
  # On a Samba AD DC, bind_ad.samba sets this in smb.conf [global]:
  # samba:
  #   dns_update_command: /usr/sbin/samba_dnsupdate --use-samba-tool
