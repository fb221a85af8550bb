"""Fails at import: it needs a runtime library that is not installed."""

import opdispatch_nonexistent_runtime_lib  # noqa: F401  (raises ModuleNotFoundError, an ImportError)

from opdispatch import hookimpl  # never reached


@hookimpl
def opdispatch_backend_info():  # pragma: no cover
    raise AssertionError("unreachable")
