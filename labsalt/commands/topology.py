"""
``labsalt topology``: the machine as a person reads it (packages, NUMA nodes, L3
groups, cores with their SMT siblings), the HTCondor slot plan and MPI binding the
htcondor formula derives from it, as text, JSON, the formula's config, or an SVG map.
"""

import argparse
import html
import json
import sys
import tempfile
from pathlib import Path

import jinja2

from labsalt.config import LabsaltError, suite_root, write_config
from labsalt.loader import ext_dir

PALETTE = ("#8dd3c7", "#fdb462", "#bebada", "#fb8072", "#80b1d3", "#b3de69", "#fccde5", "#d9d9d9")


def _topology_module():
    """
    The topology execution module (``_modules/topology.py``) through Salt's
    loader, as the grain loads it: its functions by their short names.
    """
    import types  # noqa: PLC0415

    import salt.config  # noqa: PLC0415  (Salt's import is slow: only when needed)
    import salt.loader  # noqa: PLC0415

    opts = salt.config.minion_config(None)
    opts["module_dirs"] = [str(ext_dir("modules"))]
    # Salt's default extension_modules is machine-wide (/var/cache/salt/minion/
    # extmods) and searched first: it may hold another checkout's copy
    with tempfile.TemporaryDirectory(prefix="labsalt-topology-") as private:
        opts["extension_modules"] = private
        funcs = salt.loader.raw_mod(opts, "topology", None)
    return types.SimpleNamespace(**{name.split(".", 1)[1]: f for name, f in funcs.items()})


def _slot_parameters(args):
    """htcondor:slots from the formula's merged parameters (defaults + pillar), then the flags."""
    root = suite_root()
    pillar = Path(args.pillar) if args.pillar else root / "pillar.example"
    conf = write_config(root, pillar)
    from labsalt.cli import precheck  # noqa: PLC0415  (cli imports this module)

    # The same merge, schema and validator as the formula's render: one line on error.
    slots = precheck(conf, ["htcondor"], show=True, show_secrets=True)["mapdata"]["htcondor"]
    slots = slots["slots"]
    for key in ("policy", "reserve_cores", "exclude_nodes", "memory_cap_mb"):
        value = getattr(args, key)
        if value is not None:
            slots[key] = value
    return slots


def _plan(module, topo, slots):
    from salt.exceptions import SaltInvocationError  # noqa: PLC0415

    excluded = set(slots.get("exclude_nodes") or [])
    nodes = {n["id"] for n in topo["numa_nodes"]}
    if nodes and excluded >= nodes:
        raise LabsaltError(
            f"htcondor:slots:exclude_nodes: excluding {sorted(excluded)} leaves no NUMA node "
            f"for HTCondor (nodes: {sorted(nodes)})"
        )
    try:
        return module.slot_plan(
            slots["policy"],
            reserve_cores=slots["reserve_cores"],
            exclude_nodes=slots["exclude_nodes"],
            memory_cap_mb=slots["memory_cap_mb"],
            topo=topo,
        )
    except SaltInvocationError as exc:
        raise LabsaltError(str(exc)) from exc


def condor_config(plan, policy):
    """The slots file exactly as the formula writes it (its own Jinja template)."""
    template = suite_root() / "formulas" / "htcondor" / "files" / "slots.conf.jinja"
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.from_string(template.read_text()).render(slots=plan, policy=policy)


def _gib(kb):
    return f"{kb / 1024**2:.1f} GiB"


