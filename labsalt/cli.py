"""
``labsalt``: a thin dispatcher over Salt for this suite.

It writes a private Salt config that points at the suite (see ``labsalt.config``)
and runs ``salt-call --local`` or ``salt-ssh`` with it.  Salt does the work and
its own outputters print the result.  Further subcommands live in
``labsalt/commands/<name>.py``, each with ``register(subparsers)``.
"""

import argparse
import fnmatch
import importlib
import json
import os
import pkgutil
import re
import secrets
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml

from labsalt import fleet
from labsalt.config import (
    EXTRA_PILLAR,
    EXTRA_PILLAR_ENV,
    EXTRA_PILLAR_GLOB,
    LabsaltError,
    atomic_write,
    formulas,
    suite_root,
    write_config,
)

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


# Salt logs a render failure once per SLS that includes the broken one, with its
# Jinja context; labsalt's outputter prints each distinct error once instead.
RENDER_FAILED = re.compile(
    r"^\w+ (Rendering SLS '[^']*' failed|Rendering exception occurred"
    r"|Template was specified incorrectly|Pillar render error)"
)


def _stream_progress(proc, progress=True, level="INFO"):
    """
    Turn Salt's INFO state lines into short progress lines (unless ``progress`` is
    false) and pass on the first line of each record at ``level`` or above (WARNING
    at least); tracebacks and render failures stay in Salt's result and log.
    """
    shown = LEVELS.index(level) if level in LEVELS else len(LEVELS)  # quiet: nothing
    for line in proc.stderr:
        if line.startswith("labsalt: "):  # the labsalt outputter's error lines
            sys.stderr.write(line)
            sys.stderr.flush()
            continue
        level = line.split(" ", 1)[0]
        if level not in LEVELS:
            continue  # continuation of a multi-line record
        if RENDER_FAILED.match(line) or "Traceback" in line:
            continue
        match = PROGRESS.match(line)
        if match:
            if not progress:
                continue
            verb, name, rest = match.groups()
            if verb == "Completed":
                duration = re.search(r"duration_in_ms=([\d.]+)", rest)
                took = f" ({float(duration.group(1)) / 1000:.1f}s)" if duration else ""
                sys.stderr.write(f"  done  {name}{took}\n")
            else:
                sys.stderr.write(f"  start {name}\n")
        elif LEVELS.index(level) >= shown:
            sys.stderr.write(line)
        sys.stderr.flush()


def _levels(progress, log_level):
    """(level Salt logs at, level labsalt passes on) for a run."""
    wanted = (log_level or "warning").upper()
    if wanted not in LEVELS:
        return ("info" if progress else "quiet"), "QUIET"
    salt_level = wanted
    if progress and LEVELS.index(wanted) > LEVELS.index("INFO"):
        salt_level = "INFO"
    return salt_level.lower(), wanted


def run_salt(cmd, progress, log_level=None, out=None):
    """Run a Salt command; stdout passes through untouched, stderr carries progress."""
    salt_level, wanted = _levels(progress, log_level)
    cmd = [*cmd, "--log-level", salt_level]
    env = dict(os.environ, LABSALT_OUT=out) if out else None
    with subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, bufsize=1, env=env
    ) as proc:
        _stream_progress(proc, progress, wanted)
        return proc.wait()


def _common(args):
    root = suite_root()
    pillar = Path(args.pillar) if args.pillar else root / "pillar.example"
    conf = write_config(root, pillar, minion_id=getattr(args, "id", None))
    return root, conf


def _read_extra_pillar(args):
    """The run's extra pillar (--pillar-file FILE or -, --pillar-data), checked: a mapping."""
    sources = []
    if getattr(args, "pillar_file", None):
        name = args.pillar_file
        try:
            text = sys.stdin.read() if name == "-" else Path(name).read_text()
        except OSError as exc:
            raise LabsaltError(f"--pillar-file {name}: {exc.strerror}") from exc
        sources.append((f"--pillar-file {'(stdin)' if name == '-' else name}", text))
    if getattr(args, "pillar_data", None):
        sources.append(("--pillar-data", args.pillar_data))
    data = {}
    for where, text in sources:
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f" line {mark.line + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or "cannot be parsed"
            raise LabsaltError(f"{where}:{line}: not valid YAML: {problem}") from exc
        if value is None:
            continue
        if not isinstance(value, dict):
            kind = type(value).__name__
            raise LabsaltError(f"{where}: must be a mapping of pillar keys, not {kind}")
        data.update(value)
    return data


