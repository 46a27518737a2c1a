#!/usr/bin/python3
# Managed by Salt (labsalt formula openmpi).
"""
Check an openmpi-mca-params.conf candidate before it replaces the live file:
every line is a comment or "name = value", OpenMPI (ompi_info) knows every
name, and no name is set twice (a parameter in labsalt's block that the
distribution or the site also sets elsewhere in the file: one must go, and
that is for the admin to decide).
Usage: labsalt-check-mca-params FILE; exit 1 with one line per problem.
"""

import re
import subprocess
import sys


def known_parameters():
    out = subprocess.run(
        ["ompi_info", "--parsable", "--level", "9", "--param", "all", "all"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(re.findall(r"^mca:[^:]*:[^:]*:param:([^:]+):value:", out, re.M))


def main(path):
    known = known_parameters()
    problems = []
    seen = {}
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            match = re.fullmatch(r"([A-Za-z0-9_]+)\s*=\s*(.*)", text)
            if not match:
                problems.append(f"{path}:{number}: not 'name = value': {text}")
            elif match.group(1) not in known:
                problems.append(f"{path}:{number}: OpenMPI has no MCA parameter {match.group(1)}")
            elif not match.group(2):
                problems.append(f"{path}:{number}: {match.group(1)} has no value")
            elif match.group(1) in seen:
                problems.append(
                    f"{path}:{number}: {match.group(1)} is also set on line "
                    f"{seen[match.group(1)]}; remove one of them (the site's line or "
                    "pillar openmpi:mca_params / the policy)"
                )
            if match:
                seen.setdefault(match.group(1), number)
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[-1]))
