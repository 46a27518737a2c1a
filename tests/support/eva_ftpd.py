"""
A stand-in for AVM's EVA bootloader FTP server (pyftpdlib), for tests only.

It answers as the public descriptions of EVA's dialogue say EVA answers (sources:
tests/support/EVA-PROVENANCE.md), not as ``_modules/eva.py`` would like it to:

- greeting ``220 ADAM2 FTP Server ready``; ``331``/``230`` for USER/PASS adam2;
- ``SYST`` -> ``215 AVM EVA Version <revision> 0x0 0x<build>``;
- ``GETENV <name>`` -> the value on a line of its own, WITHOUT a reply code
  (``<name>`` padded to 22 columns, then the value), followed by
  ``200 GETENV command successful``; an unset name -> ``501 <name> environment
  variable not set.``;
- ``SETENV <name> <value>`` -> ``200 SETENV command successful``; ``UNSETENV <name>``
  -> ``200 UNSETENV command successful``;
- ``TYPE I`` -> ``200 Type set to BINARY``; ``MEDIA FLSH|SDRAM`` -> ``200 Media set
  to MEDIA_FLASH|MEDIA_SDRAM``;
- ``STOR mtdN`` (only in binary mode with MEDIA FLSH, as EVA writes flash only
  then) -> ``150 Opening BINARY data connection``, the erase of the partition (a
  long silence on the control connection: ``--erase-seconds``, 40 s by default),
  then ``226 Transfer complete``;
- ``REBOOT`` -> ``221 Thank you for using the FTP service on ADAM2``, ``221 Goodbye.``,
  connection closed.

Personas (``--box``): ``micron`` and ``hynix`` are a Fritz!Box 3370 whose
environment reports that NAND (``HardwareFeatures nand=0x<JEDEC id>``, the form
EVA reports on the 7530); ``plain`` is an ordinary FTP server that accepts the
same login but is not EVA (``215 UNIX Type: L8``, no GETENV).  ``--env`` adds or
overrides variables; ``--unset`` removes one.

The erase: ``--erase-phase before-150`` (after STOR, before EVA opens the data
connection, as the AR7 wiki and the tecchannel workshop describe the pause) or
``before-226`` (after the data, before the final reply).  It ends after
``--erase-seconds`` or as soon as the file ``--erase-release`` exists, so a test
decides when the erase is over instead of racing a sleep.  ``--abort-after N``
breaks the data connection of the upload to ``--abort-on`` after N bytes (power
loss, a flaky cable; what real EVA replies then is not documented: here ``426``).

Each command (password masked) and event is appended to ``--log`` as JSON;
uploads land in ``--store``.  ``--delay`` waits before listening (box booting).

    python -m tests.support.eva_ftpd --addr 198.18.0.2 --store DIR --log FILE --box hynix
"""

import argparse
import json
import logging
import os
import time

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import DTPHandler, FTPHandler
from pyftpdlib.servers import FTPServer

# The 3370's environment as a Micron or a Hynix box would report it.  ProductID,
# HWRevision, bootloaderVersion, HardwareFeatures and flashsize are EVA's variable
# names (the 7530's `RETR env` in PROVENANCE); the values for the 3370 are built
# from its console banner (EVA 1.1186, 128MB NAND, 256kB SPI NOR) and the NAND
# chips' JEDEC ids (0x2c Micron, 0xad Hynix): not recorded from a real 3370.
BOXES = {
    "micron": {"HardwareFeatures": "nand=0x2CF1809502,cpu=0x0"},
    "hynix": {"HardwareFeatures": "nand=0xADF1801D00,cpu=0x0"},
}
BOX_3370 = {
    "ProductID": "Fritz_Box_3370",
    "HWRevision": "175",
    "HWSubRevision": "5",
    "bootloaderVersion": "1.1186",
    "flashsize": "nor_size=0MB sflash_size=256KB nand_size=128MB",
    "firmware_version": "avm",
    "memsize": "0x08000000",
    "my_ipaddress": "192.168.178.1",
    "prompt": "Eva_AVM",
}
SYST_EVA = "AVM EVA Version 1.1186 0x0 0x741D"

EVA_COMMANDS = {
    "GETENV": {"perm": None, "auth": True, "arg": True, "help": "GETENV <name>"},
    "SETENV": {"perm": None, "auth": True, "arg": True, "help": "SETENV <name> <value>"},
    "UNSETENV": {"perm": None, "auth": True, "arg": True, "help": "UNSETENV <name>"},
    "MEDIA": {"perm": None, "auth": True, "arg": True, "help": "MEDIA FLSH|SDRAM"},
    "REBOOT": {"perm": None, "auth": True, "arg": False, "help": "REBOOT"},
}


class Erase:
    """The erase of a partition: over after `seconds` or when `release` exists."""

    seconds = 40.0
    release = None
    phase = "before-150"

    @classmethod
    def run(cls, handler, partition):
        handler.record({"erasing": partition, "phase": cls.phase})
        deadline = time.monotonic() + cls.seconds
        while time.monotonic() < deadline:
            if cls.release and os.path.exists(cls.release):
                break
            time.sleep(0.05)
        # EVA does not read the control connection while it erases; whether the
        # client is still there shows only afterwards
        handler.record({"erased": partition, "seconds": round(cls.seconds, 1)})


