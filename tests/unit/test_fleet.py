"""labsalt/fleet.py: reading salt-ssh's per-host JSON stream and sorting the returns."""

import io

import pytest

from labsalt import fleet


def state(id_, result=True, changes=None):
    return {"result": result, "changes": changes or {}, "__id__": id_, "comment": ""}


def test_documents_are_read_as_they_arrive_even_when_split_across_lines():
    stream = io.StringIO('{\n  "a": true\n}\n{"b":\n [1, 2]}\n')
    assert list(fleet.iter_documents(stream)) == [{"a": True}, {"b": [1, 2]}]


def test_non_json_output_is_an_error():
    with pytest.raises(ValueError, match="not JSON: oops"):
        list(fleet.iter_documents(io.StringIO('{"a": 1}\noops\n')))


@pytest.mark.parametrize(
    ("ret", "state_run", "status", "note"),
    [
        ({"x": state("x"), "y": state("y", changes={"diff": "new"})}, True, "ok", ""),
        ({"x": state("x", result=False)}, True, "failed", ""),
        (["Rendering SLS 'base:probe' failed: probe:port: bad"], True, "error", "Rendering SLS"),
        ([{"source": "defaults.yaml"}], False, "ok", ""),  # a function that returns a list
        (
            "ssh: connect to host 198.18.0.2 port 22: Connection refused",
            True,
            "unreachable",
            "ssh:",
        ),
        (
            {"retcode": 255, "stderr": "Permission denied (publickey).", "stdout": ""},
            True,
            "unreachable",
            "Permission denied",
        ),
        ({"retcode": 1, "stderr": "Traceback ...\nKeyError: 'x'", "stdout": ""}, True, "error", ""),
        (True, False, "ok", ""),
        # a state run whose return is none of the known shapes is never "ok"
        ("Pillar failed to render with the following messages:", True, "error", "unrecognised"),
        ({"x": {"comment": "no result key"}}, True, "error", "unrecognised return"),
        (None, True, "error", "unrecognised return: None"),
        (True, True, "error", "unrecognised return: True"),
    ],
)
def test_classify(ret, state_run, status, note):
    result = fleet.classify("h1", ret, state_run)
    assert result.status == status
    assert result.note.startswith(note)


def test_state_counts_and_summary():
    results = [
        fleet.classify("ws1", {"x": state("x", changes={"a": 1}), "y": state("y")}),
        fleet.classify("ws2", {"x": state("x", result=False)}),
        fleet.classify("gone", "ssh: connect to host 198.18.0.6 port 22: No route to host"),
    ]
    assert (results[0].total, results[0].changed, results[0].failed) == (2, 1, 0)
    text = fleet.summary(results, 3.0)
    assert text.splitlines() == [
        "Summary (3 hosts, 3.0s):",
        "  gone  unreachable  ssh: connect to host 198.18.0.6 port 22: No route to host",
        "  ws1   ok           2 states, 1 changed, 0 failed",
        "  ws2   failed       1 states, 0 changed, 1 failed",
        "  1 ok, 1 failed, 1 unreachable",
    ]


@pytest.mark.parametrize(
    ("target", "kind", "hosts"),
    [
        ("ws*", None, ["ws01", "ws02"]),
        ("ws01,nas1", "list", ["ws01", "nas1"]),
        ("^ws0[2-9]$", "pcre", ["ws02"]),
        ("nothing*", None, []),
        ("*", "grain", None),  # decided by the hosts' grains: salt-ssh knows, not we
    ],
)
def test_roster_targets_for_the_pre_check(tmp_path, target, kind, hosts):
    from labsalt.cli import roster_targets  # noqa: PLC0415

    roster = tmp_path / "roster"
    roster.write_text("ws01: {host: 198.18.0.1}\nws02: {host: 198.18.0.2}\nnas1: {host: x}\n")
    assert roster_targets(roster, target, kind) == hosts


def test_templated_roster_is_left_to_salt_ssh(tmp_path):
    from labsalt.cli import roster_targets  # noqa: PLC0415

    roster = tmp_path / "roster"
    roster.write_text(
        "{% for i in range(3) %}\nws0{{ i }}: {host: 198.18.0.{{ i }}}\n{% endfor %}\n"
    )
    assert roster_targets(roster, "*") is None
