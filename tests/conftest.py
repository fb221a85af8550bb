"""Shared fixtures: a fresh registry around tests that register plugins at run time."""

from __future__ import annotations

import pytest

from opdispatch import registry as registry_module


@pytest.fixture
def clean_registry():
    """Reload the installed plugins before and after the test, so run-time registrations do not leak."""
    registry_module.reload()
    yield registry_module.registry()
    registry_module.reload()
