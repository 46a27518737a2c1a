"""
The ipxe formula's config states applied for real through Salt's loaders into a
temp root: the served tree, wimboot pinned by sha256, the generated menu and
Windows start files, smb.conf (testparm) and the proxy-DHCP config (dnsmasq).
Bad input fails with one clear error and leaves the live menu as it was.
"""

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support import ipxe_tree
from tests.support.states import assert_no_changes, assert_ok, changed, failed

pytestmark = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("wimcapture", "testparm", "dnsmasq")),
    reason="needs wimtools, samba and dnsmasq-base (scripts/apt/ipxe.txt)",
)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    base = tmp_path_factory.mktemp("ipxe-root")
    ipxe_tree.make_root(base)
    return base


@pytest.fixture(scope="module")
def wimboot(tmp_path_factory):
    """A wimboot stand-in on a loopback HTTP server: (url, sha256, bad url)."""
    served = tmp_path_factory.mktemp("wimboot-http")
    (served / "wimboot").write_bytes(ipxe_tree.WIMBOOT_STUB)
    (served / "wimboot-tampered").write_bytes(ipxe_tree.WIMBOOT_STUB + b"\x90")
    with ipxe_tree.http_server(served) as url:
        yield f"{url}/wimboot", ipxe_tree.sha256(ipxe_tree.WIMBOOT_STUB), f"{url}/wimboot-tampered"


@pytest.fixture(scope="module")
def good_pillar(base, wimboot):
    return ipxe_tree.pillar(base, wimboot[0], wimboot[1])


def apply(modules, pillar, test=False):
    return modules.state.sls("ipxe.config", pillar=pillar, test=test)


def compile_error(ret):
    """The render error of a state run that failed to compile, as one string."""
    errors = getattr(ret, "errors", None) or (ret.raw if isinstance(ret.raw, list) else None)
    assert errors, f"expected a render error, got {ret.raw}"
    return "\n".join(map(str, errors))


@pytest.fixture(scope="module")
def applied(loaders, good_pillar, base):
    """The first real apply; later tests compare against this state."""
    ret = loaders.modules.state.sls("ipxe.config", pillar=good_pillar)
    return ret


def test_first_apply_builds_the_served_tree(applied, base):
    assert_ok(applied.raw)
    root = base / "srv" / "tftp"
    assert (root / "undionly.kpxe").read_bytes() == Path("/usr/lib/ipxe/undionly.kpxe").read_bytes()
    assert (root / "ipxe.efi").stat().st_size > 0
    assert (root / "wimboot").read_bytes() == ipxe_tree.WIMBOOT_STUB
    menu = (root / "menu.ipxe").read_text()
    assert menu.startswith("#!ipxe\n")
    assert "item --key w win10de [w] Windows 10 22H2 (x64, de-DE)" in menu
    assert "item --key e win11en [e] Windows 11 24H2 (x64, en-US)" in menu
    defaults = (base / "etc/default/tftpd-hpa").read_text()
    # The site's (Debian's) lines stay; the formula's block comes last and wins.
    assert defaults.startswith(ipxe_tree.SITE_TFTPD_DEFAULTS)
    block = defaults[len(ipxe_tree.SITE_TFTPD_DEFAULTS) :].splitlines()
    assert block[1:] == [f"TFTP_DIRECTORY={root}", "# END labsalt ipxe"], block
    assert block[0].startswith("# BEGIN labsalt ipxe")
    assert 'TFTP_OPTIONS="--secure"' in defaults  # no --create: read-only


