"""Kernels run with NumPy's floating-point error reporting off: IEEE results (inf, NaN) without
RuntimeWarnings that would point at library lines instead of the user's (``od.check_numerics()`` names
the op where a NaN or inf starts), and without a user's ``np.seterr(all="raise")`` turning a kernel's
overflow into a crash.

NumPy keeps its error state in a context variable; setting it directly costs a tenth of what the
public ``np.errstate`` does, which matters on the element-wise fast path. Where that internal is
missing (another NumPy), the public context manager is used.
"""

from __future__ import annotations

import contextvars
from typing import Any, Optional

import numpy as np

_STATE: Optional[contextvars.ContextVar] = None
_QUIET: Any = None
try:  # NumPy >= 2.0
    from numpy._core._ufunc_config import _extobj_contextvar, _make_extobj  # type: ignore[attr-defined]

    _STATE, _QUIET = _extobj_contextvar, _make_extobj(all="ignore")
except Exception:  # pragma: no cover - other NumPy versions
    pass


if _STATE is not None:
    _set, _QUIET_STATE = _STATE.set, _QUIET

    def quiet() -> Any:
        """Turn NumPy's floating-point errors off in this context; pass the result to `restore`."""
        return _set(_QUIET_STATE)

    restore = _STATE.reset
    """Undo the matching `quiet`."""
else:  # pragma: no cover - other NumPy versions
    def quiet() -> Any:
        """Turn NumPy's floating-point errors off in this context; pass the result to `restore`."""
        state = np.errstate(all="ignore")
        state.__enter__()
        return state

    def restore(token: Any) -> None:
        """Undo the matching `quiet`."""
        token.__exit__(None, None, None)
