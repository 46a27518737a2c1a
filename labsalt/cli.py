"""
``labsalt``: a thin dispatcher over Salt for this suite.

It writes a private Salt config that points at the suite (see ``labsalt.config``)
and runs ``salt-call --local`` or ``salt-ssh`` with it.  Salt does the work and
its own outputters print the result.  Further subcommands live in
``labsalt/commands/<name>.py``, each with ``register(subparsers)``.
"""

import argparse
import importlib
import json
import pkgutil
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from labsalt import fleet
from labsalt.config import LabsaltError, formulas, suite_root, write_config

PROGRESS = re.compile(r"^INFO (Running|Completed) state \[(.*?)\] at time [\d:.]+(.*)$")


def salt_bin(name):
    """A Salt script from this interpreter's environment, else from PATH."""
    local = Path(sys.executable).parent / name
    if local.is_file():
        return str(local)
    found = shutil.which(name)
    if not found:
        raise LabsaltError(f"{name} not found: install Salt into this environment (make venv)")
    return found


def check_states(root, states):
    """Refuse unknown state names before Salt runs anything."""
    known = formulas(root)
    for state in states:
        parts = state.split(".")
        base = root / "formulas" / Path(*parts)
        if not (base.with_suffix(".sls").is_file() or (base / "init.sls").is_file()):
            raise LabsaltError(
                f"unknown formula or state '{state}' (formulas: {', '.join(known) or 'none'})"
            )


LEVELS = ("GARBAGE", "TRACE", "DEBUG", "PROFILE", "INFO", "WARNING", "ERROR", "CRITICAL")


def _stream_progress(proc):
    """
    Turn Salt's INFO state lines into short progress lines and pass on the first
    line of each warning or error; tracebacks stay in Salt's result and log.
    """
    for line in proc.stderr:
        level = line.split(" ", 1)[0]
        if level not in LEVELS:
            continue  # continuation of a multi-line record
        match = PROGRESS.match(line)
        if match:
            verb, name, rest = match.groups()
            if verb == "Completed":
                duration = re.search(r"duration_in_ms=([\d.]+)", rest)
                took = f" ({float(duration.group(1)) / 1000:.1f}s)" if duration else ""
                sys.stderr.write(f"  done  {name}{took}\n")
            else:
                sys.stderr.write(f"  start {name}\n")
        elif LEVELS.index(level) >= LEVELS.index("WARNING"):
            sys.stderr.write(line)
        sys.stderr.flush()


def run_salt(cmd, progress):
    """Run a Salt command; stdout passes through untouched, stderr carries progress."""
    if not progress:
        return subprocess.call(cmd, stdin=subprocess.DEVNULL)
    cmd = [*cmd, "--log-level", "info"]
    with subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, bufsize=1
    ) as proc:
        _stream_progress(proc)
        return proc.wait()


def _common(args):
    root = suite_root()
    pillar = Path(args.pillar) if args.pillar else root / "pillar.example"
    conf = write_config(root, pillar, minion_id=getattr(args, "id", None))
    return root, conf


def _state_args(args):
    fun = ["state.apply"]
    if args.states:
        fun.append(",".join(args.states))
    if args.test:
        fun.append("test=True")
    if args.pillar_data:
        fun.append(f"pillar={args.pillar_data}")
    return fun


def _output(args):
    return ["--out", args.out] if args.out else []


def cmd_apply(args):
    root, conf = _common(args)
    check_states(root, args.states)
    cmd = [salt_bin("salt-call"), "-c", str(conf), "--local", "--retcode-passthrough"]
    cmd += _output(args) + _state_args(args)
    return run_salt(cmd, progress=not args.quiet)


def cmd_ssh(args):
    root, conf = _common(args)
    roster = Path(args.roster)
    if not roster.is_file():
        raise LabsaltError(f"roster file {roster} does not exist")
    cmd = [salt_bin("salt-ssh"), "-c", str(conf), "--roster-file", str(roster.resolve())]
    if args.ignore_host_keys:
        cmd.append("--ignore-host-keys")
    if args.priv:
        cmd += ["--priv", args.priv]
    if args.max_procs:
        cmd += ["--max-procs", str(args.max_procs)]
    if args.target_type:
        cmd.append(f"--{args.target_type}")
    # One JSON document per host as it finishes: progress, then Salt's outputter.
    cmd += ["--out", "json", args.target]
    if args.call:
        cmd += args.call
    else:
        check_states(root, args.states)
        cmd += _state_args(args)
    return run_fleet(cmd, conf, args, state_run=not args.call)


