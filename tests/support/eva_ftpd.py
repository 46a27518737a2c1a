"""
A stand-in for AVM's EVA bootloader FTP server (pyftpdlib), for tests only.

It speaks what EVA speaks: login adam2/adam2, ``GETENV``/``SETENV``/``UNSETENV``
on an environment given on the command line (``200 name   value`` replies),
``MEDIA FLSH|SDRAM``, ``TYPE I``, ``STOR mtdN`` (only in binary mode with MEDIA
FLSH selected, as EVA writes flash only then) and ``REBOOT`` (221, closes).
Each command (password masked) is appended to ``--log``; uploads land in
``--store``.  ``--delay`` waits before listening (the box still booting),
``--abort-after N`` breaks the data connection of the upload to ``--abort-on``
after N bytes (power loss, a flaky cable).

    python -m tests.support.eva_ftpd --addr 198.18.0.2 --store DIR --log FILE \\
        --env ProductID=Fritz_Box_3370 --env HWRevision=175
"""

import argparse
import json
import logging
import os
import time

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import DTPHandler, FTPHandler
from pyftpdlib.servers import FTPServer

EVA_COMMANDS = {
    "GETENV": {"perm": None, "auth": True, "arg": True, "help": "GETENV <name>"},
    "SETENV": {"perm": None, "auth": True, "arg": True, "help": "SETENV <name> <value>"},
    "UNSETENV": {"perm": None, "auth": True, "arg": True, "help": "UNSETENV <name>"},
    "MEDIA": {"perm": None, "auth": True, "arg": True, "help": "MEDIA FLSH|SDRAM"},
    "REBOOT": {"perm": None, "auth": True, "arg": False, "help": "REBOOT"},
}


class AbortingDTP(DTPHandler):
    abort_after = None
    abort_on = None

    def handle_read(self):
        super().handle_read()
        partition = os.path.basename(getattr(self.file_obj, "name", ""))
        limit = self.abort_after
        if limit is not None and partition == self.abort_on and self.tot_bytes_received > limit:
            self.cmd_channel.record({"abort": partition, "bytes": self.tot_bytes_received})
            self.transfer_finished = False
            self._resp = ("426 Flash write failed; transfer aborted.", logging.debug)
            self.close()

    handle_read_event = handle_read  # the base class aliases its own handle_read


class EvaHandler(FTPHandler):
    proto_cmds = {**FTPHandler.proto_cmds, **EVA_COMMANDS}
    banner = "ADAM2 FTP Server ready"
    dtp_handler = AbortingDTP
    environment = {}
    log_path = None
    media = None

    def record(self, item):
        with open(self.log_path, "a") as handle:
            handle.write(json.dumps(item) + "\n")

    def pre_process_command(self, line, cmd, arg):
        shown = "PASS ****" if cmd == "PASS" and arg != "adam2" else line
        self.record({"cmd": shown})
        super().pre_process_command(line, cmd, arg)

    def ftp_GETENV(self, line):
        value = self.environment.get(line.strip())
        if value is None:
            self.respond("501 environment variable not set")
        else:
            self.respond(f"200 {line.strip():<20}{value}")

    def ftp_SETENV(self, line):
        name, _, value = line.strip().partition(" ")
        self.environment[name] = value.strip()
        self.respond("200 SETENV command successful")

    def ftp_UNSETENV(self, line):
        self.environment.pop(line.strip(), None)
        self.respond("200 UNSETENV command successful")

    def ftp_MEDIA(self, line):
        if line.strip() not in ("FLSH", "SDRAM"):
            self.respond("501 unknown media")
            return
        self.media = line.strip()
        self.respond(f"200 Media set to MEDIA_{'FLASH' if self.media == 'FLSH' else 'SDRAM'}")

    def ftp_STOR(self, file, mode="w"):
        partition = os.path.basename(file)
        if not partition.startswith("mtd"):
            self.respond("553 only mtdN can be written")
            return None
        if self.media != "FLSH" or self._current_type != "i":
            self.respond("553 set binary mode and MEDIA FLSH first")
            return None
        return super().ftp_STOR(file, mode)

    def ftp_REBOOT(self, line):
        self.record({"rebooted": True, "environment": self.environment})
        self.respond("221 Goodbye")
        self.close_when_done()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--addr", required=True)
    parser.add_argument("--port", type=int, default=21)
    parser.add_argument("--store", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--delay", type=float, default=0)
    parser.add_argument("--abort-after", type=int)
    parser.add_argument("--abort-on", default="mtd0")
    args = parser.parse_args()

    EvaHandler.environment = dict(item.split("=", 1) for item in args.env)
    EvaHandler.log_path = args.log
    AbortingDTP.abort_after = args.abort_after
    AbortingDTP.abort_on = args.abort_on
    authorizer = DummyAuthorizer()
    authorizer.add_user("adam2", "adam2", args.store, perm="elw")
    EvaHandler.authorizer = authorizer
    time.sleep(args.delay)  # the box is still booting: nothing listens yet
    server = FTPServer((args.addr, args.port), EvaHandler)
    with open(args.log, "a") as handle:
        handle.write(json.dumps({"listening": True}) + "\n")
    server.serve_forever()


if __name__ == "__main__":
    main()