class EvaDTP(DTPHandler):
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

    def close(self):
        if (
            Erase.phase == "before-226"
            and self.transfer_finished
            and not self._closed
            and self.cmd_channel.media == "FLSH"
        ):
            Erase.run(self.cmd_channel, os.path.basename(getattr(self.file_obj, "name", "")))
        super().close()


class Recording:
    """Appends each command (a wrong password masked) to the JSON log."""

    log_path = None

    def record(self, item):
        with open(self.log_path, "a") as handle:
            handle.write(json.dumps(item) + "\n")

    def pre_process_command(self, line, cmd, arg):
        shown = "PASS ****" if cmd == "PASS" and arg != "adam2" else line
        self.record({"cmd": shown})
        super().pre_process_command(line, cmd, arg)


class EvaHandler(Recording, FTPHandler):
    proto_cmds = {**FTPHandler.proto_cmds, **EVA_COMMANDS}
    banner = "ADAM2 FTP Server ready"
    dtp_handler = EvaDTP
    environment = {}
    media = None

    # pyftpdlib's wording of the replies it sends itself -> EVA's (transcripts)
    WORDING = {
        "125 ": "150 Opening BINARY data connection",
        "150 ": "150 Opening BINARY data connection",
        "226 Transfer complete.": "226 Transfer complete",
    }

    def respond(self, resp, logfun=logging.debug):
        for start, eva in self.WORDING.items():
            if resp.startswith(start) and (len(start) == 4 or resp == start):
                resp = eva
                break
        super().respond(resp, logfun)

    def ftp_USER(self, line):
        if self.authenticated:
            self.flush_account()
        self.respond(f"331 Password required for {line}")
        self.username = line

    def handle_auth_success(self, home, password, msg_login):
        super().handle_auth_success(home, password, f"User {self.username} successfully logged in")

    def ftp_SYST(self, line):
        self.respond(f"215 {SYST_EVA}")

    def ftp_TYPE(self, line):
        if line.strip().upper() in ("I", "L8"):
            self._current_type = "i"
            self.respond("200 Type set to BINARY")
        elif line.strip().upper() == "A":
            self._current_type = "a"
            self.respond("200 Type set to ASCII")
        else:
            self.respond("501 unknown type")

    def ftp_GETENV(self, line):
        name = line.strip()
        value = self.environment.get(name)
        if value is None:
            self.respond(f"501 {name} environment variable not set.")
            return
        # the value line carries no reply code: a plain line on the control connection
        self.push(f"{name:<22}{value}\r\n")
        self.respond("200 GETENV command successful")

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
        if Erase.phase == "before-150":
            Erase.run(self, partition)
        return super().ftp_STOR(file, mode)

    def ftp_REBOOT(self, line):
        self.record({"rebooted": True, "environment": self.environment})
        self.push("221 Thank you for using the FTP service on ADAM2\r\n")
        self.respond("221 Goodbye.")
        self.close_when_done()


class PlainHandler(Recording, FTPHandler):
    """An ordinary FTP server (not EVA) that happens to accept adam2/adam2."""

    banner = "pyftpdlib ready."


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--addr", required=True)
    parser.add_argument("--port", type=int, default=21)
    parser.add_argument("--store", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--box", choices=["micron", "hynix", "plain"], default="micron")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--unset", action="append", default=[], metavar="NAME")
    parser.add_argument("--delay", type=float, default=0)
    parser.add_argument("--erase-seconds", type=float, default=40.0)
    parser.add_argument("--erase-release", default=None)
    parser.add_argument("--erase-phase", choices=["before-150", "before-226"], default="before-150")
    parser.add_argument("--abort-after", type=int)
    parser.add_argument("--abort-on", default="mtd0")
    args = parser.parse_args()

    handler = PlainHandler if args.box == "plain" else EvaHandler
    environment = {**BOX_3370, **BOXES.get(args.box, {})}
    environment.update(item.split("=", 1) for item in args.env)
    for name in args.unset:
        environment.pop(name, None)
    EvaHandler.environment = environment
    handler.log_path = args.log
    Erase.seconds, Erase.release, Erase.phase = (
        args.erase_seconds, args.erase_release, args.erase_phase,
    )  # fmt: skip
    EvaDTP.abort_after = args.abort_after
    EvaDTP.abort_on = args.abort_on
    authorizer = DummyAuthorizer()
    authorizer.add_user("adam2", "adam2", args.store, perm="elw")
    handler.authorizer = authorizer
    time.sleep(args.delay)  # the box is still booting: nothing listens yet
    server = FTPServer((args.addr, args.port), handler)
    with open(args.log, "a") as handle:
        handle.write(json.dumps({"listening": True}) + "\n")
    server.serve_forever()


if __name__ == "__main__":
    main()