def test_menu_entry_loads_the_seed_files_with_wimboot_names(applied, base):
    menu = (base / "srv/tftp/menu.ipxe").read_text()
    entry = menu.split(":win10de\n")[1].split("\n\n")[0].splitlines()
    d = "installers/Win10_22H2_German_x64"
    assert entry[1:] == [
        "cpuid --ext 29 || goto not_x64",
        "kernel wimboot gui",
        f"initrd -n BCD {d}/boot/bcd BCD",
        f"initrd -n boot.sdi {d}/boot/boot.sdi boot.sdi",
        f"initrd -n boot.wim {d}/sources/boot.wim boot.wim",
        f"initrd -n segmono_boot.ttf {d}/boot/fonts/segmono_boot.ttf segmono_boot.ttf",
        f"initrd -n segoe_slboot.ttf {d}/boot/fonts/segoe_slboot.ttf segoe_slboot.ttf",
        f"initrd -n segoen_slboot.ttf {d}/boot/fonts/segoen_slboot.ttf segoen_slboot.ttf",
        f"initrd -n wgl4_boot.ttf {d}/boot/fonts/wgl4_boot.ttf wgl4_boot.ttf",
        "initrd -n winpeshl.ini ipxe/winpeshl.ini winpeshl.ini",
        "initrd -n install.cmd ipxe/win10de/install.cmd install.cmd",
        "boot || goto failed",
    ]
    # The second tree was copied with upper-case names and has no fonts.
    other = menu.split(":win11en\n")[1].split("\n\n")[0]
    assert "installers/Win11_24H2_English_x64/Boot/BCD BCD" in other
    assert ".ttf" not in other


def test_injected_start_files(applied, base):
    gen = base / "srv/tftp/ipxe"
    assert (gen / "winpeshl.ini").read_bytes() == (
        b"[LaunchApps]\r\n"
        b"%SYSTEMROOT%\\System32\\cmd.exe, /c %SYSTEMROOT%\\System32\\install.cmd\r\n"
    )
    script = (gen / "win10de" / "install.cmd").read_bytes().decode()
    assert "\n" not in script.replace("\r\n", "")  # CRLF only, as cmd.exe wants
    lines = script.splitlines()
    assert lines[2] == "wpeinit"
    assert (
        'net use S: "\\\\198.19.254.1\\installers\\Win10_22H2_German_x64" "s3cr3t-Pa55" '
        '/user:"guest" /persistent:no >nul && goto setup'
    ) in lines
    assert lines[lines.index(":setup") + 1] == "S:\\setup.exe"


def test_password_is_not_in_state_output(applied):
    assert "s3cr3t-Pa55" not in str(applied.raw)


