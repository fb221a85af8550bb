"""The conformance suite as pytest tests (see `opdispatch.conformance.pytest_plugin`)."""

from __future__ import annotations

import pytest

from opdispatch.conformance.runner import FAILED, UNSUPPORTED, run_case


def test_case(od_conformance_case):
    dev, dtype, case = od_conformance_case
    result = run_case(case, dev, dtype)
    if result.status == UNSUPPORTED:
        pytest.skip(f"unsupported: {result.message}")
    if result.status == FAILED:
        pytest.fail(f"{result.message}\nreproduce: {result.repro}\n{result.traceback}", pytrace=False)
