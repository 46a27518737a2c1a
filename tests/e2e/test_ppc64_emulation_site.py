"""
ppc64_emulation on a seasoned host: a booted Debian 12 host whose site already
installed qemu-user-static (not binfmt-support), has a binfmt.d file, a
profile.d script and a /srv tree of its own, and a binfmt_misc registration of
its own.  The formula is applied over salt-ssh, applied again, and cleaned:

- the site's registration and files are untouched; the second apply reports no
  changes;
- after clean, every file below /etc, /usr/local, /srv, /opt and /var/lib/labsalt
  is as before apply (content hashes, symlink targets, directories);
  qemu-user-static (the site's) stays installed, binfmt-support (installed by
  labsalt, recorded) is purged.

binfmt_misc of a container without its own user namespace is this machine's:
``binfmt_snapshot`` (the functional module's fixture) records this machine's
registrations first and restores exactly them afterwards.
"""

import pytest

from tests.functional.test_ppc64_emulation import BINFMT, binfmt_snapshot  # noqa: F401
from tests.support import snapshot
from tests.support.states import assert_no_changes, assert_ok, changed

NAME = "qemu-ppc64"
SITE_ENTRY = "labsalt-test-site-fmt"
SITE_FILES = {
    "/etc/binfmt.d/site-wasm.conf": ":site-wasm:M::\\x00asm::/usr/local/bin/site-wasm:\n",
    "/etc/profile.d/site.sh": "# site login settings\nexport SITE_ARCH_LAB=1\n",
    "/srv/site/README": "the site's own /srv tree\n",
}


@pytest.fixture(scope="module")
def host(host_factory):
    host = host_factory.start("ppc64-site", packages=["qemu-user-static"])
    for path, text in SITE_FILES.items():
        script = 'mkdir -p "${1%/*}" && cat > "$1"'
        host.run("sh", "-c", script, "sh", path, input=text)
    yield host
    host_factory.stop(host)


def _entry(name):
    try:
        with open(f"{BINFMT}/{name}") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def test_ppc64_emulation_coexists_with_site(host, binfmt_snapshot):  # noqa: F811
    # The site's own registration (made from the host; binfmt_misc is shared).
    host.run("sh", "-c", "grep -q binfmt_misc /proc/mounts || mount -t binfmt_misc binfmt_misc "
             "/proc/sys/fs/binfmt_misc")  # fmt: skip
    line = f":{SITE_ENTRY}:M::\\x00\\x6c\\x61\\x62::/usr/bin/qemu-ppc64-static:"
    host.run("sh", "-c", 'printf "%s" "$1" > /proc/sys/fs/binfmt_misc/register', "sh", line)
    site_entry = _entry(SITE_ENTRY)
    assert site_entry and "qemu-ppc64-static" in site_entry
    before = snapshot.files(host)
    assert snapshot.installed(host, "qemu-user-static") and not snapshot.installed(
        host, "binfmt-support"
    )
    site_pkgs = snapshot.packages(host)

    ret = assert_ok(host.apply("ppc64_emulation"))
    assert changed(ret)
    assert "flags: PF" in (_entry(NAME) or ""), _entry(NAME)
    assert _entry(SITE_ENTRY) == site_entry
    for path, text in SITE_FILES.items():
        assert host.path(path).read_text() == text
    recorded = host.run("cat", "/var/lib/labsalt/ppc64_emulation/installed-packages").stdout
    # binfmt-support and what apt pulled in with it; nothing the site had.
    assert "binfmt-support" in recorded.split() and not set(recorded.split()) & site_pkgs

    assert_no_changes(host.apply("ppc64_emulation"))

    ret = assert_ok(host.apply("ppc64_emulation.clean"))
    assert changed(ret)
    assert _entry(SITE_ENTRY) == site_entry
    assert snapshot.installed(host, "qemu-user-static"), "clean removed the site's qemu-user-static"
    assert not snapshot.installed(host, "binfmt-support"), (
        "clean left the binfmt-support it installed"
    )
    assert snapshot.packages(host) == site_pkgs, "clean left or took packages"
    assert snapshot.diff(before, snapshot.files(host)) == []
    assert_no_changes(host.apply("ppc64_emulation.clean"))
