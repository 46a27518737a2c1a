"""
Every labsalt role on its own throw-away host that starts with the base image only
(systemd, sshd, python3: what a fresh cloud VM has), converged over salt-ssh with
pillar.example plus the site data each role's own e2e test prepares.  Used by
tests/e2e/test_bare_hosts.py and ``python -m bench roles``.

    lab = RoleLab(factory, workdir)
    lab.start(["dns", "turn"])            # hosts named after their role, site data in place
    returns = lab.apply(test=True)        # {host name: state return}, one labsalt ssh call
    lab.close()

Site data per role (what is outside labsalt's control on a real site):

- workstation: HTCondor's apt repository is out of reach here, so a signed
  repository of our own (tests/support/aptrepo.py) holds a stand-in ``condor``
  package and the pillar points htcondor:repo at it; HTCondor plans for the
  Threadripper 1950X snapshot tests/e2e/test_htcondor.py uses, OpenMPI for the
  host's live topology.
- nas: a loop device of this machine made visible in the host with the
  /dev/disk/by-id link udev would make (as tests/e2e/test_spindown.py).
- dns: the host's own address as ns1 (as tests/e2e/test_bind_ad.py).
- turn: the TURN pillar of tests/e2e/test_bigbluebutton_conference.py, and the
  TLS certificate pillar.example names (self-signed, where certbot puts it).
- bbb: BBB's default files as bbb-install leaves them and the installer/API
  stand-ins (tests/support/bbb_standins.py) served on the host's veth.
- pxe: an installer tree copied in, wimboot's stand-in served over HTTP, a
  Samba user (as tests/e2e/test_ipxe.py).
- emu, vbox: pillar.example as it is.
"""

import contextlib
import hashlib
import ipaddress
import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import yaml

from tests.support import aptrepo, bbb_standins, ipxe_tree, sysfs_snapshot
from tests.support.loopdev import LoopUnavailable, loop_device

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "pillar.example"
TURN_SECRET = "bare-TurnSecret-2718-shared"
DIALIN_TOKEN = "BareDialToken42"
PXE_PASSWORD = "Bare-Rd-Pa55"
NAS_BY_ID = "ata-LABSALT_BARE_NAS"
SNAPSHOT = "/srv/topology/threadripper-1950x"


def roles():
    """{role: [formulas]} as formulas/top.sls maps them (its compound matches)."""
    top = yaml.safe_load((REPO / "formulas" / "top.sls").read_text())["base"]
    found = {}
    for match, body in top.items():
        role = re.search(r"I@labsalt:roles:(\w+)", match)
        if role:
            found.setdefault(role.group(1), []).extend(s for s in body if isinstance(s, str))
    return found


def formulas():
    return sorted(
        p.name
        for p in (REPO / "formulas").iterdir()
        if p.is_dir() and (p / "init.sls").is_file() and not p.name.startswith((".", "_"))
    )


def _restart_cmd(argv):
    """BBB's restart command as the formula takes it (argument list; before: a string)."""
    defaults = REPO / "formulas" / "bigbluebutton" / "parameters" / "defaults.yaml"
    default = yaml.safe_load(defaults.read_text())["restart_cmd"]
    return shlex.join(argv) if isinstance(default, str) else argv


