"""
Disk spin-down: plan the spindown formula, report a disk's power state and
find the processes that keep a disk awake.

The lab notebook's "Root disk spindown on Debian 9" found its last culprit with
``echo 1 > /proc/sys/vm/block_dump``; current kernels removed that switch.
:py:func:`audit` replaces it: it samples ``/proc/diskstats`` for the disk, the
per-process ``/proc/<pid>/io`` counters and, where tracefs is available, the
``block:block_bio_queue`` and ``writeback:writeback_mark_inode_dirty``
tracepoints (the same two places block_dump printed from: "READ/WRITE block"
and "dirtied inode"), and names the processes that touched the disk.
"""

import errno
import json
import logging
import os
import re
import select
import stat
import subprocess
import tempfile
import time
import uuid

from salt.exceptions import CommandExecutionError, SaltInvocationError

log = logging.getLogger(__name__)

__virtualname__ = "spindown"

HDPARM = "/sbin/hdparm"
# Where the kernel and systemd keep things; module attributes so that tests
# and unusual systems can point elsewhere.
UNIT_DIRS = (
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
)
UNIT_MARKER = "# Managed by labsalt (spindown formula)"
BY_ID = "/dev/disk/by-id"
# by-id links preferred as the stable name of a disk, best first.
BY_ID_PREFERENCE = ("ata-", "nvme-", "scsi-", "usb-", "wwn-")
# hdparm -S: 0 off, 1-240 x 5 s, 241-251 x 30 min, 252 21 min, 253 vendor, 254 reserved, 255 21:15.
SPINDOWN_RESERVED = 254
HOURLY_LINE = re.compile(r"^[^#\n]*run-parts[^\n]*/etc/cron\.hourly", re.MULTILINE)
TRACE_LINE = re.compile(
    r"^\s*(?P<comm>.*)-(?P<pid>\d+)\s+(?:\(\s*[\d-]+\)\s+)?\[\d+\]\s+\S+\s+"
    r"(?P<ts>\d+\.\d+):\s+(?P<event>\w+):\s+(?P<rest>.*)$"
)
TRACE_EVENTS = ("block/block_bio_queue", "writeback/writeback_mark_inode_dirty")


def __virtual__():
    if not os.path.isdir("/proc/self") or not os.path.isfile("/proc/diskstats"):
        return False, "spindown: needs Linux /proc (no /proc/diskstats here)"
    return __virtualname__


# --------------------------------------------------------------------------- disks


def _block_name(devnum):
    """Kernel name (sda, loop0, nvme0n1p1) of a block device number."""
    link = f"/sys/dev/block/{os.major(devnum)}:{os.minor(devnum)}"
    try:
        return os.path.basename(os.readlink(link))
    except OSError as exc:
        raise CommandExecutionError(f"{link}: the kernel does not know this block device") from exc


def _is_partition(name):
    return os.path.exists(f"/sys/class/block/{name}/partition")


def _stable_path(kernel_name, given):
    """The /dev/disk/by-id link of a disk (best prefix first), else the path given."""
    if given.startswith(BY_ID + "/"):
        return given
    try:
        links = sorted(os.listdir(BY_ID))
    except OSError:
        return given
    target = f"/dev/{kernel_name}"
    matches = [
        link
        for link in links
        if os.path.realpath(os.path.join(BY_ID, link)) == target and "-part" not in link
    ]
    for prefix in BY_ID_PREFERENCE:
        for link in matches:
            if link.startswith(prefix):
                return os.path.join(BY_ID, link)
    return os.path.join(BY_ID, matches[0]) if matches else given


def _unit_name(path):
    """hdparm-<last path component>.service, with characters systemd does not allow replaced."""
    return "hdparm-" + re.sub(r"[^A-Za-z0-9:_.-]", "_", os.path.basename(path)) + ".service"


