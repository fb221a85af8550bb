"""The repository's shared fixtures (``tests/conftest.py``: ``clean_registry``) for the tests beside this backend.

pytest only applies a conftest.py to the tests below it, so this one loads ``tests/conftest.py`` under a
name of its own (both files are rootless ``conftest`` modules) and re-exports its fixtures.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

_SHARED = Path(__file__).resolve().parents[3] / "tests" / "conftest.py"
_spec = importlib.util.spec_from_file_location("opdispatch_shared_conftest", _SHARED)
_shared = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_shared)

clean_registry = _shared.clean_registry
