"""
eva.flash and eva.flashed against a stand-in for AVM's EVA FTP server
(tests/support/eva_ftpd.py, pyftpdlib) running inside a network namespace.

The box's address is a parameter: these tests only ever use the namespace's
address, never 192.168.178.1.
"""

import ftplib
import json
import os
import socket
import sys
import threading
import time

import pytest
import yaml
from salt.exceptions import CommandExecutionError, SaltInvocationError

from tests.conftest import REPO
from tests.support import netns
from tests.support.states import assert_no_changes, assert_ok, changed

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")

PREFIX = "openwrt-lantiq-xrx200-avm_fritz3370-rev2"
# What OpenWRT's images start with: eva-kernel.bin is lzma2eva output (EVA record
# magic 0xfeed1281, little-endian), eva-filesystem.bin a UBI image.
HEAD = {"kernel": b"\x81\x12\xed\xfe", "filesystem": b"UBI#"}


@pytest.fixture(scope="module")
def ns():
    with netns.namespace("eva") as space:
        yield space


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("openwrt")
    made = {}
    for chip in ("micron", "hynix"):
        for role, size in (("kernel", 96 * 1024), ("filesystem", 320 * 1024)):
            path = root / f"{PREFIX}-{chip}-squashfs-eva-{role}.bin"
            path.write_bytes(HEAD[role] + os.urandom(size - 4))
            made[chip, role] = str(path)
    return made


@pytest.fixture
def eva(ns, tmp_path):
    """
    Start the EVA stand-in in the namespace: eva(box="micron"|"hynix"|"plain",
    env={...}, unset=[...], delay=..., abort_after=..., erase_phase=...).  The
    erase of each partition lasts until server["release"] exists (the test
    decides; 60 s at most), which the fixture creates at once unless hold_erase.
    """
    started = []

    def start(*, box="micron", env=None, unset=(), delay=0.0, abort_after=None,
              abort_on="mtd0", wait=True, erase_phase="before-150", hold_erase=False):  # fmt: skip
        store, log, release = tmp_path / "flash", tmp_path / "eva.log", tmp_path / "erased"
        store.mkdir(exist_ok=True)
        if not hold_erase:
            release.touch()
        cmd = [sys.executable, "-m", "tests.support.eva_ftpd", "--addr", ns.addr, "--box", box]
        cmd += ["--store", store, "--log", log, "--delay", delay, "--abort-on", abort_on]
        cmd += ["--erase-seconds", 60, "--erase-release", release, "--erase-phase", erase_phase]
        for name, value in (env or {}).items():
            cmd += ["--env", f"{name}={value}"]
        for name in unset:
            cmd += ["--unset", name]
        if abort_after is not None:
            cmd += ["--abort-after", abort_after]
        started.append(ns.popen([str(c) for c in cmd], cwd=REPO))
        server = {"store": store, "log": log, "addr": ns.addr, "release": release}
        deadline = time.monotonic() + 10
        while wait and not (log.exists() and "listening" in log.read_text()):
            assert time.monotonic() < deadline, "EVA stand-in did not start"
            time.sleep(0.05)
        return server

    yield start
    for proc in started:
        proc.terminate()
        proc.wait(timeout=5)


def _log(server):
    if not server["log"].exists():
        return []
    return [json.loads(line) for line in server["log"].read_text().splitlines()]


def _commands(server):
    return [item["cmd"] for item in _log(server) if "cmd" in item]


def _flash(modules, server, images, chip="micron", **kwargs):
    args = {"address": server["addr"], "window": 10, "retry_interval": 0.1, "flash_chip": chip}
    args.update(kwargs)
    return modules.eva.flash(images[chip, "kernel"], images[chip, "filesystem"], **args)


def _raw_dialogue(addr, commands):
    """What the stand-in sends, line by line, with no FTP client in between."""
    with socket.create_connection((addr, 21), timeout=5) as sock:
        reader = sock.makefile("r", encoding="ascii", newline="\r\n")
        lines = [reader.readline()]
        for command in commands:
            sock.sendall(f"{command}\r\n".encode())
            while True:
                line = reader.readline()
                lines.append(line)
                if line[:3].isdigit() and line[3:4] == " ":
                    break
        return [line.rstrip("\r\n") for line in lines]