def resolve_disk(device):
    """
    Resolve a disk given as ``sda``, ``/dev/sda`` or a ``/dev/disk/by-*`` link
    to its stable name (the ``/dev/disk/by-id`` link where udev made one), its
    kernel name, its device number and the name of its hdparm unit.

    CLI Example:

    .. code-block:: bash

        salt '*' spindown.resolve_disk sda
    """
    if not isinstance(device, str) or not device:
        raise SaltInvocationError(f"disk {device!r}: give a device path or a kernel name like sda")
    path = device if device.startswith("/") else f"/dev/{device}"
    try:
        info = os.stat(path)
    except OSError as exc:
        raise SaltInvocationError(f"disk {device}: {path} does not exist ({exc.strerror})") from exc
    if not stat.S_ISBLK(info.st_mode):
        raise SaltInvocationError(f"disk {device}: {path} is not a block device")
    name = _block_name(info.st_rdev)
    if _is_partition(name):
        raise SaltInvocationError(
            f"disk {device}: {name} is a partition; spin-down applies to the whole disk, name that"
        )
    stable = _stable_path(name, path if path.startswith("/dev/disk/") else f"/dev/{name}")
    return {
        "given": device,
        "device": stable,
        "kernel": name,
        "devnum": f"{os.major(info.st_rdev)}:{os.minor(info.st_rdev)}",
        "stable": stable.startswith("/dev/disk/"),
        "unit": _unit_name(stable),
    }


def _check_spindown_time(value, where):
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 255:
        raise SaltInvocationError(
            f"{where}: {value!r} is outside hdparm -S's range 0-255 "
            "(1-240 = n x 5 s, 241-251 = (n-240) x 30 min, 0 = never)"
        )
    if value == SPINDOWN_RESERVED:
        raise SaltInvocationError(f"{where}: 254 is reserved by hdparm -S (see hdparm(8))")


