"""
Patch a few bytes of an ELF shared library, located by meaning, safely.

A *recipe* (YAML data, ``elfpatch_recipes.yaml`` next to this module) names a
symbol, a byte pattern inside that symbol's code (``??`` wildcards, ``[..]``
around the bytes to change) and, where the compiler put the value into a
table, a RIP-relative reference from the pattern to that data.  The located
bytes must be unique and hold either the recipe's original value or one of its
patched values; anything else is refused with what was found.  A recipe can
list several builds (compilations) of the same library; exactly one must match.

The file is replaced atomically: the new content goes to a temporary file in
the same directory (owner, mode and extended attributes such as
``security.selinux`` copied), is fsynced and renamed over the library, so a
process killed at any moment leaves the old or the new library, and running
programs keep their mapping of the old inode.  A copy of the original goes to
``backup_dir`` first.  The original's sha256 (computed, also for a patched
file) is checked against the recipe's allow-list of known builds.

The OpenMPI recipe's value is the hwloc type of the NUMA nodes' parent, read
by ``topology.numa_parent`` from hwloc's own XML export (``lstopo-no-graphics
--of xml``, package hwloc), so it sees what OpenMPI's hwloc sees, including
``HWLOC_XMLFILE``.

ELF parsing is pyelftools; instruction-level knowledge sits in per-architecture
classes (``ARCHES``), so another architecture is one more class.
"""

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import re
import signal
import stat
import tempfile

from salt.exceptions import CommandExecutionError, SaltInvocationError

try:
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection

    HAS_ELFTOOLS = True
except ImportError:
    HAS_ELFTOOLS = False

try:
    import yaml

    HAS_YAML = True
    _YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
except ImportError:
    HAS_YAML = False

log = logging.getLogger(__name__)

__virtualname__ = "elfpatch"

RECIPES_FILE = "elfpatch_recipes.yaml"
RECIPES_URL = "salt://_modules/" + RECIPES_FILE
DEFAULT_BACKUP_DIR = "/var/lib/labsalt/elfpatch"
TEMP_PREFIX = ".elfpatch-"
# Kill points for the atomicity tests: with LABSALT_ELFPATCH_STOP_AT=<step> in
# the environment, the process stops itself (SIGSTOP) at that step, so a test
# can SIGKILL it exactly there instead of guessing with timers.  Steps:
# locked, then for each file written ("backup", "backup-meta", "library"):
# <file>:temp-written, <file>:synced, <file>:renamed, <file>:dir-synced.
STOP_AT_VARIABLE = "LABSALT_ELFPATCH_STOP_AT"


def _kill_point(step):
    if os.environ.get(STOP_AT_VARIABLE) == step:
        os.kill(os.getpid(), signal.SIGSTOP)


_RECIPES_CACHE = {}  # (path, mtime, size) -> checked recipes


def __virtual__():
    if not HAS_ELFTOOLS:
        return False, "elfpatch needs pyelftools (pip install pyelftools)"
    if not HAS_YAML:
        return False, "elfpatch needs PyYAML"
    return __virtualname__


# --------------------------------------------------------------------------- architectures


class Arch:
    """What elfpatch needs to know about one instruction set."""

    name = None
    e_machine = None

    def reference(self, kind, spec, code, vaddr):
        """Virtual address that the instruction bytes ``code`` (at ``vaddr``) refer to."""
        raise SaltInvocationError(f"reference kind '{kind}' is not supported on {self.name}")


class X86_64(Arch):
    name = "x86_64"
    e_machine = "EM_X86_64"

    def reference(self, kind, spec, code, vaddr):
        if kind != "rip_relative":
            return super().reference(kind, spec, code, vaddr)
        # disp32 is relative to the address of the next instruction (RIP).
        disp = int.from_bytes(code[spec["disp"] : spec["disp"] + 4], "little", signed=True)
        return vaddr + spec["next"] + disp


