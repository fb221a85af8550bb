"""Find the user's source line: the innermost frame outside the opdispatch package.

A `Source` can show the text of its line (`Source.code`, for error messages). It reads only
regular files of at most `MAX_SOURCE_BYTES`, without blocking, and not at all for a source that
came from a file (``readable=False``: a loaded graph's sources name files on another machine, or
whatever a hostile file says -- a FIFO, ``/dev/zero``, ``/proc/...``).
"""

from __future__ import annotations

import io
import linecache
import os
import stat
import sys
import tokenize
import types
from dataclasses import dataclass, field
from typing import Optional

_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep

MAX_SOURCE_BYTES = 4 * 2**20
"""The largest source file `Source.code` reads a line from (4 MiB)."""


def _read_regular(path: str) -> Optional[bytes]:
    """The bytes of ``path`` if it is a regular file of at most `MAX_SOURCE_BYTES`, else None;
    opened without blocking and judged again on the open descriptor (no FIFO or device is read)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
                     | getattr(os, "O_BINARY", 0))
    except (OSError, ValueError):  # ValueError: a NUL in the name
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_SOURCE_BYTES:
            return None
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(MAX_SOURCE_BYTES + 1)
        return data if len(data) <= MAX_SOURCE_BYTES else None
    except OSError:
        return None
    finally:
        os.close(fd)


def _source_line(filename: str, line: int) -> str:
    """Line ``line`` of ``filename`` ('' when it cannot be read safely): from `linecache` when the
    file is already there (also code registered under a pseudo-name, like IPython's cells), else
    read with `_read_regular` -- a relative name also under each `sys.path` entry, as `linecache`
    looks for it."""
    if line < 1:
        return ""
    entry = linecache.cache.get(filename)
    if entry is not None and len(entry) == 4:  # a full entry: no file is read
        return linecache.getline(filename, line)
    if not filename or (filename.startswith("<") and filename.endswith(">")):
        return ""
    candidates = [filename] if os.path.isabs(filename) else \
        [filename] + [os.path.join(d, filename) for d in sys.path if isinstance(d, str)]
    for path in candidates:
        data = _read_regular(path)
        if data is None:
            continue
        try:
            encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
            lines = data.decode(encoding, errors="replace").splitlines()
        except (SyntaxError, LookupError):  # an unknown coding cookie
            return ""
        return lines[line - 1] if line <= len(lines) else ""
    return ""


@dataclass(frozen=True)
class Source:
    """Where the user created something: file, line and function name. ``readable`` is False for a
    source read from a file (a loaded graph's): its `code` is then never looked up."""

    file: str
    line: int
    function: str = ""
    readable: bool = field(default=True, compare=False)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"

    @property
    def code(self) -> str:
        """The text of the line, stripped ('' when the source is not readable, or its file is not a
        regular file of at most `MAX_SOURCE_BYTES`, or cannot be read)."""
        if not self.readable:
            return ""
        return _source_line(self.file, self.line).strip()


def is_internal(filename: str) -> bool:
    """True for files of the opdispatch package itself."""
    return filename.startswith(_PACKAGE)


def user_source(skip: int = 1) -> Optional[Source]:
    """The innermost calling frame outside opdispatch, or None."""
    frame: Optional[types.FrameType] = sys._getframe(skip)
    while frame is not None:
        code = frame.f_code
        if not is_internal(code.co_filename):
            return Source(code.co_filename, frame.f_lineno, code.co_name)
        frame = frame.f_back
    return None


def user_traceback(tb: Optional[types.TracebackType]) -> Optional[types.TracebackType]:
    """``tb`` without the opdispatch frames (so the last entry is the user's line)."""
    frames = []
    while tb is not None:
        if not is_internal(tb.tb_frame.f_code.co_filename):
            frames.append((tb.tb_frame, tb.tb_lasti, tb.tb_lineno))
        tb = tb.tb_next
    out: Optional[types.TracebackType] = None
    for frame, lasti, lineno in reversed(frames):
        out = types.TracebackType(out, frame, lasti, lineno)
    return out


def innermost_user_source(tb: Optional[types.TracebackType]) -> Optional[Source]:
    """The last frame of ``tb`` outside opdispatch, as a `Source`."""
    found = None
    while tb is not None:
        code = tb.tb_frame.f_code
        if not is_internal(code.co_filename):
            found = Source(code.co_filename, tb.tb_lineno, code.co_name)
        tb = tb.tb_next
    return found
