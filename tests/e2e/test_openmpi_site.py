"""
The openmpi formula on a seasoned host (issue 16): Debian's OpenMPI installed
before labsalt came, the site's own lines in openmpi-mca-params.conf and a
profile.d script of the site's.  Applied over salt-ssh: the site's parameters
still reach OpenMPI (ompi_info shows them, from the file), the site's profile
script still runs in login shells next to labsalt's, a second apply changes
nothing; clean puts /etc, /usr/local, /srv, /opt and /var/lib/labsalt back as
they were, and Debian's OpenMPI (installed by the site) stays installed.
"""

import pytest

from tests.support import snapshot, states

CONF = "/etc/openmpi/openmpi-mca-params.conf"
SITE_LINES = (
    "\n# site: keep MPI on the loopback in this lab\nbtl_tcp_if_include = lo\nmpi_param_check = 0\n"
)
SITE_PROFILE = "/etc/profile.d/site-modules.sh"
SITE_PROFILE_TEXT = "# the site's environment modules\nexport SITE_MODULES=/opt/site/modules\n"
PILLAR = {"openmpi": {"policy": "core"}}


def ompi_params(host):
    out = host.run("ompi_info", "--parsable", "--level", "9", "--param", "all", "all").stdout
    values = {}
    for line in out.splitlines():
        parts = line.split(":")
        if len(parts) >= 7 and parts[3] == "param" and parts[5] in ("value", "source"):
            values.setdefault(parts[4], {})[parts[5]] = ":".join(parts[6:])
    return values


@pytest.fixture(scope="module")
def host(host_factory):
    host = host_factory.start("mpisite", packages=["openmpi-bin", "hwloc"])
    host.run("sh", "-c", f"cat >> {CONF}", input=SITE_LINES)
    host.run("sh", "-c", f"cat > {SITE_PROFILE}", input=SITE_PROFILE_TEXT)
    return host


def test_openmpi_coexists_with_site(host):
    before = snapshot.files(host)
    site_conf = host.path(CONF).read_text()

    states.assert_ok(host.apply("openmpi", pillar=PILLAR))
    conf = host.path(CONF).read_text()
    assert conf.startswith(site_conf)  # Debian's and the site's lines, as they were
    assert "# BEGIN labsalt openmpi" in conf
    params = ompi_params(host)
    assert params["btl_tcp_if_include"]["value"] == "lo"
    assert params["btl_tcp_if_include"]["source"].startswith(f"file ({CONF}:")
    assert params["mpi_param_check"]["value"] == "false"
    assert params["hwloc_base_binding_policy"]["value"] == "core"
    login = host.run("bash", "-lc", "echo $SITE_MODULES $OMPI_MCA_hwloc_base_binding_policy")
    assert login.stdout.split() == ["/opt/site/modules", "core"]
    assert host.path(SITE_PROFILE).read_text() == SITE_PROFILE_TEXT

    states.assert_no_changes(host.apply("openmpi", pillar=PILLAR))

    states.assert_ok(host.apply("openmpi.clean", pillar=PILLAR))
    assert host.path(CONF).read_text() == site_conf
    assert snapshot.diff(before, snapshot.files(host)) == []
    for package in ("openmpi-bin", "hwloc"):
        status = host.run("dpkg-query", "-W", "-f=${Status}", package).stdout
        assert status == "install ok installed", package


def test_conflicting_site_line_is_refused_and_the_file_stays(host):
    """The site sets the policy itself: labsalt's check refuses to set it twice."""
    host.run("sh", "-c", f"echo 'hwloc_base_binding_policy = socket' >> {CONF}")
    before = host.path(CONF).read_text()
    try:
        ret = states.results(host.apply("openmpi", pillar=PILLAR))
        (mca,) = [v for v in ret.values() if v["__id__"] == "openmpi-mca-params"]
        assert mca["result"] is False
        assert "hwloc_base_binding_policy is also set on line" in mca["comment"]
        assert host.path(CONF).read_text() == before
    finally:
        host.run("sed", "-i", "/^hwloc_base_binding_policy = socket$/d", CONF)
        host.apply("openmpi.clean", pillar=PILLAR)
