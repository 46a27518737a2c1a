"""
The htcondor formula through Salt's real loaders: the slot config it renders for
real machines' snapshots, parsed back by HTCondor's own parser (the ``htcondor2``
bindings) and compared with the topology; the config checker refusing what
HTCondor refuses; bad pillar failing the render with one line; test mode.
"""

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.support import hwloc_corpus, sysfs_snapshot
from tests.support.hwloc_corpus import CURATED
from tests.support.states import results

CHECKER = REPO / "formulas" / "htcondor" / "files" / "condor-config-check"
TEMPLATE = REPO / "formulas" / "htcondor" / "files" / "slots.conf.jinja"


@pytest.fixture(scope="module")
def snapshots(tmp_path_factory):
    corpus = hwloc_corpus.corpus()
    roots = {name: corpus / "snapshots" / name for name in CURATED}
    base = tmp_path_factory.mktemp("zen")
    for name, machine in sysfs_snapshot.MACHINES.items():
        roots[name] = sysfs_snapshot.write_snapshot(machine, base / name)
    return roots


def htcondor_params(requests):
    """
    Values HTCondor's parser reads from config files: ``{path: [names]}`` ->
    ``{path: {name: value or None}}``, one interpreter re-reading each file.
    """
    code = (
        "import json, os, sys\n"
        "requests = json.load(sys.stdin)\n"
        "out = {}\n"
        "for path, names in requests.items():\n"
        "    os.environ['CONDOR_CONFIG'] = path\n"
        "    import htcondor2\n"
        "    htcondor2.reload_config()\n"
        "    out[path] = {n: htcondor2.param.get(n) for n in names}\n"
        "print(json.dumps(out))\n"
    )
    first = next(iter(requests))
    done = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps({str(k): v for k, v in requests.items()}),
        env={**os.environ, "CONDOR_CONFIG": str(first)},
        capture_output=True,
        text=True,
        check=True,
    )
    return {k: v for k, v in json.loads(done.stdout).items()}


def check(path):
    return subprocess.run(
        [sys.executable, str(CHECKER), str(path)], capture_output=True, text=True, check=False
    )


def render_slots(modules, plan, policy):
    """The slots file as file.managed renders it (Salt's jinja renderer, same context)."""
    return modules.file.apply_template_on_contents(
        TEMPLATE.read_text(),
        template="jinja",
        context={"slots": plan, "policy": policy},
        defaults={},
        saltenv="base",
    )