ARCHES = {arch.name: arch for arch in (X86_64(),)}
_ARCH_BY_MACHINE = {arch.e_machine: arch for arch in ARCHES.values()}


# --------------------------------------------------------------------------- patterns


class Pattern:
    """Hex bytes with ``??`` wildcards and ``[..]`` around the site to patch."""

    def __init__(self, text, where):
        self.text = " ".join(str(text).split())
        tokens = re.findall(r"\[|\]|\?\?|[0-9a-fA-F]{2}|\S+", self.text)
        self.bytes = []  # int, or None for a wildcard
        self.site = None  # (start, end) in the pattern
        start = None
        for token in tokens:
            if token == "[":
                if start is not None or self.site:
                    raise SaltInvocationError(f"{where}: pattern has more than one [..] site")
                start = len(self.bytes)
            elif token == "]":
                if start is None or start == len(self.bytes):
                    raise SaltInvocationError(f"{where}: pattern has an empty or unopened ]")
                self.site = (start, len(self.bytes))
                start = None
            elif token == "??":
                if start is not None:
                    raise SaltInvocationError(f"{where}: wildcards inside [..] are not allowed")
                self.bytes.append(None)
            elif re.fullmatch(r"[0-9a-fA-F]{2}", token):
                self.bytes.append(int(token, 16))
            else:
                raise SaltInvocationError(f"{where}: '{token}' is not a hex byte, ?? or [ ]")
        if start is not None:
            raise SaltInvocationError(f"{where}: pattern has an unclosed [")
        if not self.bytes:
            raise SaltInvocationError(f"{where}: pattern is empty")
        lo, hi = self.site or (0, 0)
        parts = []
        for index, value in enumerate(self.bytes):
            wild = value is None or lo <= index < hi
            parts.append(b"." if wild else re.escape(bytes([value])))
        # A lookahead finds overlapping occurrences too, so uniqueness is honest.
        self.regex = re.compile(b"(?=" + b"".join(parts) + b")", re.DOTALL)

    def __len__(self):
        return len(self.bytes)

    @property
    def original(self):
        lo, hi = self.site
        return bytes(self.bytes[lo:hi])

    def find(self, data, start, end):
        # With endpos, the lookahead cannot see past the symbol's end.
        return [m.start() for m in self.regex.finditer(data, start, end)]

    def matches_at(self, data, offset):
        return bool(self.regex.match(data, offset)) and offset + len(self) <= len(data)


# --------------------------------------------------------------------------- recipes


def _recipes_path(recipes):
    if recipes and str(recipes).startswith("salt://"):
        cached = __salt__["cp.cache_file"](recipes)
        if not cached:
            raise CommandExecutionError(f"recipes file {recipes} is not on the file server")
        return cached
    if recipes:
        return recipes
    beside = os.path.join(os.path.dirname(os.path.abspath(__file__)), RECIPES_FILE)
    if os.path.isfile(beside):
        return beside
    # salt-ssh ships only the .py files of _modules; the file server has the YAML.
    return _recipes_path(RECIPES_URL)