def test_stand_in_speaks_evas_dialogue(eva):
    """The stand-in against the published transcripts (EVA-PROVENANCE.md), not against eva.py."""
    server = eva()
    lines = _raw_dialogue(
        server["addr"],
        ["USER adam2", "PASS adam2", "SYST", "GETENV HWRevision", "GETENV mtd4", "MEDIA FLSH"],
    )
    assert lines == [
        "220 ADAM2 FTP Server ready",
        "331 Password required for adam2",
        "230 User adam2 successfully logged in",
        "215 AVM EVA Version 1.1186 0x0 0x741D",
        "HWRevision            175",
        "200 GETENV command successful",
        "501 mtd4 environment variable not set.",
        "200 Media set to MEDIA_FLASH",
    ]
    # and so Python's ftplib alone cannot read a GETENV answer: eva.py needs its own reader
    ftp = ftplib.FTP(server["addr"], "adam2", "adam2", timeout=5)
    with pytest.raises(ftplib.error_proto):
        ftp.sendcmd("GETENV ProductID")
    ftp.close()


def test_flash_sends_evas_sequence(modules, eva, images):
    server = eva()
    result = _flash(modules, server, images, hwrevisions=[175])
    seq = [c for c in _commands(server) if c.split()[0] not in ("PASV", "EPSV")]
    assert seq == [
        "USER adam2",
        "PASS adam2",
        "SYST",
        "GETENV ProductID",
        "GETENV HWRevision",
        "GETENV HWSubRevision",
        "GETENV bootloaderVersion",
        "GETENV HardwareFeatures",
        "GETENV flashsize",
        "GETENV mtd0",
        "GETENV mtd1",
        "SETENV linux_fs_start 0",
        "TYPE I",
        "MEDIA FLSH",
        "TYPE I",  # ftplib repeats it before each upload
        "STOR mtd1",
        "TYPE I",
        "STOR mtd0",
        "REBOOT",
    ]
    for role, partition in (("kernel", "mtd1"), ("filesystem", "mtd0")):
        with open(images["micron", role], "rb") as handle:
            assert (server["store"] / partition).read_bytes() == handle.read()
    assert result["rebooted"] is True
    assert result["system"].startswith("AVM EVA Version 1.1186")
    env = result["environment"]
    assert env["ProductID"] == "Fritz_Box_3370" and env["bootloaderVersion"] == "1.1186"
    assert env["HardwareFeatures"] == "nand=0x2CF1809502,cpu=0x0"
    assert env["mtd0"] is None  # "501 ... not set": no value, no error
    assert (result["flash_chip"], result["flash_chip_source"]) == ("micron", "box")
    assert [u["partition"] for u in result["uploads"]] == ["mtd1", "mtd0"]
    assert result["uploads"][1]["bytes"] == 320 * 1024
    assert all(u["reply"] == "226 Transfer complete" for u in result["uploads"])
    (reboot,) = [item for item in _log(server) if item.get("rebooted")]
    assert reboot["environment"]["linux_fs_start"] == "0"


def test_ftp_server_that_is_not_eva_is_refused(modules, eva, images):
    server = eva(box="plain")
    with pytest.raises(CommandExecutionError) as info:
        _flash(modules, server, images)
    message = str(info.value)
    assert "is not AVM's EVA bootloader (SYST answered '215 UNIX Type: L8'" in message
    assert "\n" not in message
    assert _commands(server)[-1] == "SYST"
    with pytest.raises(CommandExecutionError, match="is not AVM's EVA bootloader"):
        modules.eva.environment(address=server["addr"], window=5)


@pytest.mark.parametrize(("box", "image"), [("hynix", "micron"), ("micron", "hynix")])
def test_images_for_another_nand_than_the_box_reports_are_refused(modules, eva, images, box, image):
    """Pillar says the images' chip; the box's own environment says otherwise: the box wins."""
    server = eva(box=box)
    with pytest.raises(CommandExecutionError) as info:
        _flash(modules, server, images, chip=image)
    message = str(info.value)
    assert f"is built for {image} NAND, but the box reports {box}" in message
    assert "HardwareFeatures" in message and "nothing was uploaded" in message
    commands = _commands(server)
    assert "GETENV HardwareFeatures" in commands
    assert not [c for c in commands if c.startswith(("SETENV", "MEDIA", "STOR", "REBOOT"))]
    assert not list(server["store"].iterdir())


def test_hynix_box_takes_hynix_images(modules, eva, images):
    server = eva(box="hynix")
    result = _flash(modules, server, images, chip="hynix")
    assert (result["flash_chip"], result["flash_chip_source"]) == ("hynix", "box")
    assert result["rebooted"] is True


