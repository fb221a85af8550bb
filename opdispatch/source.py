"""Find the user's source line: the innermost frame outside the opdispatch package."""

from __future__ import annotations

import linecache
import os
import sys
import types
from dataclasses import dataclass
from typing import Optional

_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


@dataclass(frozen=True)
class Source:
    """Where the user created something: file, line and function name."""

    file: str
    line: int
    function: str = ""

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"

    @property
    def code(self) -> str:
        """The text of the line, stripped ('' when the file cannot be read)."""
        return linecache.getline(self.file, self.line).strip()


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
