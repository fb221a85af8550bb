"""Fixtures shared by every test directory of the repository (tests/, backends/*/tests, conformance/tests).

The in-process fake backends of ``tests/fake_backends.py`` are importable from all of them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "tests"))

from opdispatch import registry as registry_module  # noqa: E402


@pytest.fixture
def clean_registry():
    """Reload the installed plugins before and after the test, so run-time registrations do not leak."""
    registry_module.reload()
    yield registry_module.registry()
    registry_module.reload()