def run_fleet(cmd, conf, args, state_run):
    """Run salt-ssh, show per-host progress, print the returns and a per-host summary."""
    start = time.monotonic()
    if not args.quiet:
        cmd = [*cmd, "--log-level", "info"]
    with subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
    ) as proc:
        errors = threading.Thread(target=_stream_progress, args=(proc,), daemon=True)
        errors.start()
        try:
            returns, results = fleet.collect(proc.stdout, not args.quiet, state_run)
        except ValueError as exc:
            proc.kill()
            raise LabsaltError(str(exc)) from exc
        code = proc.wait()
        errors.join(timeout=5)
    if args.out == "json":
        print(json.dumps(returns, indent=4, default=str))
    elif returns:
        import salt.config  # noqa: PLC0415  (Salt is slow to import; only here)
        import salt.output  # noqa: PLC0415

        opts = salt.config.master_config(str(conf / "master"))
        opts["color"] = sys.stdout.isatty()
        out = args.out or ("highstate" if state_run else "nested")
        salt.output.display_output(returns, out=out, opts=opts)
    if not results:
        raise LabsaltError(f"no host in the roster matches '{args.target}'")
    sys.stderr.write(fleet.summary(results, time.monotonic() - start))
    if any(r.status != "ok" for r in results):
        return 1
    return 1 if code else 0


def cmd_config(args):
    _, conf = _common(args)
    print(conf)
    return 0


def cmd_mapdata(args):
    root, conf = _common(args)
    if args.formula not in formulas(root):
        raise LabsaltError(
            f"unknown formula '{args.formula}' (formulas: {', '.join(formulas(root))})"
        )
    cmd = [salt_bin("salt-call"), "-c", str(conf), "--local", "--retcode-passthrough"]
    cmd += ["--out", args.out or "yaml", "labsalt.mapdata", args.formula]
    return run_salt(cmd, progress=False)


def _add_pillar(parser):
    parser.add_argument(
        "--pillar", metavar="DIR", help="pillar tree with a top.sls (default: pillar.example/)"
    )
    parser.add_argument("--out", help="Salt outputter (json, yaml, highstate, ...)")


def _add_state_opts(parser):
    parser.add_argument("--test", action="store_true", help="predict changes, change nothing")
    parser.add_argument(
        "--pillar-data", metavar="YAML", help="extra pillar data for this run, as Salt's pillar="
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="labsalt",
        description="Apply labsalt's formulas with Salt: on this machine (salt-call --local), "
        "over salt-ssh to a roster, or show what they would use.  Salt does the work; "
        "labsalt writes its private config and runs it.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    apply = sub.add_parser("apply", help="highstate or named formulas on this machine")
    apply.add_argument("states", nargs="*", metavar="STATE", help="formula or sub-state names")
    apply.add_argument("--id", help="minion id to use (default: this host's FQDN)")
    _add_pillar(apply)
    _add_state_opts(apply)
    apply.set_defaults(func=cmd_apply)

    ssh = sub.add_parser("ssh", help="the same trees over salt-ssh to hosts in a roster")
    ssh.add_argument("roster", help="salt-ssh roster file")
    ssh.add_argument("target", help="roster target (glob unless --list/--pcre/...)")
    ssh.add_argument("action", nargs="?", choices=["apply"], default="apply")
    ssh.add_argument("states", nargs="*", metavar="STATE")
    ssh.add_argument("--call", nargs=argparse.REMAINDER, help="run FUNCTION ARGS... instead")
    ssh.add_argument("--target-type", choices=["list", "pcre", "grain", "nodegroup"])
    ssh.add_argument("--max-procs", type=int, help="hosts worked on at once (Salt's default 25)")
    ssh.add_argument("--ignore-host-keys", action="store_true")
    ssh.add_argument("--priv", help="SSH private key")
    _add_pillar(ssh)
    _add_state_opts(ssh)
    ssh.set_defaults(func=cmd_ssh)

    config = sub.add_parser("config", help="write and print the Salt config directory")
    _add_pillar(config)
    config.set_defaults(func=cmd_config)

    mapdata = sub.add_parser("mapdata", help="show a formula's merged parameters")
    mapdata.add_argument("formula")
    _add_pillar(mapdata)
    mapdata.set_defaults(func=cmd_mapdata)

    import labsalt.commands  # noqa: PLC0415  (plug-in subcommands)

    for info in pkgutil.iter_modules(labsalt.commands.__path__):
        importlib.import_module(f"labsalt.commands.{info.name}").register(sub)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except LabsaltError as exc:
        print(f"labsalt: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
