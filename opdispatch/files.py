"""Safe file helpers shared by checkpoints and saved graphs: atomic writes and hostile-file reads.

Writing: `atomic_write` writes to a fresh temporary file in the target's directory
(``tempfile.mkstemp``), fsyncs it and renames it over the target with ``os.replace``, so a
reader sees the old file or the new one, never a mixture; concurrent writers to one path each
use their own temporary (the last rename wins); the temporary is removed on every failure,
``KeyboardInterrupt`` included.

Reading: `open_regular` refuses anything that is not a regular file before reading a byte
(FIFOs, devices, directories, sockets; a symlink is followed and judged by its target) and
files over a size limit; `SafeNpz` reads ``.npz`` archives written by ``np.savez`` (stored,
uncompressed members) checking the zip directory and every ``.npy`` header against the
archive's real size before allocating anything, so a file can only make the reader allocate
about what it holds; `loads_json` bounds the nesting depth, the number of containers and of
values (one linear scan, `json_scan`) and refuses duplicate keys; `check_shape` bounds every
declared shape (`MAX_ELEMENTS`), so no size computed from it is absurd. These
raise `FileFault(part, what)`; the loaders turn it into their own error type, naming the file.
Nothing here unpickles, and zip member names are never used as filesystem paths.
"""

from __future__ import annotations

import ast
import json
import os
import re
import stat
import struct
import tempfile
import zipfile
from typing import IO, Any, BinaryIO, Callable, Collection, Optional

import numpy as np

MAX_JSON_DEPTH = 100
"""The deepest nesting of arrays and objects a loaded JSON document may have."""

MAX_JSON_BYTES = 64 * 2**20
"""The largest JSON member read from an archive (a checkpoint's ``meta.json``), 64 MiB, checked
before it is read or decoded. (A saved graph is one JSON file with its constants embedded: its size
is bounded by ``opdispatch.graph.serialize.MAX_BYTES`` instead.)"""

MAX_JSON_CONTAINERS = 1_000_000
"""The most arrays and objects a loaded JSON document may hold (each costs the parser about 100
bytes of Python objects), counted before parsing."""

MAX_JSON_VALUES = 10_000_000
"""The most values (numbers, strings, ...; at most one more than the commas, colons and containers
outside strings) a loaded JSON document may hold, counted before parsing: parsed, each costs up to
about 80 bytes of Python objects, so this bounds what a document of mostly short values makes the
parser allocate."""

MAX_ELEMENTS = 2**48
"""The most elements a stored shape may declare, counting only its non-zero dimensions (so a
zero-size array cannot declare absurd dimensions either): every dimension is at most this, and no
size computed from a shape overflows NumPy's index type."""

MAX_NPY_HEADER = 65536
"""The longest ``.npy`` header accepted (NumPy writes about a hundred bytes)."""

MAX_RANK = 32
"""The most dimensions a stored array may declare (NumPy's own limit is 64)."""

MAX_MEMBERS = 100_000
"""The most entries an ``.npz`` archive may have (counted before ``zipfile`` parses them: each
costs about 500 bytes of Python objects and 3 us, so this bounds both)."""


class FileFault(Exception):
    """A file (or a part of it) that is not what the reader accepts; ``part`` names the part."""

    def __init__(self, part: str, what: str) -> None:
        super().__init__(f"{part}: {what}")
        self.part, self.what = part, what


def short(value: Any, limit: int = 120) -> str:
    """``repr(value)``, cut to ``limit`` characters (hostile files can hold huge values)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


# -- writing ------------------------------------------------------------------------------------------

def _umask() -> int:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # not thread-safe, hence only where /proc is missing
    os.umask(mask)
    return mask


def atomic_write(path: str, write: Callable[[BinaryIO], Any]) -> None:
    """Create or replace ``path`` with what ``write(fh)`` writes, atomically.

    The data goes to a unique temporary file beside ``path`` (same directory, so the rename is
    atomic), is flushed and fsynced, and then renamed over ``path``. On any exception (also
    ``KeyboardInterrupt``) the temporary file is removed and ``path`` is untouched. The new file
    gets the old file's permission bits, or the usual ``0o666 & ~umask`` for a new one.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        mode = 0o666 & ~_umask()
    tmp: Optional[str] = None
    done = False
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)[:200]}.", suffix=".tmp", dir=directory)
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
        done = True
    finally:
        if not done and tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
    try:  # make the rename itself durable; not every platform can open a directory
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