def test_box_reporting_no_nand_falls_back_to_pillar(modules, eva, images):
    server = eva(unset=["HardwareFeatures"])
    result = _flash(modules, server, images)
    assert (result["flash_chip"], result["flash_chip_source"]) == ("micron", "pillar")


@pytest.mark.parametrize("phase", ["before-150", "before-226"])
def test_long_erase_is_survived(modules, eva, images, phase):
    """
    EVA erases the partition before it answers (silent on the control connection).
    The client's command timeout is 1 s; the test holds the erase of mtd1 for
    3 s after it began (a floor, not a window) and only then lets it end.
    """
    server = eva(erase_phase=phase, hold_erase=True)
    outcome = {}

    def run():
        try:
            outcome["result"] = _flash(modules, server, images, timeout=1, transfer_timeout=30)
        except Exception as exc:  # noqa: BLE001  (reported by the assertion below)
            outcome["error"] = exc

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 20
    while not any(item.get("erasing") == "mtd1" for item in _log(server)):
        assert time.monotonic() < deadline and worker.is_alive(), outcome
        time.sleep(0.05)
    time.sleep(3)
    server["release"].touch()
    worker.join(timeout=30)
    assert "error" not in outcome, outcome.get("error")
    assert outcome["result"]["rebooted"] is True
    erased = [item["erased"] for item in _log(server) if "erased" in item]
    assert erased == ["mtd1", "mtd0"]
    with open(images["micron", "kernel"], "rb") as handle:
        assert (server["store"] / "mtd1").read_bytes() == handle.read()


def test_other_model_is_refused_before_any_upload(modules, eva, images):
    server = eva(env={"ProductID": "Fritz_Box_7490"})
    with pytest.raises(
        CommandExecutionError, match="ProductID 'Fritz_Box_7490', not 'Fritz_Box_3370'"
    ):
        _flash(modules, server, images)
    commands = _commands(server)
    assert "GETENV ProductID" in commands
    assert not [c for c in commands if c.startswith(("SETENV", "STOR", "MEDIA", "REBOOT"))]
    assert not list(server["store"].iterdir())


def test_other_hardware_revision_is_refused(modules, eva, images):
    server = eva(env={"HWRevision": "139"})
    with pytest.raises(CommandExecutionError, match="HWRevision '139', expected one of 175"):
        _flash(modules, server, images, hwrevisions=[175])
    assert not [c for c in _commands(server) if c.startswith(("SETENV", "STOR"))]


def test_image_for_other_flash_chip_is_refused_before_connecting(modules, eva, images):
    server = eva()
    with pytest.raises(SaltInvocationError, match="built for micron flash, but this box has hynix"):
        modules.eva.flash(
            images["micron", "kernel"], images["micron", "filesystem"],
            address=server["addr"], flash_chip="hynix", window=2,
        )  # fmt: skip
    assert _commands(server) == []


def test_swapped_images_are_refused(modules, images):
    with pytest.raises(SaltInvocationError, match="swapped"):
        modules.eva.check_images(images["micron", "filesystem"], images["micron", "kernel"])


def test_image_larger_than_partition_is_refused(modules, eva, images):
    server = eva(env={"mtd1": "0x00100000,0x00110000"})  # 64 KiB
    with pytest.raises(CommandExecutionError, match="mtd1 holds 65536"):
        _flash(modules, server, images)
    assert not [c for c in _commands(server) if c.startswith("STOR")]


def test_interrupted_upload_is_reported(modules, eva, images):
    server = eva(abort_after=100 * 1024, abort_on="mtd0")
    with pytest.raises(CommandExecutionError) as info:
        _flash(modules, server, images)
    message = str(info.value)
    assert "to mtd0 was interrupted after" in message and "of 327680 bytes" in message
    assert "power-cycle it and flash again" in message and "\n" not in message
    commands = _commands(server)
    assert "STOR mtd1" in commands and "STOR mtd0" in commands
    assert "REBOOT" not in commands
    assert any(item.get("abort") == "mtd0" for item in _log(server))
    assert (server["store"] / "mtd0").stat().st_size < 320 * 1024


def test_erase_longer_than_transfer_timeout_is_one_clear_error(modules, eva, images):
    """The erase outlasts transfer_timeout (10 s, its minimum): reported, no REBOOT."""
    server = eva(hold_erase=True)
    started = time.monotonic()
    with pytest.raises(CommandExecutionError) as info:
        _flash(modules, server, images, timeout=1, transfer_timeout=10)
    assert time.monotonic() - started >= 10
    message = str(info.value)
    assert "to mtd1 was interrupted after 0 of 98304 bytes" in message, message
    assert "TimeoutError" in message and "\n" not in message
    assert any(item.get("erasing") == "mtd1" for item in _log(server))
    assert "REBOOT" not in _commands(server)