def text_report(module, topo, plan, policy):
    parse = module.parse_cpulist
    s = topo["summary"]
    lines = [
        f"{s['packages']} package(s), {s['numa_nodes']} NUMA node(s), {s['l3_groups']} L3 "
        f"group(s), {s['cores']} cores, {s['cpus']} CPUs (SMT {s['smt']}), "
        f"{_gib(s['memory_kb'])}"
        + (f"; offline CPUs {topo['cpus_offline']}" if s["cpus_offline"] else "")
    ]
    lines += [f"warning: {w}" for w in topo["warnings"]]
    cores = [(set(parse(c["cpus"])), c) for c in topo["cores"]]
    groups = [(set(parse(g["cpus"])), g) for g in topo["l3_groups"]]
    for package in topo["packages"]:
        pcpus = set(parse(package["cpus"]))
        lines.append(f"package {package['id']}: CPUs {package['cpus']}")
        for node in topo["numa_nodes"]:
            ncpus = set(parse(node["cpus"])) & pcpus
            if not ncpus:
                continue
            dist = " ".join(str(d) for d in node["distances"].values())
            lines.append(
                f"  NUMA node {node['id']}: CPUs {module.format_cpulist(ncpus)}, "
                f"{_gib(node['memory_kb'])}" + (f", distances {dist}" if dist else "")
            )
            placed = set()
            for gcpus, group in groups:
                if not gcpus & ncpus:
                    continue
                size = f" ({group['size_kb'] // 1024} MiB)" if group["size_kb"] else ""
                lines.append(f"    L3 {group['id']}{size}: CPUs {group['cpus']}")
                members = [c for ccpus, c in cores if ccpus <= gcpus & ncpus]
                lines.append("      " + "  ".join(f"[{c['cpus']}]" for c in members))
                placed |= gcpus
            rest = [c for ccpus, c in cores if ccpus <= ncpus and not ccpus & placed]
            if rest:
                lines.append("    cores: " + "  ".join(f"[{c['cpus']}]" for c in rest))
    for node in topo["numa_nodes"]:
        if not node["cpus"]:
            lines.append(f"memory-only NUMA node {node['id']}: {_gib(node['memory_kb'])}")
    lines.append(f"HTCondor slots (policy {policy}):")
    for slot in plan:
        lines.append(
            f"  slot {slot['id']}: {slot['cores']} cores, CPUs {slot['cpus']}, "
            f"{slot['memory_mb']} MB, NUMA node(s) {','.join(map(str, slot['nodes']))}"
        )
    binding = s["mpi_binding"]
    lines.append(f"MPI binding: {binding['domain']} ({binding['reason']})")
    if binding["domain"] == "numa":
        lines.append("  (OpenMPI 4 without the singleton patch: the openmpi formula uses l3cache)")
    lines += [f"  export {k}={v}" for k, v in binding["environment"].items()]
    return "\n".join(lines) + "\n"


