"""spindown's pure logic: hdparm -S values and trace_pipe lines captured on a 6.18 kernel."""

import importlib.util

import pytest
from salt.exceptions import SaltInvocationError

from tests.conftest import REPO

spec = importlib.util.spec_from_file_location("spindown_module", REPO / "_modules/spindown.py")
spindown = importlib.util.module_from_spec(spec)
spec.loader.exec_module(spindown)


@pytest.mark.parametrize(
    ("value", "meaning"),
    [
        (0, "never (spin-down off)"),
        (1, "5 s"),
        (120, "10 min"),
        (240, "20 min"),
        (241, "30 min"),
        (242, "1 h"),
        (251, "5 h 30 min"),
        (252, "21 min"),
        (253, "vendor-defined (8-12 h)"),
        (255, "21 min 15 s"),
    ],
)
def test_spindown_time_reads_as_hdparm_documents(value, meaning):
    assert spindown.describe_spindown_time(value) == meaning


@pytest.mark.parametrize("value", [-1, 254, 256, True, "120"])
def test_spindown_time_outside_hdparm_range_is_refused(value):
    with pytest.raises(SaltInvocationError, match="spindown_time"):
        spindown.describe_spindown_time(value)


def test_trace_lines_parse_with_dashes_in_thread_names():
    lines = (REPO / "tests/data/spindown/trace_pipe.txt").read_text().splitlines()
    parsed = [spindown.TRACE_LINE.match(line) for line in lines]
    assert all(parsed)
    assert [(m["comm"].strip(), m["pid"], m["event"]) for m in parsed] == [
        ("cat", "15196", "block_bio_queue"),
        ("python", "15194", "block_bio_queue"),
        ("python", "15194", "writeback_mark_inode_dirty"),
        ("python", "15194", "writeback_mark_inode_dirty"),
        ("jbd2/loop0-8", "15187", "block_bio_queue"),
        ("jbd2/loop0-8", "15187", "writeback_mark_inode_dirty"),
    ]
    assert parsed[4]["rest"].split()[1] == "WSM"


def test_unit_names_keep_only_characters_systemd_allows():
    assert spindown._unit_name("/dev/disk/by-id/ata-ST3000DM001-1CH166_Z1F2ABCD") == (
        "hdparm-ata-ST3000DM001-1CH166_Z1F2ABCD.service"
    )
    assert (
        spindown._unit_name("/dev/disk/by-id/usb-WD My Book#1") == "hdparm-usb-WD_My_Book_1.service"
    )