def load_recipes(recipes=None):
    """
    Return the recipes (YAML data), checked: every build's patterns parse, its
    architecture is known and it has exactly one [..] site.

    CLI Example:

    .. code-block:: bash

        salt-call elfpatch.load_recipes
    """
    path = _recipes_path(recipes)
    try:
        st = os.stat(path)
        key = (path, st.st_mtime_ns, st.st_size)
        if key in _RECIPES_CACHE:
            return _RECIPES_CACHE[key]
        with open(path, encoding="utf-8") as handle:
            data = yaml.load(handle, Loader=_YAML_LOADER)  # noqa: S506 (a safe loader)
    except OSError as exc:
        raise CommandExecutionError(f"cannot read recipes file {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise CommandExecutionError(f"recipes file {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or not data:
        raise CommandExecutionError(f"recipes file {path} must map recipe names to recipes")
    for name, recipe in data.items():
        _check_recipe(name, recipe, path)
    _RECIPES_CACHE.clear()
    _RECIPES_CACHE[key] = data
    return data


def _check_recipe(name, recipe, path):
    where = f"{path}: recipe {name}"
    for key in ("symbol", "parameter", "builds"):
        if key not in recipe:
            raise CommandExecutionError(f"{where}: '{key}' is missing")
    choices = recipe["parameter"].get("choices")
    if not isinstance(choices, dict) or not choices:
        raise CommandExecutionError(f"{where}: parameter:choices must map names to values")
    for build in recipe["builds"]:
        bwhere = f"{where} build {build.get('name', '?')}"
        if build.get("arch") not in ARCHES:
            raise CommandExecutionError(
                f"{bwhere}: arch {build.get('arch')!r} is not one of {', '.join(ARCHES)}"
            )
        code = Pattern(build.get("code", ""), f"{bwhere} code")
        has_data = "data" in build
        if has_data != ("reference" in build):
            raise CommandExecutionError(f"{bwhere}: 'data' and 'reference' go together")
        site_in = Pattern(build["data"], f"{bwhere} data") if has_data else code
        if site_in.site is None:
            raise CommandExecutionError(f"{bwhere}: no [..] site in its patterns")
        if has_data and code.site:
            raise CommandExecutionError(f"{bwhere}: the [..] site belongs in 'data' only")


def _recipe(name, recipes):
    all_recipes = load_recipes(recipes)
    if name not in all_recipes:
        raise SaltInvocationError(
            f"unknown recipe '{name}' (known: {', '.join(sorted(all_recipes))})"
        )
    return all_recipes[name]


# --------------------------------------------------------------------------- ELF


def _read(path):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError as exc:
        raise CommandExecutionError(f"{path} does not exist") from exc
    except IsADirectoryError as exc:
        raise CommandExecutionError(f"{path} is a directory, not an ELF file") from exc
    except OSError as exc:
        raise CommandExecutionError(f"cannot read {path}: {exc.strerror}") from exc


class _Elf:
    """The parts of an ELF file elfpatch needs, from pyelftools."""

    def __init__(self, path, data):
        import io  # noqa: PLC0415

        if not data.startswith(b"\x7fELF"):
            raise CommandExecutionError(f"{path} is not an ELF file")
        try:
            self.elf = ELFFile(io.BytesIO(data))
            self.machine = self.elf["e_machine"]
            self.sections = list(self.elf.iter_sections())
        except ELFError as exc:
            raise CommandExecutionError(f"{path} is not a valid ELF file: {exc}") from exc
        self.path = path
        self._symbols = {}
        arch = _ARCH_BY_MACHINE.get(self.machine)
        self.arch = arch.name if arch else self.machine

    def symbol(self, name):
        """(vaddr, size, table) of a defined symbol from .symtab, else .dynsym."""
        if name not in self._symbols:
            self._symbols[name] = self._find_symbol(name)
        return self._symbols[name]

    def _find_symbol(self, name):
        seen = []
        for wanted in (".symtab", ".dynsym"):
            for section in self.sections:
                if not isinstance(section, SymbolTableSection) or section.name != wanted:
                    continue
                for sym in self._symbols_named(section, name):
                    if sym["st_shndx"] != "SHN_UNDEF" and sym["st_size"] > 0:
                        return sym["st_value"], sym["st_size"], wanted
                    seen.append(wanted)
        how = f" (only undefined in {', '.join(sorted(set(seen)))})" if seen else ""
        tables = [s.name for s in self.sections if isinstance(s, SymbolTableSection)]
        raise CommandExecutionError(
            f"symbol {name} is not defined in {self.path}{how}; symbol tables searched: "
            f"{', '.join(tables) or 'none'}"
        )

    def _symbols_named(self, section, name):
        """
        Symbols called ``name`` in one table.  pyelftools decodes every entry to
        build its name map, which takes ~100 ms on libopen-rte; instead find the
        name's offsets in the string table, compare the 4-byte st_name field of
        each entry (first in both ELF32 and ELF64 symbols) and let pyelftools
        decode only the entries that match.
        """
        strings = section.stringtable.data()
        needle = name.encode() + b"\0"
        offsets = set()
        pos = strings.find(needle)
        while pos != -1:
            offsets.add(pos)
            pos = strings.find(needle, pos + 1)
        if not offsets:
            return []
        table = section.data()
        size = section["sh_entsize"] or (24 if self.elf.elfclass == 64 else 16)
        order = "little" if self.elf.little_endian else "big"
        return [
            section.get_symbol(index)
            for index in range(section.num_symbols())
            if int.from_bytes(table[index * size : index * size + 4], order) in offsets
        ]

    def offset(self, vaddr, size=1):
        """File offset of ``vaddr`` inside a section that has file contents."""
        for section in self.sections:
            start, length = section["sh_addr"], section["sh_size"]
            if section["sh_flags"] & 0x2 and start <= vaddr and vaddr + size <= start + length:
                if section["sh_type"] == "SHT_NOBITS":
                    raise CommandExecutionError(
                        f"{self.path}: address {vaddr:#x} is in {section.name}, "
                        "which has no bytes in the file"
                    )
                return section["sh_offset"] + vaddr - start, section.name
        raise CommandExecutionError(f"{self.path}: address {vaddr:#x} is in no loaded section")


# --------------------------------------------------------------------------- locating


def _locate_build(elf, data, recipe, build):
    """The site of one build in ``data``; raises with what was found otherwise."""
    if elf.arch != build["arch"]:
        raise CommandExecutionError(f"the file is {elf.arch}, the build is {build['arch']}")
    symbol = recipe["symbol"]
    vaddr, size, table = elf.symbol(symbol)
    start, _ = elf.offset(vaddr, size)
    code = Pattern(build["code"], build["name"])
    hits = code.find(data, start, start + size)
    if not hits:
        raise CommandExecutionError(
            f"pattern '{code.text}' not found in {symbol} ({size} bytes at {vaddr:#x})"
        )
    if len(hits) > 1:
        where = ", ".join(f"{vaddr + hit - start:#x}" for hit in hits)
        raise CommandExecutionError(
            f"pattern '{code.text}' is not unique in {symbol}: {len(hits)} matches at {where}"
        )
    hit = hits[0]
    site_pattern, site_base, site_section = code, hit, None
    if "reference" in build:
        ((kind, spec),) = build["reference"].items()
        arch = ARCHES[build["arch"]]
        target = arch.reference(kind, spec, data[hit : hit + len(code)], vaddr + hit - start)
        site_pattern = Pattern(build["data"], build["name"])
        site_base, site_section = elf.offset(target, len(site_pattern))
        if not site_pattern.matches_at(data, site_base):
            found = data[site_base : site_base + len(site_pattern)].hex(" ")
            raise CommandExecutionError(
                f"the {kind} reference in {symbol} points to {target:#x} "
                f"({site_section}), which holds {found}, not '{site_pattern.text}'"
            )
    lo, hi = site_pattern.site
    offset = site_base + lo
    return {
        "build": build["name"],
        "symbol": symbol,
        "symbol_table": table,
        "offset": offset,
        "section": site_section or ".text",
        "original": site_pattern.original,
        "found": data[offset : offset + hi - lo],
    }


def _locate(path, data, recipe):
    """The one build of ``recipe`` that matches ``data``; errors list every attempt."""
    elf = _Elf(path, data)
    sites, failures = [], []
    for build in recipe["builds"]:
        try:
            sites.append(_locate_build(elf, data, recipe, build))
        except CommandExecutionError as exc:
            failures.append(f"{build['name']}: {exc}")
    if not sites:
        raise CommandExecutionError(
            f"{path}: no build of the recipe matches: " + "; ".join(failures)
        )
    if len({site["offset"] for site in sites}) > 1:
        raise CommandExecutionError(
            f"{path}: ambiguous, builds {', '.join(s['build'] for s in sites)} "
            "match at different places"
        )
    return sites[0]


def _value_bytes(value, length):
    return int(value).to_bytes(length, "little")


def _choice(recipe, value):
    """
    (name, int) of a parameter value given by name (``Die``) or number (``19``,
    ``0x13``); anything else is refused with the recipe's values.  A bare
    ``0c`` is not a number here: hex needs its ``0x``.
    """
    choices = recipe["parameter"]["choices"]
    number = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"0[xX][0-9a-fA-F]{1,16}", text):
            number = int(text, 16)
        elif re.fullmatch(r"[0-9]{1,19}", text):
            number = int(text, 10)
        else:
            for name, known in choices.items():
                if name.lower() == text.lower():
                    return name, known
    if number is not None:
        for name, known in choices.items():
            if known == number:
                return name, number
    allowed = ", ".join(f"{n} ({v:#x})" for n, v in choices.items())
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:36] + "...'"
    raise SaltInvocationError(
        f"{recipe['parameter']['name']} {shown} is not one of the recipe's values "
        f"(a name, a decimal number or 0x...): {allowed}"
    )


