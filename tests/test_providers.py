"""Kernel providers: a third-party distribution, installed with pip, adds kernels to ``numpy:0``.

``tests/plugins/opdispatch-fastconv`` (entry point group ``opdispatch.providers``) provides an
instrumented conv2d (float32, groups == 1: its ``supports()`` declines the rest) and relu for the
NumPy backend, at priority 50. Dispatch must pick it over the built-in kernels, fall through to
them where it declines, list it, honour disabling (API and environment variable), and the
conformance suite must check both providers' kernels.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys

import numpy as np
import pytest

import opdispatch as od
from opdispatch import registry as od_registry
from opdispatch.cli import main
from opdispatch_conformance.runner import FAILED, PASSED, UNSUPPORTED
from opdispatch_conformance.suite import collect_cases, run_device
from pip_plugins import forget_modules, install

NUMPY = od.Device("numpy:0")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """opdispatch-fastconv installed with pip into a directory on sys.path, the plugins rediscovered."""
    target = tmp_path_factory.mktemp("provider-site")
    install(["opdispatch-fastconv"], target, tmp_path_factory.mktemp("provider-build"))
    sys.path.insert(0, str(target))
    forget_modules(["opdispatch_fastconv"])
    od_registry.reload()
    try:
        yield target
    finally:
        sys.path.remove(str(target))
        forget_modules(["opdispatch_fastconv"])
        od_registry.reload()
        assert "fastconv" not in od.providers()


@pytest.fixture
def calls(site):
    """fastconv's call counter; other installed providers (the in-tree oneDNN one, say) are disabled
    meanwhile, so fastconv's kernels are the only ones above the built-in ones."""
    counter = importlib.import_module("opdispatch_fastconv.plugin").CALLS
    counter.clear()
    others = [n for n, p in od.providers().items() if n != "fastconv" and p.status == "loaded" and p.enabled]
    for name in others:
        od.disable_provider(name)
    od.enable_provider("fastconv")
    yield counter
    od.enable_provider("fastconv")
    for name in others:
        od.enable_provider(name)


def _ours(rows):
    """The kernel listing rows of fastconv and the NumPy backend (other providers left out)."""
    return [r for r in rows if r.provider in ("fastconv", "numpy")]