def svg_map(module, topo, plan, title):
    """Packages -> NUMA nodes -> L3 groups -> cores (SMT siblings inside), coloured by slot."""
    parse = module.parse_cpulist
    slot_of = {cpu: slot for slot in plan for cpu in parse(slot["cpus"])}
    core_w, core_h, per_row, pad = 86, 40, 4, 10
    out = []

    def box(x, y, w, h, *, fill, label, size=13):
        out.append(
            f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="6" fill="{fill}" '
            f'stroke="#333" stroke-width="1"/>'
        )
        if label:
            out.append(
                f'<text x="{x + 6}" y="{y + size + 3}" font-size="{size}">'
                f"{html.escape(label)}</text>"
            )

    cores = [(parse(c["cpus"]), c) for c in topo["cores"]]
    groups = [(set(parse(g["cpus"])), g) for g in topo["l3_groups"]]
    group_w = per_row * (core_w + pad) + pad
    y0 = 40
    x = pad
    height = 0
    for package in topo["packages"]:
        pcpus = set(parse(package["cpus"]))
        nodes = [n for n in topo["numa_nodes"] if set(parse(n["cpus"])) & pcpus]
        px, node_x, node_bottom = x, x + pad, y0 + 30
        for node in nodes:
            ncpus = set(parse(node["cpus"])) & pcpus
            parts = [(g["id"], gc & ncpus) for gc, g in groups if gc & ncpus]
            covered = set().union(*(p for _, p in parts)) if parts else set()
            if ncpus - covered:
                parts.append((None, ncpus - covered))
            y = y0 + 60
            for gid, gcpus in parts:
                members = [(cc, c) for cc, c in cores if set(cc) <= gcpus]
                rows = -(-len(members) // per_row)
                gh = 28 + rows * (core_h + pad)
                label = f"L3 {gid}" if gid is not None else "no L3 information"
                box(node_x + pad, y, group_w, gh, fill="#f4f4f4", label=label, size=12)
                for i, (cc, core) in enumerate(members):
                    cx = node_x + 2 * pad + (i % per_row) * (core_w + pad)
                    cy = y + 24 + (i // per_row) * (core_h + pad)
                    slot = slot_of.get(cc[0])
                    fill = PALETTE[(slot["id"] - 1) % len(PALETTE)] if slot else "#ffffff"
                    box(cx, cy, core_w, core_h, fill=fill, label=f"core {core['id']}", size=11)
                    out.append(
                        f'<text x="{cx + 6}" y="{cy + 32}" font-size="11">'
                        f"PU {html.escape(','.join(map(str, cc)))}</text>"
                    )
                y += gh + pad
            nh = y - (y0 + 30)
            node_label = f"NUMA node {node['id']}  {_gib(node['memory_kb'])}"
            out.append(
                f'<rect x="{node_x}" y="{y0 + 30}" width="{group_w + 2 * pad}" height="{nh}" '
                f'rx="8" fill="none" stroke="#1f4e79" stroke-width="2"/>'
            )
            out.append(
                f'<text x="{node_x + 6}" y="{y0 + 48}" font-size="13" font-weight="bold" '
                f'fill="#1f4e79">{html.escape(node_label)}</text>'
            )
            node_bottom = max(node_bottom, y0 + 30 + nh)
            node_x += group_w + 3 * pad
        pw = node_x - px
        out.append(
            f'<rect x="{px}" y="{y0}" width="{pw}" height="{node_bottom - y0 + pad}" rx="10" '
            f'fill="none" stroke="#000" stroke-width="2"/>'
        )
        out.append(
            f'<text x="{px + 8}" y="{y0 + 20}" font-size="14" font-weight="bold">'
            f"Package {package['id']}</text>"
        )
        x = px + pw + 2 * pad
        height = max(height, node_bottom + pad)
    legend_y = height + 20
    for i, slot in enumerate(plan):
        fill = PALETTE[(slot["id"] - 1) % len(PALETTE)]
        ly = legend_y + i * 22
        out.append(f'<rect x="{pad}" y="{ly}" width="16" height="16" fill="{fill}" stroke="#333"/>')
        legend = (
            f"HTCondor slot {slot['id']}: {slot['cores']} cores, "
            f"CPUs {slot['cpus']}, {slot['memory_mb']} MB"
        )
        out.append(
            f'<text x="{pad + 24}" y="{ly + 13}" font-size="13">{html.escape(legend)}</text>'
        )
    width = max(x, 640)
    total_h = legend_y + 22 * len(plan) + pad
    body = "\n".join(line for line in out if line)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{total_h}" '
        f'viewBox="0 0 {width} {total_h}" font-family="DejaVu Sans, sans-serif">\n'
        f'<rect width="100%" height="100%" fill="#ffffff"/>\n'
        f'<text x="{pad}" y="26" font-size="16" font-weight="bold">{html.escape(title)}</text>\n'
        f"{body}\n</svg>\n"
    )


def cmd_topology(args):
    module = _topology_module()
    from salt.exceptions import CommandExecutionError  # noqa: PLC0415

    try:
        topo = module.discover(args.root)
    except CommandExecutionError as exc:
        raise LabsaltError(str(exc)) from exc
    if args.json:
        json.dump(topo, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    slots = _slot_parameters(args)
    plan = _plan(module, topo, slots)
    if args.svg:
        where = "this machine" if args.root == "/" else Path(args.root).name
        title = f"{where}: HTCondor policy {slots['policy']}"
        svg = Path(args.svg)
        if not svg.parent.is_dir():
            raise LabsaltError(f"--svg {svg}: directory {svg.parent} does not exist")
        try:
            svg.write_text(svg_map(module, topo, plan, title))
        except OSError as exc:
            raise LabsaltError(f"--svg {svg}: {exc.strerror}") from exc
    if args.condor:
        sys.stdout.write(condor_config(plan, slots["policy"]))
    elif not args.svg:
        sys.stdout.write(text_report(module, topo, plan, slots["policy"]))
    return 0


def _int_list(text):
    try:
        return [int(item) for item in text.split(",") if item.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"'{text}' is not a list of node ids") from exc


def register(subparsers):
    parser = subparsers.add_parser(
        "topology", help="CPU/NUMA/cache map of this machine, its HTCondor slots and MPI binding"
    )
    parser.add_argument("--root", default="/", help="a sysfs snapshot directory instead of /")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--json", action="store_true", help="topology.discover's data as JSON")
    mode.add_argument("--condor", action="store_true", help="the slots config the formula writes")
    parser.add_argument("--svg", metavar="FILE", help="also draw the map, slots coloured")
    parser.add_argument("--pillar", metavar="DIR", help="pillar tree (default: pillar.example/)")
    parser.add_argument(
        "--policy", choices=["numa", "l3", "single"], help="override htcondor:slots:policy"
    )
    parser.add_argument("--reserve-cores", type=int, help="override htcondor:slots:reserve_cores")
    parser.add_argument("--exclude-nodes", type=_int_list, help="override, e.g. 1,3")
    parser.add_argument("--memory-cap-mb", type=int, help="override htcondor:slots:memory_cap_mb")
    parser.set_defaults(func=cmd_topology)
