"""
``labsalt ssh`` over many hosts: read salt-ssh's per-host returns as they arrive,
show progress, print them with Salt's outputter, and end with a per-host summary.

salt-ssh does the fan-out (``--max-procs`` hosts at once) and, with ``--out
json``, prints one JSON document per host as soon as that host is done.
"""

import json
import sys
import time
from dataclasses import dataclass

# salt-ssh's return for a host it could not run the command on
SSH_FAILURE_KEYS = {"retcode", "stderr", "stdout"}
SSH_UNREACHABLE = 255  # ssh's own exit code for connection and auth failures
# ... and how salt-ssh reports some of them: the bare message instead of a return
SSH_ERROR_PREFIXES = ("ssh: ", "Permission denied", "Connection ", "kex_exchange")


@dataclass
class HostResult:
    name: str
    status: str  # ok, failed, error (did not run), unreachable
    changed: int = 0
    failed: int = 0
    total: int = 0
    note: str = ""


def iter_documents(stream):
    """Yield the JSON documents of a text stream of concatenated JSON values."""
    decoder = json.JSONDecoder()
    buffer = ""
    for line in stream:
        buffer += line
        while True:
            stripped = buffer.lstrip()
            if not stripped:
                buffer = ""
                break
            try:
                value, end = decoder.raw_decode(stripped)
            except json.JSONDecodeError:
                buffer = stripped
                break
            yield value
            buffer = stripped[end:]
    if buffer.strip():
        raise ValueError(f"salt-ssh printed something that is not JSON: {buffer.strip()[:500]}")


def is_state_return(ret):
    return isinstance(ret, dict) and all(
        isinstance(v, dict) and "result" in v and "__id__" in v for v in ret.values()
    )


def _first_line(text):
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[-1] if lines and "Traceback" in lines[0] else (lines[0] if lines else "")


def classify(name, ret, state_run=True):
    """Sort one host's return into ok / failed / error / unreachable."""
    if isinstance(ret, str) and ret.startswith(SSH_ERROR_PREFIXES):
        return HostResult(name, "unreachable", note=_first_line(ret))
    if isinstance(ret, dict) and set(ret) >= SSH_FAILURE_KEYS and not is_state_return(ret):
        detail = _first_line(ret.get("stderr") or ret.get("stdout") or ret.get("_error", ""))
        if ret.get("retcode") == SSH_UNREACHABLE:
            return HostResult(name, "unreachable", note=detail)
        return HostResult(name, "error", note=detail or f"exit code {ret.get('retcode')}")
    if state_run and isinstance(ret, list):  # state compiler/render errors
        return HostResult(name, "error", note=_first_line(ret[0]) if ret else "no states")
    if is_state_return(ret):
        failed = sum(1 for v in ret.values() if v.get("result") is False)
        changed = sum(1 for v in ret.values() if v.get("changes"))
        status = "failed" if failed else "ok"
        return HostResult(name, status, changed=changed, failed=failed, total=len(ret))
    if isinstance(ret, str) and ret.startswith(("Traceback", "An Exception occurred")):
        return HostResult(name, "error", note=_first_line(ret))
    if state_run:
        # A state run returns states, a list of render errors or one of the shapes
        # above; anything else (a bare string, a partial dict) is not success.
        shown = _first_line(ret) if isinstance(ret, str) else repr(ret)[:200]
        return HostResult(name, "error", note=f"unrecognised return: {shown}")
    return HostResult(name, "ok")


def describe(result):
    if result.status in ("ok", "failed") and result.total:
        return f"{result.total} states, {result.changed} changed, {result.failed} failed"
    return result.note


def progress_line(result, done, elapsed):
    return f"  [{done}] {result.name}: {result.status} {describe(result)} ({elapsed:.1f}s)\n"


def summary(results, elapsed):
    """The table printed at the end of a run."""
    width = max([len(r.name) for r in results] + [4])
    lines = [f"Summary ({len(results)} hosts, {elapsed:.1f}s):"]
    for result in sorted(results, key=lambda r: r.name):
        lines.append(f"  {result.name:<{width}}  {result.status:<11}  {describe(result)}")
    counts = {}
    for result in results:
        counts[result.status] = counts.get(result.status, 0) + 1
    order = ("ok", "failed", "error", "unreachable")
    lines.append("  " + ", ".join(f"{counts[s]} {s}" for s in order if s in counts))
    return "\n".join(lines) + "\n"


def collect(stdout, progress=True, state_run=True):
    """Read per-host returns from salt-ssh's stdout; returns ({host: return}, [HostResult])."""
    start = time.monotonic()
    returns, results = {}, []
    for document in iter_documents(stdout):
        if not isinstance(document, dict):
            continue
        for name, ret in document.items():
            returns[name] = ret
            result = classify(name, ret, state_run)
            results.append(result)
            if progress:
                elapsed = time.monotonic() - start
                sys.stderr.write(progress_line(result, len(results), elapsed))
                sys.stderr.flush()
    return returns, results