def describe_spindown_time(value):
    """
    hdparm(8)'s reading of a ``-S`` value, e.g. 120 -> "10 min".

    CLI Example:

    .. code-block:: bash

        salt '*' spindown.describe_spindown_time 120
    """
    _check_spindown_time(value, "spindown_time")
    if value == 0:
        return "never (spin-down off)"
    if value == 253:
        return "vendor-defined (8-12 h)"
    seconds = {252: 21 * 60, 255: 21 * 60 + 15}.get(value)
    if seconds is None:
        seconds = value * 5 if value <= 240 else (value - 240) * 1800
    parts = [(seconds // 3600, "h"), (seconds % 3600 // 60, "min"), (seconds % 60, "s")]
    return " ".join(f"{amount} {unit}" for amount, unit in parts if amount)


# --------------------------------------------------------------------------- plan


def _unit_file(unit):
    for directory in UNIT_DIRS:
        path = os.path.join(directory, unit)
        if os.path.exists(path):
            return path
    return None


def managed_units():
    """
    The hdparm units this formula wrote (files under /etc/systemd/system that
    carry its marker line).

    CLI Example:

    .. code-block:: bash

        salt '*' spindown.managed_units
    """
    found = []
    try:
        names = sorted(os.listdir(UNIT_DIRS[0]))
    except OSError:
        return found
    for name in names:
        if name.startswith("hdparm-") and name.endswith(".service"):
            try:
                with open(os.path.join(UNIT_DIRS[0], name), encoding="utf-8") as handle:
                    if UNIT_MARKER in handle.read():
                        found.append(name)
            except OSError:
                continue
    return found


def _hourly_jobs(directory):
    try:
        return sorted(n for n in os.listdir(directory) if not n.startswith("."))
    except FileNotFoundError:
        return []


# Time daemons that systemd-timesyncd conflicts with (Debian: time-daemon).
OTHER_TIME_DAEMONS = ("/usr/sbin/chronyd", "/usr/sbin/ntpd", "/usr/sbin/openntpd")
HDPARM_BLOCK = re.compile(
    r"^# BEGIN labsalt spindown[^\n]*\n(?:.*\n)*?# END labsalt spindown\n", re.M
)
HDPARM_ENTRY = re.compile(r"^\s*(/dev/\S+)\s*\{", re.M)


def _check_hdparm_conf(params, disks):
    """
    The site's own entries in hdparm.conf (outside labsalt's block) stay; an
    entry of the site's for one of the pillar's disks would fight the formula's,
    so it is refused, naming the disk.
    """
    hdparm = params.get("hdparm", {})
    if not hdparm.get("enabled", True) or not disks:
        return
    try:
        with open(hdparm.get("conf", "/etc/hdparm.conf"), encoding="utf-8") as handle:
            text = HDPARM_BLOCK.sub("", handle.read())
    except OSError:
        return
    ours = {f"/dev/{disk['kernel']}": index for index, disk in enumerate(disks)}
    for path in HDPARM_ENTRY.findall(text):
        index = ours.get(os.path.realpath(path))
        if index is not None:
            raise SaltInvocationError(
                f"spindown:disks:{index}:device: {hdparm.get('conf', '/etc/hdparm.conf')} "
                f"already has an entry for {path} (the same disk) outside labsalt's block; "
                "remove it there or leave the disk out of the pillar"
            )


def plan(params):
    """
    Check the merged spindown parameters against this host and return what the
    formula will do: each disk resolved to its stable name and unit, the timers
    to disable, stale hdparm units to remove, the hourly cron jobs to move.
    Every problem is raised as one error naming the pillar key, before any
    state runs.

    CLI Example:

    .. code-block:: bash

        salt '*' spindown.plan "$(salt-call --out json labsalt.mapdata spindown)"
    """
    if isinstance(params, str):
        params = json.loads(params)
    disks = []
    seen = {}
    default_time = params.get("spindown_time", 120)
    _check_spindown_time(default_time, "spindown:spindown_time")
    for index, disk in enumerate(params.get("disks") or []):
        where = f"spindown:disks:{index}"
        try:
            resolved = resolve_disk(disk["device"])
        except SaltInvocationError as exc:
            raise SaltInvocationError(f"{where}:device: {exc}") from None
        if resolved["kernel"] in seen:
            raise SaltInvocationError(
                f"{where}:device: {disk['device']} is the same disk as "
                f"spindown:disks:{seen[resolved['kernel']]}"
            )
        seen[resolved["kernel"]] = index
        value = disk.get("spindown_time", default_time)
        _check_spindown_time(value, f"{where}:spindown_time")
        resolved.update(
            spindown_time=value,
            meaning=describe_spindown_time(value),
            force=bool(disk.get("force", False)),
        )
        disks.append(resolved)

    timers = params.get("timers", {})
    unknown = [t for t in timers.get("disable", []) if _unit_file(t) is None]
    if unknown:
        raise SaltInvocationError(
            f"spindown:timers:disable: no such timer on this host: {', '.join(unknown)} "
            "(see systemctl list-timers --all)"
        )
    wanted = list(timers.get("disable", []))
    wanted += [t for t in timers.get("disable_if_present", []) if t not in wanted]
    to_disable = [t for t in wanted if _unit_file(t)]

    cron = params.get("cron", {})
    hourly = _hourly_jobs(cron.get("hourly_dir", "/etc/cron.hourly"))
    if cron.get("enabled", True) and hourly and cron.get("hourly_jobs") != "move_to_daily":
        raise SaltInvocationError(
            f"spindown:cron:hourly_jobs: {cron.get('hourly_dir', '/etc/cron.hourly')} has jobs "
            f"({', '.join(hourly)}) that would stop running; set it to move_to_daily or move them"
        )

    _check_hdparm_conf(params, disks)
    timesync = params.get("timesync", {})
    if timesync.get("enabled", True):
        other = [path for path in OTHER_TIME_DAEMONS if os.path.exists(path)]
        if other:
            raise SaltInvocationError(
                f"spindown:timesync:enabled: this host keeps time with {other[0]}; the timesync "
                "step installs systemd-timesyncd, which would replace it: set it to false"
            )

    current = {d["unit"] for d in disks}
    return {
        "disks": disks,
        "stale_units": [u for u in managed_units() if u not in current],
        "timers": to_disable,
        "hourly_jobs": hourly if cron.get("enabled", True) else [],
    }


# --------------------------------------------------------------------------- undo record


def _read_record(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise CommandExecutionError(f"{path}: not valid JSON ({exc}); fix or remove it") from exc


def undo_get(key, path="/var/lib/labsalt/spindown-undo.json"):
    """
    What the formula recorded under ``key`` before changing it (so that clean
    can put it back), or None.

    CLI Example:

    .. code-block:: bash

        salt '*' spindown.undo_get timers
    """
    return _read_record(path).get(key)


def undo_set(key, value, path="/var/lib/labsalt/spindown-undo.json"):
    """
    Record ``value`` under ``key``; ``None`` removes the key (and the file when
    it becomes empty).

    CLI Example:

    .. code-block:: bash

        salt '*' spindown.undo_set timers '["apt-daily.timer"]'
    """
    record = _read_record(path)
    if value is None:
        record.pop(key, None)
    else:
        record[key] = value
    if not record:
        if os.path.exists(path):
            os.unlink(path)
        return record
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(record, handle, indent=1, sort_keys=True)
    os.replace(tmp, path)
    return record


# --------------------------------------------------------------------------- power state


def state(device):
    """
    Power state of a disk from ``hdparm -C``: ``active/idle``, ``standby``,
    ``sleeping``, or ``unknown`` with the reason when the device cannot report
    it (loop devices, virtual disks, many USB bridges).  hdparm -C does not
    wake a disk in standby.

    CLI Example:

    .. code-block:: bash

        salt '*' spindown.state /dev/disk/by-id/ata-ST2000DM001-1CH164_Z1E1ABCD
    """
    disk = resolve_disk(device)
    if not os.access(HDPARM, os.X_OK):
        return {
            "device": disk["device"],
            "state": "unknown",
            "reason": f"{HDPARM} is not installed",
        }
    proc = subprocess.run(
        [HDPARM, "-C", disk["device"]], capture_output=True, text=True, check=False, timeout=30
    )
    match = re.search(r"drive state is:\s+(\S+)", proc.stdout)
    reported = match.group(1) if match else "unknown"
    result = {"device": disk["device"], "kernel": disk["kernel"], "state": reported}
    if proc.returncode != 0 or reported == "unknown":
        why = os.strerror(proc.returncode) if 0 < proc.returncode < 134 else "no answer"
        detail = proc.stderr.strip() or "no power-mode answer"
        result["state"] = "unknown"
        result["reason"] = (
            f"{disk['kernel']} cannot report its power mode: hdparm -C exited "
            f"{proc.returncode} ({why}): {detail}. It does not take ATA power commands "
            "(a loop device, virtual disk or USB bridge without SAT passthrough), so "
            "hdparm -S cannot spin it down either"
        )
    return result


# --------------------------------------------------------------------------- audit


def _diskstats(name):
    """(reads completed, sectors read, writes completed, sectors written) of one device."""
    with open("/proc/diskstats", encoding="ascii") as handle:
        for line in handle:
            fields = line.split()
            if fields[2] == name:
                return int(fields[3]), int(fields[5]), int(fields[7]), int(fields[9])
    raise CommandExecutionError(f"{name} disappeared from /proc/diskstats")


def _devnums(name):
    """Device numbers (major, minor) of a disk and its partitions."""
    nums = []
    for entry in [name] + sorted(
        p for p in os.listdir(f"/sys/class/block/{name}") if p.startswith(name)
    ):
        path = f"/sys/class/block/{entry}/dev" if entry != name else f"/sys/class/block/{name}/dev"
        try:
            with open(path, encoding="ascii") as handle:
                major, minor = handle.read().strip().split(":")
            nums.append((int(major), int(minor)))
        except OSError:
            continue
    return nums


def _proc_io():
    """{pid: (read_bytes, write_bytes)} of every process we may read."""
    counters = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/io", encoding="ascii") as handle:
                values = dict(line.split(": ") for line in handle.read().splitlines())
        except (OSError, ValueError):
            continue
        counters[int(entry)] = (int(values["read_bytes"]), int(values["write_bytes"]))
    return counters


def _describe_pid(pid):
    info = {"pid": pid}
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key in ("Name", "Tgid", "PPid"):
                    info[key.lower()] = value.strip()
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            info["cmdline"] = handle.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        pass
    return info


def _files_on(pid, devnums):
    """True when a process has a file, cwd or mapping open on one of the device numbers."""
    wanted = {os.makedev(major, minor) for major, minor in devnums}
    base = f"/proc/{pid}"
    try:
        names = [f"{base}/fd/{fd}" for fd in os.listdir(f"{base}/fd")] + [f"{base}/cwd"]
    except OSError:
        return False
    for path in names:
        try:
            if os.stat(path).st_dev in wanted:
                return True
        except OSError:
            continue
    return False


def _find_tracefs():
    """The mounted tracefs, or None."""
    with open("/proc/mounts", encoding="utf-8") as handle:
        for line in handle:
            fields = line.split()
            if fields[2] == "tracefs":
                return fields[1]
    return None


class _Tracer:
    """A private tracefs instance with the two block_dump tracepoints, filtered to one disk."""

    def __init__(self, devnums, bdi):
        self.devnums = devnums
        self.bdi = bdi
        self.mounted = None
        self.instance = None
        self.pipe = None
        self.notes = []

    def start(self):
        root = _find_tracefs()
        if root is None:
            self.mounted = tempfile.mkdtemp(prefix="labsalt-spindown-tracefs.")
            proc = subprocess.run(
                ["mount", "-t", "tracefs", "nodev", self.mounted],
                capture_output=True,
                text=True,
                check=False,
            )
            if proc.returncode != 0:
                os.rmdir(self.mounted)
                self.mounted = None
                raise OSError(
                    f"tracefs is not mounted and mounting it failed: {proc.stderr.strip()}"
                )
            root = self.mounted
        self.instance = os.path.join(root, "instances", f"labsalt-spindown-{uuid.uuid4().hex[:8]}")
        os.mkdir(self.instance)
        kernel_devs = " || ".join(
            f"dev == {(major << 20) | minor}" for major, minor in self.devnums
        )
        filters = {
            "block/block_bio_queue": kernel_devs,
            "writeback/writeback_mark_inode_dirty": f'name == "{self.bdi}"',
        }
        for event, expression in filters.items():
            directory = os.path.join(self.instance, "events", event)
            if not os.path.isdir(directory):
                self.notes.append(f"tracepoint {event} is missing in this kernel")
                continue
            with open(os.path.join(directory, "filter"), "w", encoding="ascii") as handle:
                handle.write(expression)
            with open(os.path.join(directory, "enable"), "w", encoding="ascii") as handle:
                handle.write("1")
        self.pipe = os.open(os.path.join(self.instance, "trace_pipe"), os.O_RDONLY | os.O_NONBLOCK)
        self.buffer = b""

    def read(self, timeout):
        """Complete trace lines available within ``timeout`` seconds."""
        ready, _, _ = select.select([self.pipe], [], [], max(timeout, 0))
        if not ready:
            return []
        try:
            chunk = os.read(self.pipe, 1 << 16)
        except BlockingIOError:
            return []
        self.buffer += chunk
        *lines, self.buffer = self.buffer.split(b"\n")
        return [line.decode(errors="replace") for line in lines]

    def stop(self):
        if self.pipe is not None:
            os.close(self.pipe)
        if self.instance and os.path.isdir(self.instance):
            for event in TRACE_EVENTS:
                try:
                    with open(
                        os.path.join(self.instance, "events", event, "enable"),
                        "w",
                        encoding="ascii",
                    ) as handle:
                        handle.write("0")
                except OSError:
                    pass
            for attempt in range(10):
                try:
                    os.rmdir(self.instance)
                    break
                except OSError as exc:
                    if exc.errno != errno.EBUSY or attempt == 9:
                        log.warning("spindown.audit: could not remove %s: %s", self.instance, exc)
                        break
                    time.sleep(0.1)
        if self.mounted:
            subprocess.run(["umount", self.mounted], check=False)
            os.rmdir(self.mounted)


def _kernel_thread(info):
    """Kernel threads have no command line (and ppid 2, kthreadd)."""
    return not info.get("cmdline") and info.get("ppid") in ("0", "2", None)


def audit(device, seconds=60, interval=1.0, top=10, tracing=True):
    """
    Watch a disk for ``seconds`` and name the processes that touched it,
    ranked: user processes before kernel threads (the flusher and journal
    threads write what the processes above them dirtied), then by in how many
    sampling intervals they were seen, then by how many requests they caused.

    Where tracefs is available (mounted, or mounted privately for the run and
    unmounted after), ``block:block_bio_queue`` (read/write requests queued to
    the disk and who queued them) and ``writeback:writeback_mark_inode_dirty``
    (who dirtied data or metadata that will be written to it, the event
    ``block_dump`` reported as "dirtied inode") are recorded in a private trace
    instance.  Without tracefs the ranking falls back to ``/proc/<pid>/io``
    deltas of processes that have a file open on the disk, and says so in
    ``method`` and ``notes``.  ``disk`` holds the ``/proc/diskstats`` deltas
    and in how many intervals the disk saw I/O at all.

    CLI Example:

    .. code-block:: bash

        salt '*' spindown.audit sda seconds=600
        salt-call spindown.audit /dev/disk/by-id/ata-ST2000DM001-1CH164_Z1E1ABCD seconds=120 top=5
    """
    seconds = float(seconds)
    interval = float(interval)
    if seconds <= 0 or interval <= 0:
        raise SaltInvocationError("spindown.audit: seconds and interval must be positive")
    disk = resolve_disk(device)
    name = disk["kernel"]
    devnums = _devnums(name)
    me = os.getpid()
    notes = []
    tracer = None
    if tracing:
        tracer = _Tracer(devnums, disk["devnum"])
        try:
            tracer.start()
            notes.extend(tracer.notes)
        except OSError as exc:
            notes.append(f"no block tracing ({exc}); attributing by /proc/<pid>/io instead")
            tracer.stop()
            tracer = None
    else:
        notes.append("tracing switched off; attributing by /proc/<pid>/io")

    procs = {}  # tgid -> record
    known = {}  # tid -> description

    def record(tid, comm):
        if tid not in known:
            known[tid] = _describe_pid(tid)
            known[tid].setdefault("name", comm)
        info = known[tid]
        tgid = int(info.get("tgid", tid))
        entry = procs.get(tgid)
        if entry is None:
            main = known.get(tgid) or _describe_pid(tgid)
            known[tgid] = main
            entry = procs[tgid] = {
                "pid": tgid,
                "name": main.get("name", comm),
                "cmdline": main.get("cmdline", ""),
                "kernel_thread": _kernel_thread(main),
                "reads": 0,
                "writes": 0,
                "read_bytes": 0,
                "write_bytes": 0,
                "dirtied": 0,
                "intervals": set(),
            }
        return entry

    start = time.monotonic()
    deadline = start + seconds
    stats_before = _diskstats(name)
    io_first = _proc_io()
    io_last = dict(io_first)
    busy_intervals = 0
    last_stats = stats_before
    next_sample = start + interval
    try:
        while True:
            now = time.monotonic()
            if now >= next_sample or now >= deadline:
                stats = _diskstats(name)
                if stats != last_stats:
                    busy_intervals += 1
                last_stats = stats
                for pid, values in _proc_io().items():
                    io_last[pid] = values
                    io_first.setdefault(pid, (0, 0))  # born during the audit
                next_sample += interval
                if now >= deadline:
                    break
            wait = min(next_sample, deadline) - time.monotonic()
            if tracer is None:
                time.sleep(max(wait, 0))
                continue
            for line in tracer.read(wait):
                match = TRACE_LINE.match(line)
                if not match or int(match["pid"]) == me:
                    continue
                slot = int((time.monotonic() - start) // interval)
                entry = record(int(match["pid"]), match["comm"].strip())
                entry["intervals"].add(slot)
                if match["event"] == "block_bio_queue":
                    parts = match["rest"].split()
                    rwbs = parts[1] if len(parts) > 1 else ""
                    size = int(parts[4]) * 512 if len(parts) > 4 and parts[4].isdigit() else 0
                    if "R" in rwbs:
                        entry["reads"] += 1
                        entry["read_bytes"] += size
                    elif "W" in rwbs:
                        entry["writes"] += 1
                        entry["write_bytes"] += size
                else:
                    entry["dirtied"] += 1
    finally:
        if tracer is not None:
            tracer.stop()
    stats_after = _diskstats(name)

    deltas = {
        pid: (io_last[pid][0] - io_first[pid][0], io_last[pid][1] - io_first[pid][1])
        for pid in io_last
        if pid in io_first and pid != me
    }
    if tracer is None:
        # Without tracing, /proc/<pid>/io cannot tell which disk a process used:
        # name those with storage I/O and a file open on this disk.
        for pid, (read, written) in deltas.items():
            if (read or written) and _files_on(pid, devnums):
                entry = record(pid, "")
                entry["read_bytes"] += read
                entry["write_bytes"] += written
                entry["intervals"].add(0)
    # A command that runs again and again (a cron job, `dma -q`) is one culprit:
    # entries with the same name and command line are merged, their pids listed.
    merged = {}
    counters = ("reads", "writes", "read_bytes", "write_bytes", "dirtied")
    for entry in procs.values():
        read, written = deltas.get(entry["pid"], (0, 0))
        key = (entry["name"], entry["cmdline"], entry["kernel_thread"])
        if key not in merged:
            merged[key] = dict(entry, pids=[], intervals=set(), io_read_bytes=0, io_write_bytes=0)
            for counter in counters:
                merged[key][counter] = 0
        into = merged[key]
        into["pids"].append(entry["pid"])
        into["intervals"] |= entry["intervals"]
        into["io_read_bytes"] += read
        into["io_write_bytes"] += written
        for counter in counters:
            into[counter] += entry[counter]
    for entry in merged.values():
        entry["intervals"] = len(entry["intervals"])
        entry["requests"] = entry["reads"] + entry["writes"] + entry["dirtied"]

    ranked = sorted(
        merged.values(),
        key=lambda e: (e["kernel_thread"], -e["intervals"], -e["requests"], -e["write_bytes"]),
    )
    summary = [
        f"{e['name']}[{','.join(map(str, e['pids']))}]"
        f"{' (kernel thread)' if e['kernel_thread'] else ''}: "
        f"active in {e['intervals']} of {max(1, round(seconds / interval))} intervals, "
        f"{e['reads']} reads, {e['writes']} writes, {e['dirtied']} dirtied, "
        f"{e['read_bytes'] + e['write_bytes']} bytes"
        for e in ranked[: int(top)]
    ]
    reads = stats_after[0] - stats_before[0]
    writes = stats_after[2] - stats_before[2]
    return {
        "device": disk["device"],
        "kernel": name,
        "seconds": round(time.monotonic() - start, 1),
        "interval": interval,
        "method": "tracefs" if tracer is not None else "proc-io",
        "disk": {
            "reads": reads,
            "writes": writes,
            "read_bytes": (stats_after[1] - stats_before[1]) * 512,
            "write_bytes": (stats_after[3] - stats_before[3]) * 512,
            "busy_intervals": busy_intervals,
        },
        "processes": ranked[: int(top)],
        "summary": summary,
        "notes": notes,
    }
