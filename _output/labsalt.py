"""
labsalt's outputter for state runs: a run that failed its pillar check or failed
to render prints each distinct error once, as one line ``labsalt: <error>`` on
stderr (instead of one block per SLS that included the broken one, each with its
Jinja context); anything else goes to the outputter named in ``LABSALT_OUT``
(what the user asked ``labsalt`` for: json, yaml, ...), by default ``highstate``.
"""

import os
import re
import sys

import salt.output

__virtualname__ = "labsalt"

_FAILED = re.compile(r"^Rendering SLS '[^']*' failed: ")
_NOISE = (
    "Problem running salt function in Jinja template: ",
    "Jinja error: ",
    "Jinja variable ",
)


def __virtual__():
    return __virtualname__


def error_line(text):
    """The one line that says what went wrong in a Salt render/compile error."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    if not lines:
        return ""
    line = lines[-1] if lines[0].startswith("Traceback") else lines[0]
    line = _FAILED.sub("", line)
    for noise in _NOISE:
        if line.startswith(noise) and noise != "Jinja variable ":
            line = line[len(noise) :]
    line = re.sub(r"; line \d+$", "", line)
    return line.strip()


def distinct_errors(errors):
    lines = []
    for error in errors:
        line = error_line(error)
        if line and line not in lines:
            lines.append(line)
    return lines


def output(data, **kwargs):
    """Render errors as ``labsalt: <error>`` lines on stderr; everything else as highstate."""
    if (
        isinstance(data, dict)
        and data
        and all(
            isinstance(ret, list) and all(isinstance(e, str) for e in ret) for ret in data.values()
        )
    ):
        hosts = len(data) > 1
        for host, errors in data.items():
            for line in distinct_errors(errors):
                sys.stderr.write(f"labsalt: {host + ': ' if hosts else ''}{line}\n")
        sys.stderr.flush()
        return ""
    out = os.environ.get("LABSALT_OUT") or "highstate"
    # out_format would pick opts["output"] (this outputter) again: name the real one
    opts = dict(__opts__, output=out)  # noqa: F821
    return salt.output.out_format(data, out, opts, **kwargs)