def _sha256(data):
    return hashlib.sha256(data).hexdigest()


def _sha256_with(data, offset, value):
    """sha256 of ``data`` with ``value`` at ``offset``, without copying the file."""
    view = memoryview(data)
    digest = hashlib.sha256(view[:offset])
    digest.update(value)
    digest.update(view[offset + len(value) :])
    return digest.hexdigest()


def _with_site(data, site, value):
    offset = site["offset"]
    return data[:offset] + value + data[offset + len(value) :]


def _status(path, recipe, known_sha256=None):
    data = _read(path)
    site = _locate(path, data, recipe)
    sha = _sha256(data)
    if site["found"] == site["original"]:
        original_sha = sha
    else:
        original_sha = _sha256_with(data, site["offset"], site["original"])
    known = {sha for b in recipe["builds"] for sha in b.get("sha256") or []}
    known.update(known_sha256 or [])
    found = site["found"]
    value_name = None
    if found == site["original"]:
        state = "original"
    else:
        number = int.from_bytes(found, "little")
        names = [n for n, v in recipe["parameter"]["choices"].items() if v == number]
        state = "patched" if names else "unknown"
        value_name = names[0] if names else None
    result = {
        "path": path,
        "state": state,
        "sha256": sha,
        "original_sha256": original_sha,
        "known_build": original_sha in known,
        "build": site["build"],
        "symbol": site["symbol"],
        "symbol_table": site["symbol_table"],
        "section": site["section"],
        "offset": site["offset"],
        "bytes": found.hex(" "),
        "original_bytes": site["original"].hex(" "),
    }
    if value_name:
        result[recipe["parameter"]["name"]] = value_name
    return result, data, site


