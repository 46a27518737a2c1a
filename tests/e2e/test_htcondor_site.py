"""
The htcondor formula on a seasoned host (issue 16): a site that already runs
HTCondor with a config.d file of its own.  HTCondor has no Debian package here,
so "already runs HTCondor" is a stand-in: a ``condor`` package built with
dpkg-deb that ships only a condor_config reading config.d, plus HTCondor's
parser (the ``htcondor2`` bindings); the pillar says ``repo:manage: false``
(the site brings its own repository).  What this proves: the formula writes
only its own config.d files next to the site's, the site's settings still
reach HTCondor's parser together with labsalt's, a second apply changes
nothing, and clean leaves /etc, /usr/local, /srv, /opt and /var/lib/labsalt as
they were and the site's package installed.  It does not run HTCondor daemons.
"""

import pytest

from tests.e2e.test_htcondor import (
    SNAPSHOT,
    _copy,
    copy_bindings,
    host_params,
    install_standin,
    standin_condor_deb,
)
from tests.support import snapshot, states, sysfs_snapshot

PILLAR = {"htcondor": {"topology_root": SNAPSHOT, "repo": {"manage": False}}}
SITE_CONF = "/etc/condor/config.d/10-site.conf"
SITE_TEXT = "# the site's own pool settings\nCONDOR_HOST = cm.site.example\nSTART = TRUE\n"


@pytest.fixture(scope="module")
def host(host_factory, tmp_path_factory):
    topology = sysfs_snapshot.write_snapshot(
        sysfs_snapshot.THREADRIPPER_1950X, tmp_path_factory.mktemp("snap") / "threadripper-1950x"
    )
    host = host_factory.start("condorsite")
    install_standin(host, standin_condor_deb(tmp_path_factory.mktemp("deb")))
    copy_bindings(host)
    _copy(host, [topology], "/srv/topology")
    host.run("sh", "-c", f"cat > {SITE_CONF}", input=SITE_TEXT)
    return host


def test_htcondor_coexists_with_site(host):
    before = snapshot.files(host)

    ret = host.apply("htcondor", pillar=PILLAR)
    states.assert_ok(ret)
    assert host.path(SITE_CONF).read_text() == SITE_TEXT
    # HTCondor's parser reads the site's file and labsalt's together
    values = host_params(host, "/etc/condor/condor_config", ["CONDOR_HOST", "NUM_SLOTS", "START"])
    assert values["CONDOR_HOST"] == "cm.site.example"
    assert values["NUM_SLOTS"] == "2"
    assert values["START"] in (True, "TRUE", "True")
    written = {v["name"] for v in states.results(ret).values() if v.get("changes")}
    assert all(
        not p.startswith("/etc/") or p.startswith("/etc/condor/config.d/50-labsalt-")
        for p in written
    ), written

    states.assert_no_changes(host.apply("htcondor", pillar=PILLAR))

    states.assert_ok(host.apply("htcondor.clean", pillar=PILLAR))
    assert snapshot.diff(before, snapshot.files(host)) == []
    assert "install ok installed" in host.run("dpkg-query", "-W", "-f=${Status}", "condor").stdout