def _conv_args(groups: int = 1, dtype=np.float32):
    rng = np.random.default_rng(0)
    return (od.tensor(rng.standard_normal((2, 4, 6, 6)).astype(dtype)),
            od.tensor(rng.standard_normal((4, 4 // groups, 3, 3)).astype(dtype)))


def test_the_provider_is_loaded_and_listed_first(calls):
    status = od.providers()["fastconv"]
    assert (status.status, status.priority, status.targets, status.ops) == ("loaded", 50, ("numpy",),
                                                                           ("conv2d", "relu"))
    assert "from opdispatch-fastconv 0.1.0" in status.origin
    rows = _ours(od.kernels(NUMPY, "conv2d"))
    assert [(r.provider, r.priority, r.dtypes, r.conditional, r.enabled) for r in rows] == [
        ("fastconv", 50, ("float32",), True, True), ("numpy", 0, ("float32", "float64"), False, True),
        ("numpy", 0, ("float16",), False, True)]  # the NumPy backend's float16 kernel (computed in float32)
    assert [r.provider for r in _ours(od.kernels(NUMPY, "relu"))] == ["fastconv", "numpy", "numpy"]
    assert [r.provider for r in _ours(od.kernels(NUMPY, "matmul"))] == ["numpy", "numpy"]


def test_dispatch_picks_the_provider_and_falls_through_where_it_declines(calls):
    x, w = _conv_args()
    y = od.conv2d(x, w, padding=1)
    assert calls["conv2d"] == 1
    assert od.explain("conv2d", x, w, padding=1).provider == "fastconv"
    # groups > 1: its supports() declines, the built-in kernel runs; float64: not among its dtypes
    xg, wg = _conv_args(groups=2)
    od.conv2d(xg, wg, groups=2)
    od.conv2d(*_conv_args(dtype=np.float64))
    assert calls["conv2d"] == 1
    plan = od.explain("conv2d", xg, wg, groups=2)
    assert plan.provider == "numpy" and dict(plan.candidates)["fastconv"] == "declines: groups > 1 is not implemented"
    od.disable_provider("fastconv")
    np.testing.assert_allclose(od.conv2d(x, w, padding=1).numpy(), y.numpy(), rtol=1e-6)
    assert calls["conv2d"] == 1


def test_the_provider_wins_on_the_elementwise_fast_path_too(calls):
    x = od.tensor(np.array([-1.0, 2.0], np.float32))
    for _ in range(3):
        od.relu(x)
    assert calls["relu"] == 3
    od.disable_provider("fastconv")
    od.relu(x)
    assert calls["relu"] == 3


def test_disabling_is_listed_and_undone(calls):
    od.disable_provider("fastconv")
    assert not od.providers()["fastconv"].enabled
    assert [(r.provider, r.enabled) for r in _ours(od.kernels(NUMPY, "conv2d"))] == [("fastconv", False),
                                                                                    ("numpy", True),
                                                                                    ("numpy", True)]
    od.enable_provider("fastconv")
    od.conv2d(*_conv_args())
    assert calls["conv2d"] == 1
    with pytest.raises(od.InvalidArgumentError, match="'nope'.*allowed: a loaded provider or backend"):
        od.disable_provider("nope")


def test_the_environment_variable_disables_a_provider_for_a_whole_process(site):
    code = ("import numpy as np, opdispatch as od\n"
            "from opdispatch_fastconv.plugin import CALLS\n"
            "od.relu(od.tensor(np.ones(3, np.float32)))\n"
            "print(od.providers()['fastconv'].enabled, CALLS['relu'], [r.enabled for r in od.kernels('numpy:0', 'relu')])")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    for value, want in (("fastconv", "False 0 [False, True, True]"), ("", "True 1 [True, True, True]")):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env={**env, "OPDISPATCH_DISABLE_PROVIDERS": value})
        assert out.stdout.strip() == want, out.stderr


def test_use_provider_pins_its_kernels(calls):
    xg, wg = _conv_args(groups=2)
    with od.use_provider("fastconv"):
        with pytest.raises(od.UnsupportedError, match="groups > 1 is not implemented"):
            od.conv2d(xg, wg, groups=2)
        od.relu(od.tensor(np.ones(2, np.float32)))
    assert calls["relu"] == 1
    with od.use_provider("numpy"):
        od.conv2d(*_conv_args())
        od.relu(od.tensor(np.ones(2, np.float32)))
    assert calls["conv2d"] == 0 and calls["relu"] == 1


def test_a_pinned_provider_that_declines_says_why_and_that_the_decomposition_is_not_tried(calls):
    xg, wg = _conv_args(groups=2)
    with od.use_provider("fastconv"):
        plan = od.explain("conv2d", xg, wg, groups=2)
    assert plan.how == "unsupported" and "groups > 1 is not implemented" in plan.reason
    assert "None" not in plan.reason  # it read "...; None" before
    assert "its decomposition is not tried while od.use_provider('fastconv') is in force" in plan.reason


def test_the_cli_lists_kernels_per_device_and_op(calls, capsys):
    assert main(["devices", "--kernels", "--device", "numpy:0", "--op", "conv2d"]) == 0
    out = capsys.readouterr().out
    assert "fastconv" in out and "provider loaded, priority 50, for numpy" in out
    assert "conv2d" in out and "fastconv (priority 50, float32, conditional) > numpy (priority 0, float32/float64)" in out


def test_conformance_checks_every_provider_of_an_op(calls):
    run = run_device(NUMPY, collect_cases(["conv2d", "relu"], random_per_op=3, onnx=False), out=None)
    by = {}
    for r in run["results"]:
        by.setdefault((r.op, r.pinned), []).append(r)
    assert set(by) == {("conv2d", "fastconv"), ("conv2d", "numpy"), ("conv2d.grad", "fastconv"),
                       ("conv2d.grad", "numpy"), ("relu", "fastconv"), ("relu", "numpy"), ("relu.grad", "fastconv"),
                       ("relu.grad", "numpy")}
    assert all(r.status != FAILED for r in run["results"])
    fast = by[("conv2d", "fastconv")]
    assert {r.status for r in fast} == {PASSED, UNSUPPORTED}  # float64 and groups > 1 declined
    assert all(r.status == PASSED for r in by[("conv2d", "numpy")])
    from opdispatch_conformance import report

    table = report.table(report.summarize(run["results"]))
    assert "fastconv" in table and "numpy" in table