def _resolve(path):
    if not isinstance(path, str) or not path:
        raise SaltInvocationError("the library path must be a non-empty string")
    if not os.path.isabs(path):
        raise SaltInvocationError(f"the library path {path!r} must be absolute")
    return os.path.realpath(path)


# --------------------------------------------------------------------------- topology


def can_read_topology():
    """
    Compatibility name for :py:func:`topology.can_read_topology` (moved there:
    the topology module reads hwloc's topology for the suite).

    CLI Example:

    .. code-block:: bash

        salt-call elfpatch.can_read_topology
    """
    return __salt__["topology.can_read_topology"]()


def numa_parent(xml_file=None):
    """
    Compatibility name for :py:func:`topology.numa_parent` (moved there).

    CLI Example:

    .. code-block:: bash

        salt-call elfpatch.numa_parent
    """
    return __salt__["topology.numa_parent"](xml_file)


# --------------------------------------------------------------------------- writing


@contextlib.contextmanager
def _locked(directory):
    """Serialize elfpatch runs on one directory (flock on the directory itself)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _copy_xattrs(src, dst_fd):
    try:
        names = os.listxattr(src)
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return
        raise
    for name in names:
        os.setxattr(dst_fd, name, os.getxattr(src, name))


def _remove_stale_temps(path):
    """Temp files of ``path`` left by a killed run (call under ``_locked``)."""
    directory, base = os.path.split(path)
    _remove_temps_in(directory, f".{base}{TEMP_PREFIX}")


def _remove_temps_in(directory, prefix="."):
    """elfpatch temp files in ``directory`` whose name starts with ``prefix``."""
    for name in os.listdir(directory):
        if name.startswith(prefix) and TEMP_PREFIX in name and name.endswith(".tmp"):
            log.warning("elfpatch: removing %s left by an interrupted run", name)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(directory, name))


def _atomic_write(path, data, like=None, what="library"):
    """
    Replace ``path`` by ``data``: temp file in the same directory, fsync, rename.
    ``what`` names the file in the kill points (``_kill_point``).
    """
    directory, base = os.path.split(path)
    st = os.stat(like or path) if (like or os.path.exists(path)) else None
    fd, tmp = tempfile.mkstemp(prefix=f".{base}{TEMP_PREFIX}", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            _kill_point(f"{what}:temp-written")
            if st is not None:
                os.fchown(handle.fileno(), st.st_uid, st.st_gid)
                os.fchmod(handle.fileno(), stat.S_IMODE(st.st_mode))
                _copy_xattrs(like or path, handle.fileno())
            os.fsync(handle.fileno())
        _kill_point(f"{what}:synced")
        os.replace(tmp, path)
        _kill_point(f"{what}:renamed")
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dirfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dirfd)
    finally:
        os.close(dirfd)
    _kill_point(f"{what}:dir-synced")


def _check_writable(path, allow_hardlinks):
    st = os.stat(path)
    directory = os.path.dirname(path)
    if not os.access(directory, os.W_OK) or not os.access(path, os.W_OK):
        raise CommandExecutionError(
            f"{path} is not writable by this user (the file and its directory must be)"
        )
    if st.st_nlink > 1 and not allow_hardlinks:
        raise CommandExecutionError(
            f"{path} has {st.st_nlink} hard links; replacing it would leave the other names "
            "unpatched (pass allow_hardlinks=True to accept that)"
        )


def _backup(data, status, backup_dir, held=None):
    """
    Keep the original bytes under their sha256; returns the backup path.
    ``held``: the directory whose lock the caller holds (the library's).
    """
    os.makedirs(backup_dir, mode=0o700, exist_ok=True)
    # Several libraries (in other directories, under other locks) may share the
    # backup directory: it has its own lock.  Everything named like an elfpatch
    # temp file in it was left by a run killed while writing a backup.
    same = held is not None and os.path.realpath(backup_dir) == os.path.realpath(held)
    with contextlib.nullcontext() if same else _locked(backup_dir):
        _remove_temps_in(backup_dir)
        return _backup_locked(data, status, backup_dir)


def _backup_locked(data, status, backup_dir):
    target = os.path.join(backup_dir, status["original_sha256"])
    meta = {"path": status["path"], "build": status["build"], "sha256": status["original_sha256"]}
    if os.path.isfile(target) and _sha256(_read(target)) == status["original_sha256"]:
        if not os.path.isfile(target + ".json"):  # a run killed between the two writes
            _atomic_write(target + ".json", json.dumps(meta, indent=1).encode(), what="backup-meta")
        return target
    original_bytes = bytes.fromhex(status["original_bytes"])
    original = _with_site(data, {"offset": status["offset"]}, original_bytes)
    if _sha256(original) != status["original_sha256"]:
        raise CommandExecutionError("internal error: reconstructed original does not hash right")
    _atomic_write(target, original, what="backup")
    _atomic_write(target + ".json", json.dumps(meta, indent=1).encode(), what="backup-meta")
    return target


# --------------------------------------------------------------------------- public


def find(path, recipe, recipes=None):
    """
    Locate the recipe's bytes in ``path`` without judging them: build, symbol,
    symbol table, section, file offset, the bytes found and the original bytes.

    CLI Example:

    .. code-block:: bash

        salt-call elfpatch.find /usr/lib/x86_64-linux-gnu/libopen-rte.so.40 \\
            recipe=openmpi-singleton-numa
    """
    real = _resolve(path)
    site = _locate(real, _read(real), _recipe(recipe, recipes))
    return dict(site, found=site["found"].hex(" "), original=site["original"].hex(" "))


def status(path, recipe, recipes=None, known_sha256=None):
    """
    Whether ``path`` is ``original``, ``patched`` (and with which value) or
    ``unknown`` (the located bytes hold neither), with the file's sha256, the
    sha256 its original has (computed) and whether that is a known build.

    CLI Example:

    .. code-block:: bash

        salt-call elfpatch.status /usr/lib/x86_64-linux-gnu/libopen-rte.so.40 \\
            recipe=openmpi-singleton-numa
    """
    real = _resolve(path)
    return _status(real, _recipe(recipe, recipes), known_sha256)[0]


# Salt passes CLI keyword arguments by name, so the public functions keep plain
# parameters rather than keyword-only ones.
def plan(  # noqa: PLR0917
    path,
    recipe,
    value=None,
    recipes=None,
    known_sha256=None,
    allow_unknown=False,
    revert=False,
):
    """
    What :py:func:`apply` (or :py:func:`revert` with ``revert=True``) would do,
    without writing: ``changed``, old/new bytes and sha256.  Raises on anything
    ``apply`` would refuse.

    CLI Example:

    .. code-block:: bash

        salt-call elfpatch.plan /usr/lib/x86_64-linux-gnu/libopen-rte.so.40 \\
            recipe=openmpi-singleton-numa value=Die
    """
    real = _resolve(path)
    spec = _recipe(recipe, recipes)
    opts = {"value": value, "known_sha256": known_sha256, "allow_unknown": allow_unknown}
    return _plan(real, spec, dict(opts, revert=revert))[0]


def _plan(real, spec, opts):
    """(result, status, old data, new data) of a planned change; raises on refusals."""
    info, data, site = _status(real, spec, opts.get("known_sha256"))
    pname = spec["parameter"]["name"]
    if info["state"] == "unknown":
        choices = ", ".join(f"{v:#04x} ({n})" for n, v in spec["parameter"]["choices"].items())
        raise CommandExecutionError(
            f"{real}: {info['symbol']} at offset {info['offset']:#x} holds {info['bytes']}, "
            f"neither the original {info['original_bytes']} nor a patched {pname} "
            f"({choices}); refusing to touch it"
        )
    if not info["known_build"] and not opts.get("allow_unknown"):
        raise CommandExecutionError(
            f"{real}: unknown build (original sha256 {info['original_sha256']}, matched as "
            f"{info['build']}); add it to known_sha256 or allow unknown builds"
        )
    value = opts.get("value")
    if opts.get("revert"):
        new_bytes, new_value = site["original"], None
    else:
        if value is None:
            if spec["parameter"].get("source") != "numa_parent":
                raise SaltInvocationError(f"this recipe needs value= ({pname})")
            value = __salt__["topology.numa_parent"]()["value"]
        new_value, number = _choice(spec, value)
        new_bytes = _value_bytes(number, len(site["found"]))
    new_data = _with_site(data, site, new_bytes)
    result = {
        "path": real,
        "changed": new_bytes != site["found"],
        "state": info["state"],
        "build": info["build"],
        "known_build": info["known_build"],
        "offset": info["offset"],
        "old": info["bytes"],
        "new": new_bytes.hex(" "),
        "sha256": {"old": info["sha256"], "new": _sha256(new_data)},
        "original_sha256": info["original_sha256"],
    }
    if new_value:
        result[pname] = new_value
    return result, info, data, new_data


def _write(path, recipe, recipes, opts):
    real = _resolve(path)
    spec = _recipe(recipe, recipes)
    planned = _plan(real, spec, opts)[0]
    if not planned["changed"]:
        return planned
    _check_writable(real, opts.get("allow_hardlinks"))
    try:
        with _locked(os.path.dirname(real)):
            _kill_point("locked")
            # again under the lock: another run may have changed the file meanwhile
            planned, info, data, new_data = _plan(real, spec, opts)
            if not planned["changed"]:
                return planned
            _remove_stale_temps(real)
            planned["backup"] = _backup(
                data, info, opts.get("backup_dir") or DEFAULT_BACKUP_DIR, os.path.dirname(real)
            )
            _atomic_write(real, new_data)
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        raise CommandExecutionError(f"cannot write {real}: {exc.strerror}{where}") from exc
    written = _sha256(_read(real))
    if written != planned["sha256"]["new"]:
        raise CommandExecutionError(
            f"{real}: after writing, sha256 is {written}, expected {planned['sha256']['new']}"
        )
    return planned


def apply(  # noqa: PLR0917
    path,
    recipe,
    value=None,
    recipes=None,
    known_sha256=None,
    allow_unknown=False,
    allow_hardlinks=False,
    backup_dir=None,
):
    """
    Patch ``path`` with ``recipe``: the located bytes become ``value`` (a name
    such as ``Die`` or a number; by default the live topology's, see
    :py:func:`numa_parent`).  Refuses unknown bytes, ambiguous patterns and, unless
    ``allow_unknown``, builds whose original sha256 is neither in the recipe nor
    in ``known_sha256``.  Keeps the original in ``backup_dir``
    (default /var/lib/labsalt/elfpatch) and replaces the file atomically.

    CLI Example:

    .. code-block:: bash

        salt-call elfpatch.apply /usr/lib/x86_64-linux-gnu/libopen-rte.so.40 \\
            recipe=openmpi-singleton-numa
    """
    opts = {
        "value": value,
        "known_sha256": known_sha256,
        "allow_unknown": allow_unknown,
        "allow_hardlinks": allow_hardlinks,
        "backup_dir": backup_dir,
    }
    return _write(path, recipe, recipes, opts)


def revert(  # noqa: PLR0917
    path,
    recipe=None,
    recipes=None,
    known_sha256=None,
    allow_unknown=True,
    allow_hardlinks=False,
    backup_dir=None,
):
    """
    Restore the original bytes of ``path``; the result is byte-identical to the
    original build (its sha256 is checked).  Without ``recipe`` the one recipe
    that matches the file is used.

    CLI Example:

    .. code-block:: bash

        salt-call elfpatch.revert /usr/lib/x86_64-linux-gnu/libopen-rte.so.40
    """
    if recipe is None:
        recipe = _guess_recipe(_resolve(path), recipes)
    opts = {
        "revert": True,
        "known_sha256": known_sha256,
        "allow_unknown": allow_unknown,
        "allow_hardlinks": allow_hardlinks,
        "backup_dir": backup_dir,
    }
    result = _write(path, recipe, recipes, opts)
    if result["changed"] and result["sha256"]["new"] != result["original_sha256"]:
        raise CommandExecutionError(f"{path}: reverted file does not hash as the original")
    return result


def _guess_recipe(real, recipes):
    data = _read(real)
    matching, failures = [], []
    for name, spec in load_recipes(recipes).items():
        try:
            _locate(real, data, spec)
            matching.append(name)
        except CommandExecutionError as exc:
            failures.append(f"{name}: {exc}")
    if len(matching) != 1:
        raise CommandExecutionError(
            f"{real}: pass recipe=; "
            + (f"several recipes match: {matching}" if matching else "; ".join(failures))
        )
    return matching[0]
