"""ipxe module logic without Salt's loader: credential checks and the start files."""

import importlib.util

import pytest
from salt.exceptions import SaltInvocationError

from tests.conftest import REPO

spec = importlib.util.spec_from_file_location("ipxe_module", REPO / "_modules" / "ipxe.py")
ipxe = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ipxe)


def params(**share):
    return {
        "server": "192.0.2.5",
        "installers": [{"id": "w10", "key": "w", "title": "W", "directory": "Win10/x64"}],
        "menu": {"default": None, "http_url": None},
        "share": {
            "name": "installers",
            "user": "guest",
            "password": "pw",
            "drive": "S",
            "retries": 5,
            **share,
        },
    }


@pytest.mark.parametrize(
    "field, value", [("password", 'a"b'), ("password", "100%"), ("user", "x\r\ny")]
)
def test_unsafe_credentials_are_refused(field, value):
    with pytest.raises(SaltInvocationError, match=f"ipxe:share:{field}: must not contain"):
        ipxe.validate(params(**{field: value}))


def test_reserved_key_is_refused():
    p = params()
    p["installers"][0]["key"] = "s"
    with pytest.raises(SaltInvocationError, match="ipxe:installers:w10: key 's' is reserved"):
        ipxe.validate(p)


def test_install_cmd_mounts_the_installer_subdirectory():
    text = ipxe.install_cmd(params(), params()["installers"][0])
    assert text.endswith("cmd /k\r\n")
    assert 'net use S: "\\\\192.0.2.5\\installers\\Win10\\x64" "pw" /user:"guest"' in text
    assert "if %tries% geq 5 goto failed" in text


def test_winpeshl_ini_launches_install_cmd_through_cmd_exe():
    lines = ipxe.winpeshl_ini().split("\r\n")
    assert lines[0] == "[LaunchApps]"
    app, args = lines[1].split(", ", 1)
    assert app.endswith("\\System32\\cmd.exe") and args.endswith("\\System32\\install.cmd")


@pytest.mark.parametrize(
    "data, digest",
    [
        (b"", "31d6cfe0d16ae931b73c59d7e0c089c0"),
        (b"abc", "a448017aaf21d8525fc10ae87aa6729d"),
        (b"message digest", "d9130a8164549fe818874806e1c7014b"),
        (b"1234567890" * 8, "e33b4ddc9c38f2199c3e7b164fcc0536"),
    ],
)
def test_md4_matches_rfc1320_vectors(data, digest):
    assert ipxe._md4(data).hex() == digest


def test_nt_hash_is_what_samba_stores():
    assert ipxe.nt_hash("password") == "8846F7EAEE8FB117AD06BDD830B7586C"


def test_user_share_needs_a_password():
    p = params(guest=False, password="")
    with pytest.raises(SaltInvocationError, match="ipxe:share:password: must be set"):
        ipxe.validate(p)


def test_http_entries_load_everything_from_the_http_url():
    p = params()
    p.update(
        menu={"title": "M", "timeout": 5, "default": "w10", "http_url": "http://192.0.2.5/tftp/"},
        wimboot={"file": "wimboot", "args": ""},
    )
    p["installers"][0]["http"] = True
    files = {"w10": [["BCD", "installers/Win10/x64/boot/bcd"]]}
    lines = ipxe.menu(p, files).splitlines()
    assert "choose --timeout 5000 --default w10 target || goto exit" in lines
    entry = lines[lines.index(":w10") :]
    assert entry[2] == "kernel http://192.0.2.5/tftp/wimboot"
    assert entry[3] == "initrd -n BCD http://192.0.2.5/tftp/installers/Win10/x64/boot/bcd BCD"
    assert entry[4] == "initrd -n winpeshl.ini http://192.0.2.5/tftp/ipxe/winpeshl.ini winpeshl.ini"


def test_title_cannot_add_an_ipxe_command():
    p = params()
    p.update(
        menu={"title": "M\nchain http://x/evil", "timeout": 0, "default": None, "http_url": None},
        wimboot={"file": "wimboot", "args": ""},
    )
    p["installers"][0]["title"] = "W && chain http://192.0.2.66/evil.ipxe ${x}\nimgexec evil"
    lines = ipxe.menu(p, {"w10": [["BCD", "b"]]}).splitlines()
    assert "menu M_chain http://x/evil" in lines
    assert not [line for line in lines if line.startswith(("chain", "imgexec"))]
    assert "echo Booting W __ chain http://192.0.2.66/evil.ipxe _{x}_imgexec evil ..." in lines


def test_shell_assignments_are_quoted():
    text = ipxe.shell_assignments({"TFTP_OPTIONS": '--secure"; touch /tmp/x; "'})
    assert text == "TFTP_OPTIONS='--secure\"; touch /tmp/x; \"'\n"


def test_block_is_added_replaced_and_removed_leaving_the_rest():
    site = 'TFTP_USERNAME="tftp"\nTFTP_OPTIONS="--secure -v"\n'
    once = ipxe.block_set(site, "TFTP_DIRECTORY=/srv/tftp\n")
    assert once.startswith(site) and once.endswith("TFTP_DIRECTORY=/srv/tftp\n# END labsalt ipxe\n")
    twice = ipxe.block_set(once + "# a site line added later\n", "TFTP_DIRECTORY=/srv/x\n")
    assert twice.count("# BEGIN labsalt ipxe") == 1 and "/srv/x" in twice
    assert twice.endswith("# a site line added later\n")
    assert ipxe.block_remove(once) == site
    assert ipxe.block_remove(site) == site


def test_check_refuses_create_and_odd_samba_options():
    p = params(guest=True)
    p.update(menu={"default": None, "http_url": None}, tftp={"options": "--secure -c"})
    with pytest.raises(SaltInvocationError, match="ipxe:tftp:options: --create"):
        ipxe.check(p)
    p.update(tftp={"options": "--secure"}, samba={"global": {"log level\n[x]": "1"}})
    with pytest.raises(SaltInvocationError, match="ipxe:samba:global: "):
        ipxe.check(p)


def test_smb_conf_block_goes_at_the_end_of_global():
    site = "[global]\n   workgroup = LAB\n\n[Global]\n   x = y\n[public]\n   path = /srv\n"
    text = ipxe.block_set(site, "include = /etc/samba/labsalt-ipxe.conf", smb_global=True)
    assert "include = /etc/samba/labsalt-ipxe.conf\n# END labsalt ipxe\n[public]\n" in text
    assert ipxe.block_remove(text) == site
    assert ipxe.block_set(text, "include = /x", smb_global=True).count("BEGIN labsalt") == 1