def hwloc_slots(root, policy):
    """
    The expected slots by hwloc's answer, not by ``topology.slot_plan``: Debian's
    lstopo on the snapshot (``hwloc_corpus.lstopo_objects``), then one slot per
    NUMA node with CPUs (numa) or per L3 cache (l3) holding the whole cores
    inside it.  ``[(cores, cpus, memory_mb)]`` in CPU order; memory_mb for numa
    is the node's ``local_memory`` (None for l3 and where a node with CPUs has no
    memory of its own: the plan's even share there is checked by its sum only).
    """
    objects = hwloc_corpus.lstopo_objects(root)
    cores = objects["Core"] or {frozenset({cpu}) for cpu in objects["PU"]}
    if policy == "numa":
        nodes = [v for _, v in sorted(objects["NUMANode"].items()) if v[0]]
        groups = [(cpus, kb // 1024 if all(m for _, m in nodes) else None) for cpus, kb in nodes]
    else:
        groups = [(cpus, None) for cpus in objects["L3Cache"]]
    slots = []
    for cpus, memory in groups:
        inside = [core for core in cores if core <= cpus]
        if inside:
            slots.append((len(inside), frozenset().union(*inside), memory))
    total_mb = sum(kb // 1024 for _, kb in objects["NUMANode"].values())
    return sorted(slots, key=lambda slot: min(slot[1])), total_mb


@pytest.mark.parametrize("policy", ["numa", "l3", "single"])
def test_rendered_slots_parse_back_to_the_topology(modules, snapshots, tmp_path, policy):
    """What HTCondor's parser reads from the rendered file against hwloc's answer."""
    plans, requests, expected = {}, {}, {}
    for name, root in snapshots.items():
        slots, total_mb = hwloc_slots(root, policy)
        if policy == "l3" and not slots:
            with pytest.raises(Exception, match="L3 cache information"):
                modules.topology.slot_plan(policy, root=str(root))
            continue
        plan = modules.topology.slot_plan(policy, root=str(root))
        conf = tmp_path / f"{name}-{policy}.conf"
        conf.write_text(render_slots(modules, plan, policy))
        names = ["NUM_SLOTS", "ENFORCE_CPU_AFFINITY"]
        for slot in plan:
            n = slot["id"]
            names += [f"SLOT_TYPE_{n}", f"SLOT_TYPE_{n}_PARTITIONABLE", f"SLOT{n}_CPU_AFFINITY"]
        plans[str(conf)], requests[str(conf)] = plan, names
        expected[str(conf)] = (slots, total_mb)
    # the curated corpus machines and the Threadripper snapshots; l3: those with L3 data
    assert len(plans) == {"numa": 20, "l3": 13, "single": 20}[policy]
    for conf, values in htcondor_params(requests).items():
        plan = plans[conf]
        slots, total_mb = expected[conf]
        if policy == "single":  # the notebook's whole-machine slot: no pinning
            assert int(values["NUM_SLOTS"]) == 1
            assert values["SLOT_TYPE_1"] == "cpus=100%, memory=100%"
            assert values["SLOT_TYPE_1_PARTITIONABLE"] == "True"
            assert values["SLOT1_CPU_AFFINITY"] is None
            assert values["ENFORCE_CPU_AFFINITY"] is None
            continue
        assert int(values["NUM_SLOTS"]) == len(slots), conf
        assert values["ENFORCE_CPU_AFFINITY"] == "True"
        read = []
        for slot in plan:
            n = slot["id"]
            assert values[f"SLOT_TYPE_{n}_PARTITIONABLE"] == "True"
            # HTCondor reads the list with atoi() per comma-separated item.
            pinned = frozenset(int(item) for item in values[f"SLOT{n}_CPU_AFFINITY"].split(","))
            kind = re.fullmatch(r"cpus=(\d+), memory=(\d+)", values[f"SLOT_TYPE_{n}"])
            assert kind, values[f"SLOT_TYPE_{n}"]
            read.append((int(kind[1]), pinned, int(kind[2])))
        read.sort(key=lambda slot: min(slot[1]))
        assert [(c, cpus) for c, cpus, _ in read] == [(c, cpus) for c, cpus, _ in slots], conf
        for (_, _, memory), (_, _, want) in zip(read, slots, strict=True):
            assert memory == want or want is None, conf
        assert sum(memory for _, _, memory in read) <= total_mb, conf
    # and the formula's checker (its check_cmd) accepts them
    for conf in list(plans)[:3]:
        result = check(conf)
        assert result.returncode == 0, result.stderr


def test_1950x_config_is_the_lab_notebooks(modules, snapshots, tmp_path):
    plan = modules.topology.slot_plan("numa", root=str(snapshots["threadripper-1950x"]))
    conf = tmp_path / "slots.conf"
    conf.write_text(render_slots(modules, plan, "numa"))
    names = ["SLOT1_CPU_AFFINITY", "SLOT2_CPU_AFFINITY", "SLOT_TYPE_1", "SLOT_TYPE_2"]
    values = htcondor_params({conf: names})[str(conf)]
    assert {int(c) for c in values["SLOT1_CPU_AFFINITY"].split(",")} == {
        *range(8),
        *range(16, 24),
    }
    assert {int(c) for c in values["SLOT2_CPU_AFFINITY"].split(",")} == {
        *range(8, 16),
        *range(24, 32),
    }
    assert values["SLOT_TYPE_1"].startswith("cpus=8,")
    assert values["SLOT_TYPE_2"].startswith("cpus=8,")


def test_cli_condor_output_is_what_the_formula_writes(modules, snapshots):
    root = snapshots["threadripper-1950x"]
    cli = subprocess.run(
        [sys.executable, "-m", "labsalt", "topology", "--root", str(root), "--condor"],
        capture_output=True,
        text=True,
        check=True,
    )
    plan = modules.topology.slot_plan("numa", root=str(root))
    assert cli.stdout == render_slots(modules, plan, "numa")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("NUM_SLOTS = 2\nif $(FOO\n", "HTCondor rejects"),
        ("NUM_SLOTS = 1\nif true\nX = 1\n", "endif"),
        ("SLOT1_CPU_AFFINITY = 0-7,16-23\n", "only comma-separated CPU numbers"),
        ("SLOT_TYPE_1 = cpus=8 memory\n", "not a list of resource=amount"),
    ],
)
def test_checker_refuses_what_htcondor_would_not_read(tmp_path, text, message):
    conf = tmp_path / "bad.conf"
    conf.write_text(text)
    result = check(conf)
    assert result.returncode != 0
    assert message in result.stderr


def test_checker_fails_closed_without_a_parser(tmp_path):
    conf = tmp_path / "good.conf"
    conf.write_text("NUM_SLOTS = 1\n")
    python = "/usr/bin/python3"  # the system Python has neither bindings nor condor_config_val
    probe = subprocess.run([python, "-c", "import htcondor2"], capture_output=True, check=False)
    if probe.returncode == 0:
        pytest.skip("the system Python has the htcondor bindings")
    result = subprocess.run(
        [python, str(CHECKER), str(conf)],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 3
    assert "no HTCondor configuration parser" in result.stderr


def test_formula_in_test_mode_changes_nothing(modules, snapshots):
    live = "/etc/condor/config.d/50-labsalt-slots.conf"
    if os.path.exists(live):
        pytest.skip(f"{live} exists on this machine")
    pillar = {"htcondor": {"topology_root": str(snapshots["threadripper-1950x"])}}
    ret = modules.state.sls("htcondor.config.file", test=True, pillar=pillar)
    slots = [r for r in results(ret).values() if r["name"] == live]
    assert slots, ret
    assert slots[0]["result"] is None
    assert slots[0]["changes"] == {"newfile": live}
    assert not os.path.exists(live)


@pytest.mark.parametrize(
    ("slots", "message"),
    [
        ({"policy": "numaa"}, "htcondor:slots:policy: 'numaa' is not one of numa, l3, single"),
        ({"reserve_cores": 99}, "reserve_cores: 99 reserved but this machine has only 16"),
        ({"exclude_nodes": [5]}, r"NUMA node(s) [5] do not exist"),
        ({"reserve_cores": "two"}, "htcondor:slots:reserve_cores: must be int"),
    ],
)
def test_bad_pillar_is_one_clear_error(modules, snapshots, slots, message):
    pillar = {"htcondor": {"topology_root": str(snapshots["threadripper-1950x"]), "slots": slots}}
    ret = modules.state.sls("htcondor.config.file", test=True, pillar=pillar)
    text = json.dumps(getattr(ret, "raw", ret))
    assert message in text.replace("\\'", "'"), text


def test_not_a_sysfs_root_is_one_clear_error(modules, tmp_path):
    ret = modules.state.sls(
        "htcondor.config.file", test=True, pillar={"htcondor": {"topology_root": str(tmp_path)}}
    )
    assert f"{tmp_path} is not a sysfs tree" in json.dumps(getattr(ret, "raw", ret))


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "labsalt", "topology", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_cli_map_json_and_svg(snapshots, tmp_path):
    root = str(snapshots["threadripper-1950x"])
    text = _cli("--root", root).stdout
    assert "NUMA node 0: CPUs 0-7,16-23" in text
    assert "L3 1 (8 MiB): CPUs 4-7,20-23" in text
    assert "[4,20]  [5,21]  [6,22]  [7,23]" in text
    assert "slot 2: 8 cores, CPUs 8-15,24-31" in text
    assert "export OMPI_MCA_hwloc_base_binding_policy=numa" in text
    data = json.loads(_cli("--root", root, "--json").stdout)
    assert [(n["id"], n["cpus"], n["memory_kb"]) for n in data["numa_nodes"]] == [
        (0, "0-7,16-23", 16370604),
        (1, "8-15,24-31", 16512232),
    ]
    assert [g["cpus"] for g in data["l3_groups"]][0] == "0-3,16-19"
    assert data["packages"] == [
        {"id": 0, "cpus": "0-31", "cores": 16, "numa_nodes": [0, 1]},
    ]
    svg = tmp_path / "map.svg"
    assert _cli("--root", root, "--svg", str(svg)).returncode == 0
    assert_1950x_picture(svg)
    # the picture in the README: held against the same facts, not against this output
    assert_1950x_picture(REPO / "formulas" / "htcondor" / "threadripper-1950x.svg")


def _boxes(path):
    """Every box of an SVG map: (its topmost text, (x0, y0, x1, y1), texts in it)."""
    import xml.etree.ElementTree as ET  # noqa: PLC0415

    ns = "{http://www.w3.org/2000/svg}"
    elements = list(ET.parse(path).getroot())
    texts = [
        (float(e.get("x")), float(e.get("y")), e.text) for e in elements if e.tag == f"{ns}text"
    ]
    boxes = []
    for e in elements:
        if e.tag != f"{ns}rect" or e.get("width") == "100%":
            continue
        x, y = float(e.get("x")), float(e.get("y"))
        box = (x, y, x + float(e.get("width")), y + float(e.get("height")))
        inside = sorted(
            (ty, t) for tx, ty, t in texts if box[0] <= tx <= box[2] and box[1] <= ty <= box[3]
        )
        # a box's label is its topmost text
        boxes.append((inside[0][1] if inside else "", box, [t for _, t in inside]))
    return boxes


def assert_1950x_picture(path):
    """
    The Threadripper 1950X map against facts about the chip, not a golden file:
    AMD's 1950X is one package of 2 dies = 2 NUMA nodes of 8 cores, each die 2
    CCXes = 4 L3 groups of 4 cores; Linux numbers SMT siblings n and n+16 (the
    lab notebook's lscpu); memory per node as its sysfs snapshot says.
    """
    boxes = _boxes(path)
    cores = {label: texts for label, _, texts in boxes if label.startswith("core ")}
    assert sorted(cores, key=lambda t: int(t.split()[1])) == [f"core {n}" for n in range(16)]
    for label, texts in cores.items():
        n = int(label.split()[1])
        assert f"PU {n},{n + 16}" in texts, label
    l3 = {label: box for label, box, _ in boxes if label.startswith("L3 ")}
    assert sorted(l3) == ["L3 0", "L3 1", "L3 2", "L3 3"]

    def within(box, outer):
        return (
            outer[0] <= box[0] and outer[1] <= box[1] and box[2] <= outer[2] and box[3] <= outer[3]
        )

    core_boxes = {label: box for label, box, _ in boxes if label.startswith("core ")}
    for k in range(4):
        inside = {c for c, box in core_boxes.items() if within(box, l3[f"L3 {k}"])}
        assert inside == {f"core {n}" for n in range(4 * k, 4 * k + 4)}, k
    numa = {
        label.split("  ")[0]: (label, box) for label, box, _ in boxes if label.startswith("NUMA")
    }
    assert sorted(numa) == ["NUMA node 0", "NUMA node 1"]
    assert numa["NUMA node 0"][0].endswith(f"{16370604 / 1024**2:.1f} GiB")
    assert numa["NUMA node 1"][0].endswith(f"{16512232 / 1024**2:.1f} GiB")
    for node, groups in (("NUMA node 0", ("L3 0", "L3 1")), ("NUMA node 1", ("L3 2", "L3 3"))):
        held = {g for g, box in l3.items() if within(box, numa[node][1])}
        assert held == set(groups), node
    text = Path(path).read_text()
    assert "HTCondor slot 1: 8 cores, CPUs 0-7,16-23" in text
    assert "HTCondor slot 2: 8 cores, CPUs 8-15,24-31" in text


def test_cli_errors_are_one_line(tmp_path, snapshots):
    done = _cli("--root", str(tmp_path), "--json")
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert "is not a sysfs tree" in done.stderr
    done = _cli("--root", str(snapshots["threadripper-1950x"]), "--reserve-cores", "16")
    assert done.returncode == 2
    assert "16 reserved but this machine has only 16" in done.stderr


def test_grains_through_salts_loader(loaders, modules):
    grains = loaders.grains
    topo = modules.topology.discover("/")
    assert grains["numa_nodes"] == len(topo["numa_nodes"])
    assert grains["numa"]["0"]["cpus"] == topo["numa_nodes"][0]["cpus"]
    assert grains["l3"] == [g["cpus"] for g in topo["l3_groups"]]


def _apt_lists():
    lists = "/var/lib/apt/lists"
    return {n: os.stat(os.path.join(lists, n)).st_mtime_ns for n in os.listdir(lists)}


def test_package_install_predicts_repository_and_package(modules):
    """Test mode predicts the repository, key, pin and package without touching apt's lists."""
    lists = _apt_lists()
    ret = results(modules.state.sls("htcondor.package.install", test=True))
    assert _apt_lists() == lists
    by_id = {v["__id__"]: v for v in ret.values()}
    repo = by_id["htcondor-package-repo"]
    assert repo["result"] is None
    sources = "/etc/apt/sources.list.d/labsalt-htcondor.list"
    assert repo["name"] == sources
    assert not os.path.exists(sources)
    keyring = by_id["htcondor-package-keyring"]
    assert keyring["name"] == "/usr/share/keyrings/labsalt-htcondor-archive-keyring.asc"
    assert keyring["result"] is None
    assert not os.path.exists(keyring["name"])
    package = by_id["htcondor-package"]
    assert package["result"] is None
    assert package["comment"].startswith("condor would be installed from https://")
    pin = by_id["htcondor-package-pin"]
    assert pin["name"] == "/etc/apt/preferences.d/labsalt-htcondor"
    assert not os.path.exists(pin["name"])


# --------------------------------------------------------------------------- repository key


@pytest.fixture(scope="module")
def signing_key(tmp_path_factory):
    """A throw-away OpenPGP key made by gpg: (armored file, binary file, fingerprint)."""
    home = tmp_path_factory.mktemp("gnupg")
    home.chmod(0o700)
    gpg = ["gpg", "--homedir", str(home), "--batch", "--quiet"]
    subprocess.run(
        [*gpg, "--passphrase", "", "--quick-gen-key", "labsalt test <t@example.org>", "ed25519"],
        check=True,
        capture_output=True,
    )
    armored, binary = home / "key.asc", home / "key.gpg"
    subprocess.run([*gpg, "--armor", "--output", str(armored), "--export"], check=True)
    subprocess.run([*gpg, "--output", str(binary), "--export"], check=True)
    return armored, binary, _fingerprints(binary)


def _fingerprints(path):
    with tempfile.TemporaryDirectory() as home:
        out = subprocess.run(
            ["gpg", "--homedir", home, "--show-keys", "--with-colons", str(path)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    return [line.split(":")[9] for line in out.splitlines() if line.startswith("fpr:")]


@pytest.mark.parametrize("source_form", ["armored", "binary"])
@pytest.mark.parametrize("keyring_name", ["key.asc", "key.gpg"])
def test_keyring_in_the_form_its_name_says(
    modules, signing_key, tmp_path, source_form, keyring_name
):
    armored, binary, fingerprints = signing_key
    source = armored if source_form == "armored" else binary
    keyring = tmp_path / "keyrings" / keyring_name
    modules.htcondor.install_keyring(str(keyring), str(source))
    data = keyring.read_bytes()
    if keyring_name.endswith(".asc"):
        assert data.startswith(b"-----BEGIN PGP PUBLIC KEY BLOCK-----")
    else:
        assert data == binary.read_bytes()
    assert _fingerprints(keyring) == fingerprints
    assert oct(keyring.stat().st_mode & 0o777) == "0o644"
    assert modules.htcondor.keyring_status(str(keyring)) == {"present": True, "current": True}


def test_keyring_state_fetches_once_and_predicts(modules, signing_key, tmp_path):
    armored, _, _ = signing_key
    keyring = tmp_path / "labsalt-htcondor.asc"
    predicted = modules.state.single(
        "htcondor.keyring", name=str(keyring), source=str(armored), test=True
    )
    (ret,) = results(predicted).values()
    assert ret["result"] is None and "would be created" in ret["comment"]
    assert not keyring.exists()
    done = modules.state.single("htcondor.keyring", name=str(keyring), source=str(armored))
    (ret,) = results(done).values()
    assert ret["result"] is True and ret["changes"]
    # present: no fetch at all, even from a source that no longer exists
    (ret,) = results(
        modules.state.single("htcondor.keyring", name=str(keyring), source=str(tmp_path / "gone"))
    ).values()
    assert ret["result"] is True and not ret["changes"]


def test_keyring_refuses_wrong_sha256_and_non_keys(modules, signing_key, tmp_path):
    armored, _, _ = signing_key
    keyring = tmp_path / "k.gpg"
    with pytest.raises(Exception, match="has sha256"):
        modules.htcondor.install_keyring(str(keyring), str(armored), "0" * 64)
    junk = tmp_path / "junk"
    junk.write_text("<html>not a key</html>")
    with pytest.raises(Exception, match="not an OpenPGP public key"):
        modules.htcondor.install_keyring(str(keyring), str(junk))
    assert not keyring.exists()