def test_waits_for_the_short_ftp_window(modules, eva, images):
    """EVA is not listening yet when the flash starts: connect is retried until it is."""
    server = eva(delay=1.5, wait=False)
    result = _flash(modules, server, images)
    assert result["rebooted"] is True
    assert _log(server)[0] == {"listening": True}


def test_window_passes_without_eva(modules, ns, images):
    with pytest.raises(CommandExecutionError, match="no EVA FTP server answered .* within 1 s"):
        modules.eva.flash(
            images["micron", "kernel"], images["micron", "filesystem"],
            address=ns.addr, port=2121, window=1, retry_interval=0.2, flash_chip="micron",
        )  # fmt: skip


def test_wrong_password_is_one_clear_error(modules, eva, images):
    server = eva()
    with pytest.raises(CommandExecutionError, match="refused the login for user 'adam2'"):
        _flash(modules, server, images, password="not-adam2")
    assert "PASS ****" in _commands(server)


def test_environment_reads_without_changing(modules, eva):
    server = eva()
    env = modules.eva.environment(address=server["addr"], window=5)
    assert env["ProductID"] == "Fritz_Box_3370" and env["bootloaderVersion"] == "1.1186"
    assert env["mtd0"] is None and "urlader-version" not in env
    assert not [c for c in _commands(server) if c.startswith(("SETENV", "STOR", "REBOOT"))]


def test_flashed_state_flashes_once(modules, eva, images, tmp_path):
    server = eva()
    pillar = {
        "fritzbox_openwrt": {
            "box": f"lt-fritz-{os.getpid()}",
            "address": server["addr"],
            "password": "adam2",
            "flash_chip": "micron",
            "kernel": images["micron", "kernel"],
            "filesystem": images["micron", "filesystem"],
            "window": 10,
            "retry_interval": 0.1,
        }
    }
    predicted = assert_ok(modules.state.sls("fritzbox_openwrt", pillar=pillar, test=True).raw)
    assert changed(predicted) and _commands(server) == []
    ret = assert_ok(modules.state.sls("fritzbox_openwrt", pillar=pillar).raw)
    (state,) = ret.values()
    assert state["changes"]["rebooted"] is True and "mtd0" in state["changes"]["uploads"]
    assert "Fritz_Box_3370 rev 175" in state["comment"]
    assert_no_changes(modules.state.sls("fritzbox_openwrt", pillar=pillar).raw)
    assert _commands(server).count("STOR mtd0") == 1
    assert_ok(modules.state.sls("fritzbox_openwrt.clean", pillar=pillar).raw)


@pytest.mark.parametrize("formula", ["ppc64_emulation", "vbox_egress"])
def test_example_pillar_passes_the_schema(modules, formula):
    """pillar.example/<formula>.sls (used by the functional fixtures) is valid."""
    data = modules.labsalt.mapdata(formula)
    assert data and "lookup" not in data


def test_example_pillar_without_images_is_one_error_line(modules):
    """The example names images in /srv/openwrt that this machine does not have."""
    data = modules.labsalt.mapdata("fritzbox_openwrt", validate=False)
    schema = yaml.safe_load(
        (REPO / "formulas" / "fritzbox_openwrt" / "parameters" / "schema.yaml").read_text()
    )
    assert modules.labsalt.check_schema(data, schema, "fritzbox_openwrt") == []
    assert not os.path.exists(data["kernel"])
    with pytest.raises(SaltInvocationError) as info:
        modules.labsalt.mapdata("fritzbox_openwrt")
    message = str(info.value)
    assert message.startswith("fritzbox_openwrt:kernel: kernel image /srv/openwrt/")
    assert "does not exist" in message and "\n" not in message


def _pillar(images, **over):
    data = {
        "flash_chip": "micron",
        "kernel": images["micron", "kernel"],
        "filesystem": images["micron", "filesystem"],
    }
    data.update(over)
    return data