# -- reading: files -----------------------------------------------------------------------------------

def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


class Missing(FileFault):
    """The path does not exist."""


def open_regular(path: str, max_bytes: int) -> tuple[BinaryIO, int]:
    """Open ``path`` for reading if it is a regular file of at most ``max_bytes``; return (file, size).

    The type is checked with ``stat`` before opening and again with ``fstat`` on the descriptor
    (opened with ``O_NONBLOCK``, so even a FIFO swapped in between cannot block), so no special
    file is ever read.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise Missing("file", "no such file") from None
    except (OSError, ValueError) as exc:
        raise FileFault("file", f"cannot be examined: {exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise FileFault("file", f"is {_kind(st.st_mode)}; allowed: a regular file")
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise Missing("file", "no such file") from None
    except OSError as exc:
        raise FileFault("file", f"cannot be opened: {exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise FileFault("file", f"is {_kind(st.st_mode)}; allowed: a regular file")
        if st.st_size > max_bytes:
            raise FileFault("file", f"is {st.st_size} bytes, over the limit of {max_bytes} bytes "
                                    f"(raise it with max_bytes=...)")
        return os.fdopen(fd, "rb"), st.st_size
    except BaseException:
        os.close(fd)
        raise


def read_all(fh: BinaryIO, size: int) -> bytes:
    """The file's ``size`` bytes (a file that grew or shrank since ``fstat`` is a fault)."""
    data = fh.read(size + 1)
    if len(data) != size:
        raise FileFault("file", f"changed size while being read ({size} bytes expected, {len(data)} read)")
    return data


# -- reading: JSON ------------------------------------------------------------------------------------

_SCAN_CHUNK = 2**16
_QUOTE, _BACKSLASH, _COMMA, _COLON = 34, 92, 44, 58
_OPENING, _CLOSING = (91, 123), (93, 125)  # [ {   ] }


def json_scan(text: str) -> tuple[int, int, int]:
    """(deepest nesting, containers, values) of JSON ``text``: the nesting of ``[`` / ``{``, the
    number of arrays and objects, and an upper bound on the number of values (1 + the commas, colons
    and containers), all outside strings.

    Linear in ``len(text)`` whatever the text, in bounded extra memory and without recursion or
    regular expressions (no backtracking on unterminated strings or runs of backslashes): the text
    is read a chunk at a time as UTF-8 bytes (where ASCII bytes only ever stand for themselves),
    escapes and strings are found with NumPy, and whether a string or an escape is open carries
    over to the next chunk. A chunk inside a long string (a constant's base64 data) is skipped.
    """
    deepest = depth = containers = separators = 0
    in_string = escape_open = False
    for start in range(0, len(text), _SCAN_CHUNK):
        part = text[start:start + _SCAN_CHUNK]
        if in_string and not escape_open and '"' not in part and "\\" not in part:
            continue
        codes = np.frombuffer(part.encode("utf-8", "surrogatepass"), dtype=np.uint8)
        backslash = codes == _BACKSLASH
        escaped = np.zeros(len(codes), dtype=bool)
        if escape_open:  # the previous chunk ended with an escaping backslash
            escaped[0], backslash[0] = True, False
        escape_open = False
        if backslash.any():  # in a run of backslashes the 1st, 3rd, ... escape the character after them
            index = np.arange(len(codes))
            before_run = np.maximum.accumulate(np.where(backslash, -1, index))
            escaping = backslash & ((index - before_run) % 2 == 1)
            escaped[1:] |= escaping[:-1]
            escape_open = bool(escaping[-1])
        quote = (codes == _QUOTE) & ~escaped
        inside = (np.cumsum(quote) + in_string) % 2 == 1  # an opening quote counts as inside
        in_string = bool(inside[-1])
        structure = codes[~inside & ~quote & ~escaped]
        separators += int(np.count_nonzero((structure == _COMMA) | (structure == _COLON)))
        opening = (structure == _OPENING[0]) | (structure == _OPENING[1])
        closing = (structure == _CLOSING[0]) | (structure == _CLOSING[1])
        if opening.any() or closing.any():
            run = np.cumsum(opening.astype(np.int64) - closing) + depth
            deepest, depth = max(deepest, int(run.max())), int(run[-1])
            containers += int(np.count_nonzero(opening))
    return deepest, containers, 1 + separators + containers


