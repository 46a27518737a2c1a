"""
Hostile and mistaken pillar (issue 15): every case of tests/data/hostile/<formula>.yaml
is refused by ``labsalt apply <formula> --test`` with exit code 2 and exactly one
stderr line ``labsalt: <formula>:<key>: <problem>``, no traceback, no payload run,
and nothing written anywhere on the filesystem.

How "nothing written" is checked: the CLI runs in a private mount namespace where
/etc, /var, /usr, /srv, /opt, /root, /home, /tmp and /run are overlays
(tests/support/hostile.py ``run_isolated``); whatever it writes lands in the
overlays' upper layers, which are listed afterwards.  The only writes allowed are
labsalt's private config directory (its generated Salt config and Salt's cache
of the pre-check).  This is exact (every byte written is seen, not only files
whose mtime moved), immune to other processes writing on the machine meanwhile,
and a payload that did run would leave its file in an upper layer, not on the
host.

A property test (hypothesis) does the same for values generated from the
formulas' schemas: for one schema node, a value that breaks its constraint.
"""

import math
import os
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import hostile

REPO = Path(__file__).resolve().parents[2]
LABSALT = Path(sys.executable).parent / "labsalt"
CASES = hostile.load_cases()


def run_case(tmp_path, formula, pillar, highstate=False):
    """labsalt apply on a pillar of one file; returns (proc, paths written outside conf)."""
    conf = tmp_path / "conf"
    pillar_dir = hostile.write_pillar(tmp_path / "pillar", formula, pillar)
    args = [str(LABSALT), "apply", *([] if highstate else [formula]), "--test"]
    args += ["--pillar", str(pillar_dir)]
    env = dict(os.environ, LABSALT_CONFIG_DIR=str(conf), LABSALT_ROOT=str(REPO))
    proc, written = hostile.run_isolated(args, env=env, timeout=300)
    return proc, hostile.outside(written, [conf])


def assert_refused(proc, written, expected):
    output = proc.stdout + proc.stderr
    assert "Traceback" not in output, output[-3000:]
    lines = proc.stderr.splitlines()
    assert proc.returncode == 2, (proc.returncode, output[-3000:])
    assert len(lines) == 1, proc.stderr[-3000:]
    assert lines[0].startswith("labsalt: " + expected), (expected, lines[0][:500])
    assert not os.path.exists(hostile.PWNED)
    assert not any(p == hostile.PWNED for p in written), written
    assert written == [], f"written outside labsalt's private config dir: {written[:20]}"


def test_case_files_are_well_formed():
    ids = {}
    for formula, case in CASES:
        assert set(case) <= {"id", "set", "error", "repeat", "long"}, case
        assert isinstance(case.get("id"), str) and case["id"], case
        assert isinstance(case.get("error"), str) and case["error"], case
        key = (formula, case["id"])
        assert key not in ids, f"duplicate id {key}"
        ids[key] = case


@pytest.mark.skipif(not CASES, reason="no case files in tests/data/hostile")
@pytest.mark.parametrize(
    ("formula", "case"), CASES, ids=[f"{formula}-{case.get('id')}" for formula, case in CASES]
)
def test_hostile_pillar_is_refused(tmp_path, formula, case):
    pillar = hostile.case_pillar(formula, case)
    proc, written = run_case(tmp_path, formula, pillar, highstate=formula == "labsalt")
    assert_refused(proc, written, case["error"])


# --------------------------------------------------------------------------- property test


def _schemas():
    found = {}
    for path in sorted(REPO.glob("formulas/*/parameters/schema.yaml")):
        found[path.parts[-3]] = yaml.safe_load(path.read_text())
    return found


def _leaves(schema, path=()):
    """(key path, node) of every schema node a bad value can be put at (dict keys only)."""
    if not isinstance(schema, dict):
        return
    for key, node in (schema.get("keys") or {}).items():
        if not isinstance(node, dict):
            continue
        yield (*path, key), node
        if node.get("type") == "dict":
            yield from _leaves(node, (*path, key))


def _violations(node):
    """Values that break ``node``'s constraint (one strategy per rule the node has)."""
    kind = node.get("type", "any")
    wrong = {
        "str": st.one_of(st.integers(), st.lists(st.integers(), max_size=2)),
        "int": st.one_of(st.text(min_size=1, max_size=5), st.booleans()),
        "number": st.one_of(st.text(min_size=1, max_size=5), st.just(math.nan)),
        "bool": st.one_of(st.text(min_size=2, max_size=5), st.integers(min_value=2)),
        "list": st.one_of(st.text(min_size=1, max_size=5), st.dictionaries(st.text(), st.text())),
        "dict": st.one_of(st.text(min_size=1, max_size=5), st.integers()),
    }
    options = []
    if kind in wrong:
        options.append(wrong[kind])
    if kind == "str" and not node.get("multiline"):
        payload = "; touch " + hostile.PWNED
        options.append(st.text(max_size=8).map(lambda t, p=payload: f"{t}\n{p}"))
    if kind == "str":
        options.append(
            st.just("x" * 5000) if "max" not in node else st.just("x" * (node["max"] + 1))
        )
    if kind in ("int", "number"):
        options.append(st.sampled_from([math.inf, -math.inf, math.nan, 10**20]))
        if "min" in node:
            low = int(node["min"]) - 1
            options.append(st.integers(max_value=low, min_value=low - 10**6))
        if "max" in node:
            high = int(node["max"]) + 1
            options.append(st.integers(min_value=high, max_value=high + 10**6))
    if "one_of" in node:
        allowed = node["one_of"]
        options.append(
            st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8).filter(
                lambda t, a=allowed: t not in a
            )
        )
    if kind == "dict" and node.get("keys") and "values" not in node:
        options.append(st.just({"no_such_key_x": 1}))
    return options


def _cases():
    cases = []
    for formula, schema in _schemas().items():
        for path, node in _leaves(schema):
            for strategy in _violations(node):
                cases.append((formula, path, strategy))
    return cases


PROPERTY_CASES = _cases()


@pytest.mark.skipif(not PROPERTY_CASES, reason="no formula schemas")
@settings(
    max_examples=12,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_schema_violations_are_refused(tmp_path_factory, data):
    formula, path, strategy = data.draw(st.sampled_from(PROPERTY_CASES), label="schema node")
    value = data.draw(strategy, label="bad value")
    pillar = hostile.example_pillar(formula)
    pillar.setdefault(formula, {})
    hostile.set_path(pillar[formula], list(path), value)
    tmp_path = tmp_path_factory.mktemp("prop")
    proc, written = run_case(tmp_path, formula, pillar)
    assert_refused(proc, written, f"{formula}:")


def test_isolation_sees_every_write_and_keeps_none(tmp_path):
    # the check above is only as good as run_isolated: a payload's file, a changed
    # file and a deleted one are all listed, and none of them reaches the host
    victim = Path("/etc/hostname")
    before = victim.read_bytes()
    proc, written = hostile.run_isolated(
        ["sh", "-c", f"touch {hostile.PWNED} && echo x >> /etc/hostname && rm -f /etc/hostname"]
    )
    assert proc.returncode == 0, proc.stderr
    assert hostile.PWNED in written
    assert "/etc/hostname" in written
    assert not os.path.exists(hostile.PWNED)
    assert victim.read_bytes() == before
