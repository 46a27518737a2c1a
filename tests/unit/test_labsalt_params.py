"""The shared parameter merge and schema check (_modules/labsalt.py) as plain functions."""

import importlib.util

import pytest

from tests.conftest import REPO

spec = importlib.util.spec_from_file_location("labsalt_mod", REPO / "_modules" / "labsalt.py")
labsalt = importlib.util.module_from_spec(spec)
spec.loader.exec_module(labsalt)

SLOTS = {
    "type": "dict",
    "keys": {
        "slots": {
            "type": "dict",
            "keys": {
                "policy": {"type": "str", "one_of": ["numa", "l3", "single"]},
                "reserve_cores": {"type": "int", "min": 0},
            },
        },
        "dcs": {
            "type": "list",
            "items": {
                "type": "dict",
                "keys": {
                    "name": {"type": "str", "format": "hostname", "required": True},
                    "ipv4": {"type": "str", "format": "ipv4"},
                },
            },
        },
        "extra": {"type": "dict", "values": {"type": "str"}},
    },
}


def test_deep_merge_merges_dicts_and_replaces_lists():
    base = {"a": {"b": 1, "c": [1, 2]}, "d": "x"}
    merged = labsalt.deep_merge(base, {"a": {"c": [3], "e": 4}})
    assert merged == {"a": {"b": 1, "c": [3], "e": 4}, "d": "x"}
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": "x"}  # inputs untouched


def test_valid_data_gives_no_errors():
    data = {
        "slots": {"policy": "l3", "reserve_cores": 2},
        "dcs": [{"name": "dc1.ad.example.org", "ipv4": "198.18.0.2"}],
        "extra": {"anything": "goes"},
    }
    assert labsalt.check_schema(data, SLOTS, "htcondor") == []


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (
            {"slots": {"policy": "numaa"}},
            "htcondor:slots:policy: 'numaa' is not one of numa, l3, single",
        ),
        ({"slots": {"reserve_cores": -1}}, "htcondor:slots:reserve_cores: value -1 is below"),
        ({"slots": {"reserve_cores": True}}, "htcondor:slots:reserve_cores: must be int, not bool"),
        ({"slots": {"polcy": "numa"}}, "htcondor:slots:polcy: unknown key (known: policy,"),
        ({"dcs": [{"ipv4": "198.18.0.2"}]}, "htcondor:dcs:0:name: is required"),
        (
            {"dcs": [{"name": "dc1", "ipv4": "300.1.1.1"}]},
            "htcondor:dcs:0:ipv4: '300.1.1.1' is not an IPv4",
        ),
        ({"dcs": [{"name": "bad name!"}]}, "htcondor:dcs:0:name: 'bad name!' is not a host"),
        ({"extra": {"k": 5}}, "htcondor:extra:k: must be str, not int 5"),
        ({"slots": None}, "htcondor:slots: must be dict, not null"),
    ],
)
def test_errors_name_the_key_and_the_problem(data, error):
    errors = labsalt.check_schema(data, SLOTS, "htcondor")
    assert len(errors) == 1
    assert errors[0].startswith(error)