class ExtraPillar:
    """
    The extra pillar of one run, in a 0600 file of its own in the private config
    dir that ``_pillar/labsalt_extra.py`` merges over the pillar tree (for
    salt-call and salt-ssh alike); removed when the run ends.  Nothing reaches a
    command line.  The file is named per run and handed to Salt through the
    environment, so concurrent runs with one config dir never read each other's.
    """

    def __init__(self, conf, data):
        self.conf = Path(conf)
        self.data = data
        self.path = None

    def __enter__(self):
        for stale in self.conf.glob(EXTRA_PILLAR_GLOB):  # crashed runs' leftovers
            pid = stale.name.split(".")[1]
            if not pid.isdigit() or not Path(f"/proc/{pid}").exists():
                stale.unlink(missing_ok=True)
        if self.data:
            self.path = self.conf / EXTRA_PILLAR.format(pid=os.getpid(), token=secrets.token_hex(6))
            atomic_write(self.path, yaml.safe_dump(self.data), mode=0o600)
            os.environ[EXTRA_PILLAR_ENV] = str(self.path)
        return self

    def __exit__(self, *exc):
        os.environ.pop(EXTRA_PILLAR_ENV, None)
        if self.path:
            self.path.unlink(missing_ok=True)


def _state_args(args, fun="state.apply"):
    fun = [fun]
    if args.states:
        fun.append(",".join(args.states))
    if args.test:
        fun.append("test=True")
    return fun


def _output(args):
    return ["--out", args.out] if args.out else []


def precheck(conf, states=(), ids=None, show=False, show_secrets=False):
    """
    Check the pillar against the schemas and validators of the formulas this run
    renders (``labsalt.check_formulas``, the same merge and checks as rendering),
    before Salt renders any SLS.  Raises LabsaltError with the first problem.
    """
    cmd = [salt_bin("salt-call"), "-c", str(conf), "--local", "--out", "json"]
    cmd += ["--log-level", "quiet", "labsalt.check_formulas"]
    if states:
        cmd.append("states=" + ",".join(states))
    if ids:
        cmd.append("ids=" + json.dumps(list(ids)))
    if show:
        cmd += ["show=True", f"show_secrets={bool(show_secrets)}"]
    done = subprocess.run(
        cmd, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL
    )
    try:
        ret = json.loads(done.stdout)["local"]
        errors = ret["errors"]
    except (ValueError, KeyError, TypeError):
        text = (done.stderr or done.stdout).strip() or f"salt-call exited {done.returncode}"
        raise LabsaltError(_last_words(text)) from None
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise LabsaltError(errors[0] + more)
    return ret