def check_json_size(size: int, part: str) -> None:
    """Refuse a JSON member of more than `MAX_JSON_BYTES` bytes (before it is read)."""
    if size > MAX_JSON_BYTES:
        raise FileFault(part, f"is {size} bytes of JSON; allowed: at most {MAX_JSON_BYTES} "
                              f"(opdispatch.files.MAX_JSON_BYTES)")


def _no_duplicates(pairs: list) -> dict:
    out = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def check_json(text: str, part: str, max_depth: Optional[int] = None) -> None:
    """Refuse JSON ``text`` nested deeper than `MAX_JSON_DEPTH` (or ``max_depth``), or holding more
    than `MAX_JSON_CONTAINERS` arrays and objects or `MAX_JSON_VALUES` values (one linear scan)."""
    limit = MAX_JSON_DEPTH if max_depth is None else max_depth
    depth, containers, values = json_scan(text)
    if depth > limit:
        name = " (opdispatch.files.MAX_JSON_DEPTH)" if max_depth is None else ""
        raise FileFault(part, f"JSON nested {depth} deep; allowed: at most {limit}{name}")
    if containers > MAX_JSON_CONTAINERS:
        raise FileFault(part, f"JSON has {containers} arrays and objects; allowed: at most {MAX_JSON_CONTAINERS} "
                              f"(opdispatch.files.MAX_JSON_CONTAINERS)")
    if values > MAX_JSON_VALUES:
        raise FileFault(part, f"JSON has about {values} values; allowed: at most {MAX_JSON_VALUES} "
                              f"(opdispatch.files.MAX_JSON_VALUES)")


def loads_json(text: str, part: str, max_depth: Optional[int] = None) -> Any:
    """Parse ``text`` with the standard parser once `check_json` has bounded its depth, containers
    and values; duplicate keys in an object are refused."""
    check_json(text, part, max_depth)
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except (ValueError, RecursionError, MemoryError) as exc:  # JSONDecodeError is a ValueError
        raise FileFault(part, f"not valid JSON: {exc}") from None


def size_limit(max_bytes: Any, default: int, fn: str, error: Callable[[str], Exception]) -> int:
    """The byte limit a loader ``fn`` was given: ``default`` for None, else an int >= 0; anything
    else raises ``error`` naming ``fn`` and the argument."""
    if max_bytes is None:
        return default
    if not isinstance(max_bytes, int) or isinstance(max_bytes, bool) or max_bytes < 0:
        raise error(f"{fn}: argument 'max_bytes' got {short(max_bytes)}; allowed: an int >= 0, or None for "
                    f"the default of {default} bytes")
    return max_bytes


# -- reading: .npz ------------------------------------------------------------------------------------

_NPY_MAGIC = b"\x93NUMPY"


def bad_member_name(name: str) -> Optional[str]:
    if not name.endswith(".npy"):
        return "allowed: names ending in .npy"
    if name.startswith(("/", "\\")) or "\\" in name or "\x00" in name or re.match(r"^[A-Za-z]:", name):
        return "allowed: relative names with '/' separators"
    if any(p in ("", ".", "..") for p in name[:-4].split("/")):
        return "allowed: names without empty, '.' or '..' components"
    return None


def check_shape(shape: Any, part: str) -> tuple[int, ...]:
    """``shape`` as a tuple of ints >= 0, of at most `MAX_RANK` dimensions whose non-zero ones
    multiply to at most `MAX_ELEMENTS` (so each is at most that too)."""
    if not isinstance(shape, (tuple, list)) or len(shape) > MAX_RANK:
        raise FileFault(part, f"shape {short(shape)}; allowed: a list of at most {MAX_RANK} ints >= 0")
    elements = 1
    for d in shape:
        if not isinstance(d, int) or isinstance(d, bool) or d < 0:
            raise FileFault(part, f"shape {short(list(shape))} has dimension {short(d)}; allowed: ints >= 0")
        elements *= d or 1
        if elements > MAX_ELEMENTS:
            raise FileFault(part, f"shape {short(list(shape))} declares over {MAX_ELEMENTS} elements (its non-zero "
                                  f"dimensions multiplied); allowed: at most {MAX_ELEMENTS} "
                                  f"(opdispatch.files.MAX_ELEMENTS)")
    return tuple(shape)