class RoleLab:
    """Hosts for roles, their site data and one pillar tree; see the module docstring."""

    def __init__(self, factory, workdir):
        self.factory = factory
        self.workdir = Path(workdir)
        self.hosts = {}
        self.site = {}
        self.notes = {}
        self.stack = contextlib.ExitStack()
        self.pillar_dir = self.workdir / "pillar"
        self.repo = None

    # ---- setup

    def start(self, names):
        started = self.factory.start_many(list(names))
        for name, host in zip(names, started, strict=True):
            self.hosts[name] = host
            prepare = getattr(self, f"_site_{name}", None)
            self.site[name] = prepare(host) if prepare else {}
            self.site[name].setdefault("labsalt", {"roles": [name], "skip": []})
        self.write_pillar()
        self.roster = self.factory.roster(list(self.hosts.values()), name="roles-roster")
        return self

    def write_pillar(self):
        """pillar.example for every host, then one site file per host merged over it."""
        if self.pillar_dir.exists():
            shutil.rmtree(self.pillar_dir)
        self.pillar_dir.mkdir(parents=True)
        for sls in EXAMPLE.glob("*.sls"):
            if sls.name != "top.sls":
                shutil.copy(sls, self.pillar_dir / sls.name)
        top = yaml.safe_load((EXAMPLE / "top.sls").read_text())
        (self.pillar_dir / "site").mkdir()
        for name, data in self.site.items():
            top["base"][name] = [f"site.{name}"]
            (self.pillar_dir / "site" / f"{name}.sls").write_text(yaml.safe_dump(data))
        (self.pillar_dir / "top.sls").write_text(yaml.safe_dump(top, sort_keys=False))

    def close(self):
        self.stack.close()

    # ---- runs

    def ssh(self, names, *args, call=()):
        """
        One ``labsalt ssh`` call over the hosts ``names`` (``args``: apply options, or
        ``call``: a function and its arguments); returns ({name: return}, seconds).
        """
        start = time.monotonic()
        opts = ["--out", "json", "--pillar", str(self.pillar_dir), "--target-type", "list"]
        opts += ["--max-procs", str(len(names))]
        tail = ["--call", *call] if call else []
        proc = self.factory.ssh(self.roster, ",".join(names), *args, *opts, *tail, check=False)
        took = time.monotonic() - start
        try:
            returns = json.loads(proc.stdout)
        except json.JSONDecodeError:
            returns = {}
        for name in names:
            returns.setdefault(name, [f"no return (exit {proc.returncode}): {proc.stderr[-3000:]}"])
        return returns, took

    def apply(self, names=None, test=False):
        names = list(names or self.hosts)
        return self.ssh(names, "apply", *(["--test"] if test else []))

    # ---- site data per role (the pillar the role's site file gets)

    def _site_workstation(self, host):
        if aptrepo.available() or not aptrepo.htcondor_bindings():
            self.notes["workstation"] = (
                aptrepo.available() or "HTCondor's Python bindings are not installed"
            )
            return {}
        repo = aptrepo.AptRepo(tempfile.mkdtemp(prefix="aptrepo-", dir=self.workdir))
        repo.add(aptrepo.htcondor_standin())
        repo.build()
        url = repo.serve(host.ns.host_addr)
        self.stack.callback(repo.close)
        self.repo = repo
        key = hashlib.sha256((repo.root / "key.asc").read_bytes()).hexdigest()
        # HTCondor plans for a Threadripper 1950X, as tests/e2e/test_htcondor.py: slot
        # memory follows the NUMA nodes' MemTotal, which changes on a VM with memory
        # hotplug (this machine's) and would make the second highstate rewrite it.
        snapshot = sysfs_snapshot.write_snapshot(
            sysfs_snapshot.THREADRIPPER_1950X, self.workdir / "threadripper-1950x"
        )
        host.copy([snapshot], str(Path(SNAPSHOT).parent))
        return {
            "htcondor": {
                "repo": {"url": url, "key_url": f"{url}/key.asc", "key_sha256": key},
                "topology_root": SNAPSHOT,
            }
        }

    def _site_nas(self, host):
        try:
            device, _ = self.stack.enter_context(
                loop_device(filesystem=False, prefix="labsalt-bare-nas-")
            )
        except LoopUnavailable as exc:
            self.notes["nas"] = f"no loop device ({exc}): spindown:disks stays []"
            return {}
        rdev = os.stat(device).st_rdev
        host.run("mknod", device, "b", os.major(rdev), os.minor(rdev))
        host.run("mkdir", "-p", "/dev/disk/by-id")
        host.run("ln", "-s", f"../..{device[len('/dev') :]}", f"/dev/disk/by-id/{NAS_BY_ID}")
        return {"spindown": {"disks": [{"device": os.path.basename(device)}]}}

    def _site_dns(self, host):
        return {
            "bind_ad": {
                "domain": "ad.labsalt.test",
                "dcs": [
                    {"name": "dc1", "ipv4": "192.0.2.11"},
                    {"name": "dc2", "ipv4": "192.0.2.12"},
                ],
                "nameservers": [{"name": "ns1", "ipv4": host.addr}],
                "clients": ["localhost"],
                "records": [{"name": "printer", "type": "A", "data": "192.0.2.7"}],
            }
        }

    def _site_turn(self, host):
        # pillar.example's TLS certificate, as certbot would have left it: a
        # self-signed one here, readable by coturn's user (see coturn's README).
        tls = yaml.safe_load((EXAMPLE / "coturn.sls").read_text())["coturn"]["tls"]
        scratch = Path(tempfile.mkdtemp(prefix="turn-", dir=self.workdir))
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-days", "30", "-subj", "/CN=turn.lab.example.org",
             "-keyout", scratch / "key.pem", "-out", scratch / "cert.pem"],
            check=True, capture_output=True,
        )  # fmt: skip
        host.put(tls["cert"], (scratch / "cert.pem").read_text())
        host.put(tls["pkey"], (scratch / "key.pem").read_text())
        return {
            "coturn": {
                "realm": "turn.lab.test",
                "static_auth_secret": TURN_SECRET,
                "min_port": 50000,
                "max_port": 50100,
                "allowed_peer_ips": [host.ns.host_addr],
            }
        }

    def _site_bbb(self, host):
        bbb_standins.seed_host(host)
        server = self.stack.enter_context(bbb_standins.serve(host.ns.host_addr))
        data = bbb_standins.pillar(
            server,
            dialin={"enabled": True, "number": "+49 711 12345678", "token": DIALIN_TOKEN},
            restart_cmd=_restart_cmd(["sh", "-c", "echo restart >> /root/bbb-restarts"]),
        )
        data["coturn"] = {"static_auth_secret": TURN_SECRET}
        return data

    def seed_installers(self, host, installers):
        """Installer trees (copied from DVDs on a real site) in the host's TFTP root."""
        scratch = Path(tempfile.mkdtemp(prefix="pxe-", dir=self.workdir))
        trees = []
        for installer in installers:
            trees.append(scratch / "installers" / installer["directory"])
            ipxe_tree.make_installer(trees[-1], scratch, upper=len(trees) > 1)
        host.copy(trees, "/srv/tftp/installers")
        return scratch

    def seed_example_site(self, host):
        """
        The site data pillar.example itself names, for rendering every formula:
        the ipxe menu's installer trees and the OpenWRT images fritzbox_openwrt
        would flash (the formulas' validators read them; stand-ins that start
        with the images' magic: an EVA record, a UBI image).
        """
        example = {p.stem: yaml.safe_load(p.read_text()) for p in EXAMPLE.glob("*.sls")}
        self.seed_installers(host, example["ipxe"]["ipxe"]["installers"])
        fritzbox = example.get("fritzbox_openwrt", {}).get("fritzbox_openwrt", {})
        for role, head, size in (("kernel", b"\x81\x12\xed\xfe", 96), ("filesystem", b"UBI#", 320)):
            if fritzbox.get(role):
                host.put(fritzbox[role], head + os.urandom(size * 1024 - len(head)))

    def _site_pxe(self, host):
        scratch = self.seed_installers(host, ipxe_tree.INSTALLERS[:1])
        served = scratch / "served"
        served.mkdir()
        (served / "wimboot").write_bytes(ipxe_tree.WIMBOOT_STUB)
        url = self.stack.enter_context(ipxe_tree.http_server(served, addr=host.ns.host_addr))
        subnet = ipaddress.ip_network(f"{host.addr}/30", strict=False).network_address
        return {
            "ipxe": {
                "server": host.addr,
                "wimboot": {
                    "url": f"{url}/wimboot",
                    "sha256": ipxe_tree.sha256(ipxe_tree.WIMBOOT_STUB),
                },
                "installers": [ipxe_tree.INSTALLERS[0]],
                "share": {"guest": False, "user": "wininst", "password": PXE_PASSWORD},
                # dnsmasq needs CAP_NET_ADMIN for DHCP, which these hosts lack (see
                # tests/e2e/test_ipxe.py); tests/integration/test_ipxe.py runs it.
                "dhcp": {"subnet": str(subnet), "proxy": False},
            }
        }