def test_configs_pass_their_checkers(applied, base):
    share = (base / "etc/samba/labsalt-ipxe.conf").read_text()
    assert f"path = {base}/srv/tftp/installers" in share and "read only = yes" in share
    smb = (base / "etc/samba/smb.conf").read_text()
    # One include line at the end of the site's [global], before its first share.
    include = f"\ninclude = {base}/etc/samba/labsalt-ipxe.conf\n# END labsalt ipxe\n[public]\n"
    assert include in smb
    start = smb.index("# BEGIN labsalt ipxe")
    end = smb.index("# END labsalt ipxe\n") + len("# END labsalt ipxe\n")
    assert smb[:start] + smb[end:] == ipxe_tree.SITE_SMB_CONF
    dump = subprocess.run(
        ["testparm", "-s", str(base / "etc/samba/smb.conf")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert "[public]" in dump and "[installers]" in dump and "workgroup = LAB" in dump
    dnsmasq = (base / "etc/labsalt/ipxe-dnsmasq.conf").read_text()
    assert "dhcp-range=198.19.254.0,proxy" in dnsmasq
    assert 'pxe-service=tag:!ipxe,x86PC,"iPXE (BIOS)",undionly.kpxe,198.19.254.1' in dnsmasq
    assert (
        "ExecStart=/usr/sbin/dnsmasq"
        in (base / "etc/systemd/system/labsalt-ipxe-dnsmasq.service").read_text()
    )


def test_second_apply_changes_nothing(applied, modules, good_pillar):
    assert_no_changes(apply(modules, good_pillar).raw)


def test_test_mode_predicts_and_touches_nothing(applied, modules, good_pillar, base):
    pillar = ipxe_tree.pillar(
        base,
        good_pillar["ipxe"]["wimboot"]["url"],
        good_pillar["ipxe"]["wimboot"]["sha256"],
        menu={"title": "Renamed menu"},
    )
    menu = base / "srv/tftp/menu.ipxe"
    before = menu.read_bytes()
    ret = apply(modules, pillar, test=True).raw
    assert_ok(ret)
    predicted = changed(ret)
    assert [k for k in predicted if "menu.ipxe" in k], predicted
    assert all(v["result"] is None for v in predicted.values())
    assert menu.read_bytes() == before


@pytest.fixture
def live_menu(applied, base):
    """The live menu's bytes before a bad apply, to prove it is untouched after."""
    menu = base / "srv/tftp/menu.ipxe"
    return menu, menu.read_bytes(), menu.stat().st_mtime_ns


def assert_untouched(live_menu):
    menu, data, mtime = live_menu
    assert menu.read_bytes() == data and menu.stat().st_mtime_ns == mtime


def test_missing_boot_wim_is_one_clear_error(modules, good_pillar, base, live_menu):
    broken = base / "srv/tftp/installers/Broken_x64"
    ipxe_tree.make_installer(broken, base)
    (broken / "sources" / "boot.wim").unlink()
    pillar = {"ipxe": dict(good_pillar["ipxe"])}
    pillar["ipxe"]["installers"] = [
        *good_pillar["ipxe"]["installers"],
        {"id": "broken", "title": "Broken", "directory": "Broken_x64"},
    ]
    error = compile_error(apply(modules, pillar))
    assert f"ipxe:installers:broken: {broken}/sources/boot.wim is missing" in error
    assert_untouched(live_menu)


def test_duplicate_menu_key_is_one_clear_error(modules, good_pillar, live_menu):
    pillar = {"ipxe": dict(good_pillar["ipxe"])}
    twin = dict(good_pillar["ipxe"]["installers"][1], key="w")
    pillar["ipxe"]["installers"] = [good_pillar["ipxe"]["installers"][0], twin]
    error = compile_error(apply(modules, pillar))
    assert "ipxe:installers: key 'w' is used by both 'win10de' and 'win11en'" in error
    assert_untouched(live_menu)


def test_duplicate_id_is_one_clear_error(modules, good_pillar, live_menu):
    pillar = {"ipxe": dict(good_pillar["ipxe"])}
    twin = dict(good_pillar["ipxe"]["installers"][0], key="z")
    pillar["ipxe"]["installers"] = [good_pillar["ipxe"]["installers"][0], twin]
    error = compile_error(apply(modules, pillar))
    assert "ipxe:installers: id 'win10de' appears more than once" in error
    assert_untouched(live_menu)


def test_wimboot_sha256_mismatch_keeps_old_wimboot_and_menu(
    modules, good_pillar, wimboot, base, live_menu
):
    pillar = {"ipxe": dict(good_pillar["ipxe"])}
    # The pinned digest is the good one; the URL now serves other bytes.
    pillar["ipxe"]["wimboot"] = {"url": wimboot[2], "sha256": "ab" * 32}
    pillar["ipxe"]["menu"] = {"title": "Would be a new menu"}
    ret = apply(modules, pillar).raw
    bad = failed(ret)
    wimboot_fail = [v["comment"] for k, v in bad.items() if "ipxe-wimboot" in k]
    assert wimboot_fail and "ab" * 32 in wimboot_fail[0], bad
    assert "checksum" in wimboot_fail[0].lower() or "hash" in wimboot_fail[0].lower()
    menu_states = {k: v for k, v in bad.items() if "menu.ipxe" in k}
    assert menu_states and "requisite" in next(iter(menu_states.values()))["comment"].lower()
    assert (base / "srv/tftp/wimboot").read_bytes() == ipxe_tree.WIMBOOT_STUB
    assert_untouched(live_menu)


def test_missing_wimboot_pin_is_one_clear_error(modules, good_pillar, live_menu):
    pillar = {"ipxe": dict(good_pillar["ipxe"])}
    pillar["ipxe"]["wimboot"] = {"url": good_pillar["ipxe"]["wimboot"]["url"], "sha256": None}
    error = compile_error(apply(modules, pillar))
    assert "ipxe:wimboot: url and sha256 must both be set" in error
    assert_untouched(live_menu)


def test_broken_smb_conf_is_refused_by_testparm(modules, good_pillar, base):
    smb = base / "etc/samba/labsalt-ipxe.conf"
    before = smb.read_bytes()
    pillar = {"ipxe": dict(good_pillar["ipxe"])}
    pillar["ipxe"]["samba"] = dict(good_pillar["ipxe"]["samba"])
    pillar["ipxe"]["samba"]["global"] = {
        **good_pillar["ipxe"]["samba"]["global"],
        "server role": "no such role",
    }
    ret = apply(modules, pillar).raw
    bad = failed(ret)
    assert [k for k in bad if "ipxe-smb-conf" in k], bad
    assert smb.read_bytes() == before


def test_bad_pillar_type_names_the_key(modules, good_pillar, live_menu):
    pillar = {"ipxe": dict(good_pillar["ipxe"])}
    pillar["ipxe"]["installers"] = [dict(good_pillar["ipxe"]["installers"][0], arch="amd64")]
    error = compile_error(apply(modules, pillar))
    assert "ipxe:installers:0:arch: 'amd64' is not one of x64, x86, arm64" in error
    assert_untouched(live_menu)


def make_iso(tmp_path, with_wim=True):
    """An installer ISO (UDF, like Windows media; Boot/BCD in upper case)."""
    src = tmp_path / "iso-src"
    ipxe_tree.make_installer(src, tmp_path, upper=True)
    if not with_wim:
        (src / "sources" / "boot.wim").unlink()
    iso = tmp_path / "Win11_24H2.iso"
    subprocess.run(
        ["genisoimage", "-quiet", "-udf", "-J", "-R", "-V", "WIN11", "-o", str(iso), str(src)],
        check=True,
    )
    return iso


def iso_pillar(base, wimboot, iso):
    pillar = ipxe_tree.pillar(base, wimboot[0], wimboot[1])
    pillar["ipxe"]["installers"].append(
        {"id": "win11iso", "key": "i", "title": "From ISO", "directory": "W11_iso", "iso": str(iso)}
    )
    return pillar


@pytest.mark.skipif(not shutil.which("7z"), reason="needs p7zip-full")
def test_installer_iso_is_extracted_once(modules, wimboot, tmp_path):
    ipxe_tree.make_root(tmp_path)
    pillar = iso_pillar(tmp_path, wimboot, make_iso(tmp_path))
    assert_ok(apply(modules, pillar).raw)
    tree = tmp_path / "srv/tftp/installers/W11_iso"
    assert (tree / "sources/boot.wim").read_bytes().startswith(ipxe_tree.WIM_MAGIC)
    assert (tree / "setup.exe").is_file()
    menu = (tmp_path / "srv/tftp/menu.ipxe").read_text()
    assert "initrd -n BCD installers/W11_iso/Boot/BCD BCD" in menu
    assert_no_changes(apply(modules, pillar).raw)


@pytest.mark.skipif(not shutil.which("7z"), reason="needs p7zip-full")
def test_iso_without_boot_wim_is_one_clear_error(modules, wimboot, tmp_path):
    ipxe_tree.make_root(tmp_path)
    iso = make_iso(tmp_path, with_wim=False)
    error = compile_error(apply(modules, iso_pillar(tmp_path, wimboot, iso)))
    assert f"ipxe:installers:win11iso: {iso}/sources/boot.wim is missing" in error
    assert not (tmp_path / "srv/tftp/installers/W11_iso").exists()
    assert not (tmp_path / "srv/tftp/menu.ipxe").exists()