def nbytes(shape: tuple[int, ...], dtype: np.dtype) -> int:
    """Bytes of an array of ``shape`` and ``dtype`` (Python ints: no overflow)."""
    n = dtype.itemsize
    for d in shape:
        n *= d
    return n


def _count_entries(fh: BinaryIO, size: int) -> int:
    """An upper bound on the central directory's entries (its record signatures), found the way
    ``zipfile`` finds the directory; 0 when there is none to find (``zipfile`` then says why)."""
    tail_len = min(size, 22 + 65535)
    fh.seek(size - tail_len)
    tail = fh.read(tail_len)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or tail_len - at < 22:
        return 0
    end = size - tail_len + at
    cd_size = struct.unpack_from("<L", tail, at + 12)[0]
    if at >= 20 and tail[at - 20: at - 16] == b"PK\x06\x07" and end >= 76:  # zip64: the record precedes
        fh.seek(end - 76)
        record = fh.read(56)
        if record[:4] == b"PK\x06\x06":
            cd_size, end = struct.unpack_from("<Q", record, 40)[0], end - 76
    if cd_size > end:
        return 0
    fh.seek(end - cd_size)
    return fh.read(cd_size).count(b"PK\x01\x02")


class SafeNpz:
    """An ``.npz`` archive (as ``np.savez`` writes it) read defensively from an open regular file.

    On opening, the zip directory is checked: no duplicate, absolute, ``..`` or non-``.npy``
    member names, no encrypted or compressed members (``np.savez`` stores them uncompressed),
    every member inside the archive and their sizes adding up to no more than the archive.
    `array` then checks a member's ``.npy`` header (magic, a bounded header, a plain dtype among
    those allowed -- no object, structured or sub-array dtypes --, a shape of ints) against the
    member's size before reading it, and the zip CRC while reading it. ``keys`` are the member
    names without ``.npy``, in archive order.
    """

    def __init__(self, fh: BinaryIO, size: int) -> None:
        self.size = size
        entries = _count_entries(fh, size)
        if entries > MAX_MEMBERS:
            raise FileFault("file", f"has about {entries} zip entries; allowed: at most {MAX_MEMBERS} "
                                    f"(opdispatch.files.MAX_MEMBERS)")
        try:
            fh.seek(0)
            self.zip = zipfile.ZipFile(fh)
            infos = self.zip.infolist()
        except Exception as exc:  # BadZipFile, struct/Unicode/Value/OSError, NotImplementedError...
            raise FileFault("file", f"is not a readable .npz (zip) archive: {type(exc).__name__}: {exc}") from None
        self.members: dict[str, zipfile.ZipInfo] = {}
        total = 0
        for info in infos:
            name = info.filename
            where = f"zip member {short(name)}"
            if name[:-4] in self.members:
                raise FileFault(where, "appears twice in the archive; allowed: unique names")
            problem = bad_member_name(name)
            if problem:
                raise FileFault(where, f"bad name; {problem}")
            if info.flag_bits & 0x1:
                raise FileFault(where, "is encrypted; allowed: plain members")
            if info.compress_type != zipfile.ZIP_STORED:
                raise FileFault(where, f"uses compression method {info.compress_type}; allowed: stored "
                                       f"(uncompressed) members, as np.savez writes them")
            if info.compress_size != info.file_size:
                raise FileFault(where, f"declares {info.file_size} bytes stored in {info.compress_size}; "
                                       f"allowed: equal sizes for a stored member")
            if info.header_offset < 0 or info.header_offset + 30 + info.compress_size > size:
                raise FileFault(where, f"declares {info.file_size} bytes at offset {info.header_offset}, "
                                       f"past the end of the {size}-byte archive")
            total += info.file_size
            if total > size:
                raise FileFault(where, f"the members declare more bytes ({total} so far) than the "
                                       f"{size}-byte archive holds (overlapping or forged entries)")
            self.members[name[:-4]] = info

    def close(self) -> None:
        self.zip.close()

    def __enter__(self) -> "SafeNpz":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def keys(self) -> list[str]:
        return list(self.members)

    def array(self, key: str, dtypes: Collection[str],
              check: Optional[Callable[[np.dtype, tuple[int, ...]], None]] = None) -> np.ndarray:
        """Read member ``key`` as a (writable, native-order, C-contiguous) array whose dtype name
        is in ``dtypes``; ``check(dtype, shape)`` may raise before the data is read."""
        info = self.members[key]
        where = f"array {short(key)}"
        try:
            with self.zip.open(info) as member:
                dtype, shape, fortran, header_len = self._header(member, info.file_size, where, dtypes)
                want = nbytes(shape, dtype)
                if header_len + want != info.file_size:
                    raise FileFault(where, f"header declares shape {list(shape)} {dtype.name} ({want} bytes) but "
                                           f"the member holds {info.file_size - header_len} bytes of data")
                if check is not None:
                    check(dtype, shape)
                data = member.read(want)
                if len(data) != want:
                    raise FileFault(where, f"truncated: {len(data)} of {want} bytes")
        except FileFault:
            raise
        except Exception as exc:  # a bad CRC, a forged local header, a short file
            raise FileFault(where, f"cannot be read: {type(exc).__name__}: {exc}") from None
        arr = np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")
        return np.array(arr, dtype=dtype.newbyteorder("="), order="C", copy=True)

    @staticmethod
    def _header(member: IO[bytes], size: int, where: str,
                dtypes: Collection[str]) -> tuple[np.dtype, tuple[int, ...], bool, int]:
        pre = member.read(8)
        if len(pre) < 8 or pre[:6] != _NPY_MAGIC:
            raise FileFault(where, "not a .npy array (bad magic)")
        major = pre[6]
        if major == 1:
            raw = member.read(2)
            length = struct.unpack("<H", raw)[0] if len(raw) == 2 else -1
            start = 10
        elif major in (2, 3):
            raw = member.read(4)
            length = struct.unpack("<I", raw)[0] if len(raw) == 4 else -1
            start = 12
        else:
            raise FileFault(where, f".npy format version {major}.{pre[7]}; allowed: 1.0, 2.0, 3.0")
        if length < 0 or length > MAX_NPY_HEADER or start + length > size:
            raise FileFault(where, f".npy header of {length} bytes in a {size}-byte member; allowed: at most "
                                   f"{min(MAX_NPY_HEADER, max(size - start, 0))}")
        text = member.read(length)
        if len(text) != length:
            raise FileFault(where, "truncated .npy header")
        try:
            header = ast.literal_eval(text.decode("utf-8" if major == 3 else "latin1"))
        except Exception as exc:  # SyntaxError, ValueError, RecursionError, MemoryError...
            raise FileFault(where, f".npy header is not a literal: {type(exc).__name__}") from None
        if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
            raise FileFault(where, f".npy header {short(header)}; allowed: a dict of descr, fortran_order, shape")
        descr, fortran, shape = header["descr"], header["fortran_order"], header["shape"]
        if not isinstance(descr, str):
            raise FileFault(where, f"dtype {short(descr)}; allowed: plain dtypes {sorted(dtypes)} "
                                   f"(no structured or object dtypes)")
        try:
            dtype = np.dtype(descr)
        except Exception:
            raise FileFault(where, f"dtype {short(descr)} is not a dtype; allowed: {sorted(dtypes)}") from None
        if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None or dtype.name not in dtypes:
            raise FileFault(where, f"dtype {short(descr)} ({dtype}); allowed: {sorted(dtypes)} "
                                   f"(pickled object arrays are refused)")
        if not isinstance(fortran, bool):
            raise FileFault(where, f"fortran_order {fortran!r}; allowed: True or False")
        if not isinstance(shape, tuple):
            raise FileFault(where, f"shape {short(shape)}; allowed: a tuple of ints >= 0")
        return dtype, check_shape(shape, where), fortran, start + length
