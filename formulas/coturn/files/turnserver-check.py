#!/usr/bin/python3
"""
Check a turnserver.conf before it replaces the live one (turnserver has no check mode).

Every option must be one the installed turnserver lists in ``turnserver --help``;
ports and the relay port range must be numbers in range; peer ranges must be IP
addresses or ranges; files named by cert/pkey must exist; use-auth-secret needs
a static-auth-secret.  Errors name the line and option, never a value of a
secret option.  Used by the labsalt coturn formula as ``check_cmd``.

    turnserver-check /etc/turnserver.conf
"""

import ipaddress
import os
import re
import subprocess
import sys

PORT_OPTIONS = {
    "listening-port",
    "tls-listening-port",
    "alt-listening-port",
    "min-port",
    "max-port",
}
RANGE_OPTIONS = {"denied-peer-ip", "allowed-peer-ip"}
FILE_OPTIONS = {"cert", "pkey"}
SECRET_OPTIONS = {"static-auth-secret", "user", "cli-password", "secret"}


def known_options(turnserver="turnserver"):
    """The long option names the installed turnserver documents."""
    proc = subprocess.run([turnserver, "--help"], capture_output=True, text=True, check=False)
    return set(re.findall(r"--([a-z0-9][a-z0-9_-]*)", proc.stdout + proc.stderr))


def parse(text):
    """(line number, option, value or None) of every setting line."""
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        option, value = re.fullmatch(r"([^\s=]+)(?:\s*=\s*|\s+)?(.*)", line).groups()
        yield number, option.lstrip("-"), value.strip() or None


def _ip_range(value):
    for part in value.split("-", 1):
        ipaddress.ip_address(part)


def check(text, options):
    """Return the list of problems (empty when the config is good)."""
    errors = []
    seen = {}
    for number, option, value in parse(text):
        seen.setdefault(option, []).append(value)
        where = f"line {number}: {option}"
        if option not in options:
            errors.append(f"{where}: not an option of this turnserver")
            continue
        if option in SECRET_OPTIONS:
            if not value:
                errors.append(f"{where}: needs a value")
            continue
        if option in PORT_OPTIONS and not (value or "").isdigit():
            errors.append(f"{where}: '{value}' is not a port number")
        elif option in PORT_OPTIONS and not 1 <= int(value) <= 65535:
            errors.append(f"{where}: {value} is not a port number")
        if option in RANGE_OPTIONS:
            try:
                _ip_range(value or "")
            except ValueError:
                errors.append(f"{where}: '{value}' is not an IP address or range")
        if option in FILE_OPTIONS and not os.path.isfile(value or ""):
            errors.append(f"{where}: file {value} does not exist")
    low, high = seen.get("min-port", [None])[-1], seen.get("max-port", [None])[-1]
    if (low or "").isdigit() and (high or "").isdigit() and int(low) > int(high):
        errors.append(f"min-port {low} is above max-port {high}")
    if "use-auth-secret" in seen and not any(seen.get("static-auth-secret", [])):
        errors.append("use-auth-secret without static-auth-secret")
    return errors


def main(argv):
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as handle:
        text = handle.read()
    options = known_options()
    if not options:
        print("turnserver --help listed no options: is coturn installed?", file=sys.stderr)
        return 2
    errors = check(text, options)
    for error in errors:
        print(f"{argv[1]}: {error}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
