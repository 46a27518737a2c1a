"""
``labsalt conference ROSTER --turn HOST --bbb HOST``: the lab's video conferencing
in one command.  Converges the TURN host first (role turn: coturn), then, only if
that succeeded, the BigBlueButton host (role bbb), both over salt-ssh with the
same pillar, so the TURN secret is shared through pillar.  A TURN host that is
not reachable over SSH stops the run before the BBB host is touched.
"""

import json
import re
import subprocess
import sys

from labsalt.config import LabsaltError

# What ssh says when it cannot reach or log in to a host (it then exits 255).
SSH_DOWN = re.compile(
    r"ssh: connect to host|Connection (refused|timed out|closed)|No route to host|"
    r"Could not resolve hostname|Permission denied|Host key verification failed"
)


def _ssh(args, roster, host, states):
    """``labsalt ssh`` for one host; returns (exit code, Salt's JSON for that host)."""
    cmd = [sys.executable, "-m", "labsalt", "ssh", roster, host, "apply", *states]
    cmd += ["--out", "json", "-q"]
    if args.pillar:
        cmd += ["--pillar", args.pillar]
    if args.test:
        cmd.append("--test")
    if args.ignore_host_keys:
        cmd.append("--ignore-host-keys")
    if args.priv:
        cmd += ["--priv", args.priv]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False
    )
    try:
        ret = json.loads(proc.stdout).get(host)
    except ValueError:
        ret = None
    return proc, ret


def _failure(proc, ret):
    """None when the run succeeded, else one line saying why."""
    if isinstance(ret, dict) and ret and all(isinstance(v, dict) for v in ret.values()):
        bad = [k for k, v in ret.items() if v.get("result") is False]
        if not bad and proc.returncode == 0:
            return None
        if bad:
            first = ret[bad[0]]
            return (
                f"{len(bad)} states failed, first: {first.get('__id__', bad[0])}: "
                + str(first.get("comment", "")).splitlines()[0]
            )
    if isinstance(ret, dict) and {"retcode", "stderr"} <= set(ret):
        text = (ret.get("stderr") or ret.get("stdout") or "salt-ssh failed").strip()
        last = text.splitlines()[-1]
        if ret["retcode"] == 255 or SSH_DOWN.search(text):
            return f"not reachable over SSH: {last}"
        return last
    if isinstance(ret, list):
        return "; ".join(map(str, ret))[:500]
    if isinstance(ret, str):
        last = ret.strip().splitlines()[-1] if ret.strip() else "salt-ssh failed"
        return f"not reachable over SSH: {last}" if SSH_DOWN.search(ret) else last
    return (proc.stderr.strip().splitlines() or ["salt-ssh failed"])[-1]


def cmd_conference(args):
    for role, host in (("TURN", args.turn), ("BigBlueButton", args.bbb)):
        states = [args.turn_state] if role == "TURN" else [args.bbb_state]
        proc, ret = _ssh(args, args.roster, host, states)
        problem = _failure(proc, ret)
        if problem:
            after = " (the BigBlueButton host was not touched)" if role == "TURN" else ""
            raise LabsaltError(f"{role} host {host}: {problem}{after}")
        changed = sum(1 for v in ret.values() if v.get("changes"))
        print(f"{role} host {host}: {len(ret)} states ok, {changed} changed")
    return 0


def register(subparsers):
    parser = subparsers.add_parser(
        "conference", help="converge the TURN host, then the BigBlueButton host (salt-ssh)"
    )
    parser.add_argument("roster", help="salt-ssh roster file")
    parser.add_argument("--turn", required=True, help="roster name of the TURN host")
    parser.add_argument("--bbb", required=True, help="roster name of the BigBlueButton host")
    parser.add_argument("--turn-state", default="coturn", help="state for the TURN host")
    parser.add_argument("--bbb-state", default="bigbluebutton", help="state for the BBB host")
    parser.add_argument("--pillar", metavar="DIR", help="pillar tree (default: pillar.example/)")
    parser.add_argument("--test", action="store_true", help="predict changes, change nothing")
    parser.add_argument("--ignore-host-keys", action="store_true")
    parser.add_argument("--priv", help="SSH private key")
    parser.set_defaults(func=cmd_conference)