@pytest.mark.parametrize(
    ("over", "key", "problem"),
    [
        ({"kernel": "/etc/passwd"}, "kernel", "has no EVA (lzma2eva) or uImage magic"),
        ({"filesystem": "/etc/passwd"}, "filesystem", "has no UBI or squashfs magic"),
        ({"kernel": "/dev/zero"}, "kernel", "is not a regular file"),
        ({"kernel": "/etc"}, "kernel", "is not a regular file"),
        ({"kernel": "/proc/kmsg"}, "kernel", "is not a regular file"),
        ({"kernel": "/nonexistent/k.bin"}, "kernel", "does not exist"),
        ({"tiny": True}, "filesystem", "bytes; a filesystem image has 4096 to"),
        ({"swap": True}, "kernel", "(UBI magic): kernel and filesystem swapped?"),
    ],
)
def test_validator_checks_images_before_anything(modules, images, over, key, problem):
    over = dict(over)
    if over.pop("swap", False):
        over = {"kernel": images["micron", "filesystem"], "filesystem": images["micron", "kernel"]}
    if over.pop("tiny", False):
        tiny = images["micron", "filesystem"].replace("filesystem.bin", "tiny-filesystem.bin")
        with open(tiny, "wb") as handle:
            handle.write(b"UBI#" + bytes(100))
        over = {"filesystem": tiny}
    with pytest.raises(SaltInvocationError) as info:
        modules.eva.validate(_pillar(images, **over))
    assert str(info.value).startswith(f"fritzbox_openwrt:{key}: "), info.value
    assert problem in str(info.value)


def test_validator_accepts_openwrt_images(modules, images):
    assert modules.eva.validate(_pillar(images)) is True


def test_state_refuses_passwd_as_kernel_with_one_line(modules, states, images):
    """kernel: /etc/passwd never gets to 'would be flashed', in test mode or not."""
    pillar = {"fritzbox_openwrt": _pillar(images, kernel="/etc/passwd")}
    ret = modules.state.sls("fritzbox_openwrt", pillar=pillar, test=True).raw
    text = str(ret)
    assert "fritzbox_openwrt:kernel: " in text and "would be flashed" not in text
    ret = states.eva.flashed(
        name="lt-fritz-bad",
        kernel="/etc/passwd",
        filesystem=images["micron", "filesystem"],
        flash_chip="micron",
    )
    assert ret["result"] is False and "\n" not in ret["comment"]
    assert ret["comment"].startswith("kernel image /etc/passwd has no EVA")


@pytest.mark.parametrize("window", ["nan", float("nan"), float("inf"), 0, 1e9, "120; ls"])
def test_environment_refuses_bad_window_at_once(modules, window):
    """eva.environment window=nan used to retry forever (a NaN deadline never passes)."""
    started = time.monotonic()
    with pytest.raises(SaltInvocationError, match="window"):
        modules.eva.environment(address="198.18.0.1", window=window)
    assert time.monotonic() - started < 1


def test_flash_refuses_bad_numbers_and_address(modules, images):
    with pytest.raises(SaltInvocationError, match="retry_interval"):
        modules.eva.flash(
            images["micron", "kernel"], images["micron", "filesystem"],
            address="198.18.0.1", retry_interval=float("nan"), flash_chip="micron",
        )  # fmt: skip
    with pytest.raises(SaltInvocationError, match="address"):
        modules.eva.environment(address="192.168.178.1; touch /tmp/labsalt-pwned", window=1)


@pytest.mark.parametrize(
    ("name", "lines", "value"),
    [
        # the AR7 wiki's transcript (EVA-PROVENANCE.md, source A)
        ("mtd0", ["mtd0                  0x900a0000,0x903f0000"], "0x900a0000,0x903f0000"),
        # a blank line before the 200, as some emulators send it
        ("mtd1", ["mtd1                  0x90010000,0x900a0000", ""], "0x90010000,0x900a0000"),
        ("linux_fs_start", ["linux_fs_start"], ""),
        ("mtd1", ["mtd10                 0x0,0x1"], None),
    ],
)
def test_getenv_value_lines(modules, name, lines, value):
    assert modules.eva.parse_getenv(name, lines) == value


@pytest.mark.parametrize(
    ("features", "vendor"),
    [
        ("nand=0xC2F1809502,cpu=0x979", "macronix"),  # a 7530's RETR env (source B)
        ("nand=0x2CF1809502,cpu=0x0", "micron"),
        ("cpu=0x0,nand=0xADF1801D00", "hynix"),
        ("nand=0x9bF1", "unknown (0x9b)"),
        ("cpu=0x979", None),
        (None, None),
    ],
)
def test_nand_vendor_from_hardware_features(modules, features, vendor):
    assert modules.eva.nand_vendor(features) == vendor
