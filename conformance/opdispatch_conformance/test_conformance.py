"""The conformance suite as pytest tests (see `opdispatch_conformance.pytest_plugin`)."""

from __future__ import annotations

import pytest

from opdispatch_conformance.gradients import run_gradient_case
from opdispatch_conformance.runner import FAILED, UNSUPPORTED, History, run_case

# The outputs of the cases run so far in this session, re-read after each later call of the same op.
_HISTORY = History()


def _judge(result) -> None:
    if result is None:
        pytest.skip("no gradient flows to any input of this case")
    if result.status == UNSUPPORTED:
        pytest.skip(f"unsupported: {result.message}")
    if result.status == FAILED:
        pytest.fail(f"{result.message}\nreproduce: {result.repro}\n{result.traceback}", pytrace=False)


def test_case(od_conformance_case):
    dev, dtype, case = od_conformance_case
    _judge(run_case(case, dev, dtype, history=_HISTORY))


def test_gradient(od_conformance_gradient_case):
    dev, dtype, case = od_conformance_gradient_case
    _judge(run_gradient_case(case, dev, dtype))