def _last_words(text):
    """One line out of Salt's error output (a traceback's last line)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if any(line.startswith("Traceback") for line in lines):
        return lines[-1]
    line = lines[0] if lines else text
    return re.sub(r"^(\w+ )?Error running '[^']+': ", "", line)


def cmd_apply(args):
    root, conf = _common(args)
    check_states(root, args.states)
    # One salt-call checks the pillar of the formulas this run renders (the same
    # merge, schema and validators as rendering) and then applies them; errors
    # and render failures come out as one line each through the labsalt outputter.
    cmd = [salt_bin("salt-call"), "-c", str(conf), "--local", "--retcode-passthrough"]
    cmd += ["--out", "labsalt", *_state_args(args, "labsalt.apply_checked")]
    with ExtraPillar(conf, _read_extra_pillar(args)):
        return run_salt(cmd, progress=not args.quiet, log_level=args.log_level, out=args.out)


def roster_targets(roster, target, target_type=None):
    """
    The roster entries salt-ssh will work on, for the pre-check: None when that
    cannot be told here (a templated roster, grain or nodegroup targeting).
    """
    try:
        data = yaml.safe_load(Path(roster).read_text())
    except (yaml.YAMLError, OSError):
        return None
    if not isinstance(data, dict) or target_type in ("grain", "nodegroup"):
        return None
    names = [str(name) for name in data]
    if target_type == "list":
        wanted = {t.strip() for t in target.split(",")}
        return [n for n in names if n in wanted]
    if target_type == "pcre":
        try:
            return [n for n in names if re.match(target, n)]
        except re.error as exc:
            raise LabsaltError(
                f"target '{target}' is not a valid regular expression: {exc}"
            ) from None
    return [n for n in names if fnmatch.fnmatch(n, target)]


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
    with ExtraPillar(conf, _read_extra_pillar(args)):
        if not args.call:
            ids = roster_targets(roster, args.target, args.target_type)
            if ids == []:
                raise LabsaltError(f"no host in the roster matches '{args.target}'")
            if ids:
                precheck(conf, args.states, ids=ids)
        return run_fleet(cmd, conf, args, state_run=not args.call)


def run_fleet(cmd, conf, args, state_run):
    """Run salt-ssh, show per-host progress, print the returns and a per-host summary."""
    start = time.monotonic()
    salt_level, wanted = _levels(not args.quiet, args.log_level)
    cmd = [*cmd, "--log-level", salt_level]
    with subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
    ) as proc:
        errors = threading.Thread(target=_stream_progress, args=(proc, False, wanted), daemon=True)
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
        out = args.out or ("labsalt" if state_run else "nested")
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
    with ExtraPillar(conf, _read_extra_pillar(args)):
        ret = precheck(conf, [args.formula], show=True, show_secrets=args.show_secrets)
    if args.formula not in ret.get("mapdata", {}):
        raise LabsaltError(f"formula '{args.formula}' has no parameters/defaults.yaml")
    data = {"local": ret["mapdata"][args.formula]}
    if args.out == "json":
        print(json.dumps(data, indent=4, sort_keys=True))
    else:
        sys.stdout.write(yaml.safe_dump(data, default_flow_style=False))
    return 0


def _add_pillar(parser, outputs=None):
    parser.add_argument(
        "--pillar", metavar="DIR", help="pillar tree with a top.sls (default: pillar.example/)"
    )
    parser.add_argument(
        "--out", choices=outputs, help="Salt outputter (json, yaml, highstate, ...)"
    )


def _add_extra_pillar(parser):
    parser.add_argument(
        "--pillar-file",
        metavar="FILE",
        help="extra pillar for this run: a YAML file, or - to read it from stdin "
        "(the way to pass secrets: it never appears on a command line)",
    )
    parser.add_argument(
        "--pillar-data",
        metavar="YAML",
        help="extra pillar for this run, inline; visible to other users in ps, "
        "so never for secrets (use --pillar-file)",
    )


def _add_state_opts(parser):
    parser.add_argument("--test", action="store_true", help="predict changes, change nothing")
    _add_extra_pillar(parser)
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")
    parser.add_argument(
        "-l",
        "--log-level",
        type=str.lower,
        choices=["quiet", "critical", "error", "warning", "info", "profile", "debug", "trace"],
        help="also show Salt's log lines from this level up (default: warning)",
    )


class Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line on stderr and exit code 2."""

    def error(self, message):
        raise UsageError(f"{message} (see {self.prog} --help)")


class UsageError(Exception):
    pass


def build_parser():
    parser = Parser(
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

    mapdata = sub.add_parser(
        "mapdata", help="show a formula's merged parameters (secret values masked)"
    )
    mapdata.add_argument("formula")
    _add_pillar(mapdata, outputs=["yaml", "json"])
    _add_extra_pillar(mapdata)
    mapdata.add_argument("--show-secrets", action="store_true", help="print secret values in clear")
    mapdata.set_defaults(func=cmd_mapdata)

    import labsalt.commands  # noqa: PLC0415  (plug-in subcommands)

    for info in pkgutil.iter_modules(labsalt.commands.__path__):
        importlib.import_module(f"labsalt.commands.{info.name}").register(sub)
    return parser


def main(argv=None):
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except UsageError as exc:
        print(f"labsalt: {exc}", file=sys.stderr)
        return 2
    except LabsaltError as exc:
        print(f"labsalt: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        where = f" {exc.filename}" if exc.filename else ""
        print(f"labsalt:{where}: {exc.strerror or exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
