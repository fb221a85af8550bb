"""Gradient conformance: each op's gradient on the device under test against the reference backward."""

from __future__ import annotations

import shlex

import numpy as np
import pytest

import opdispatch as od
import opdispatch_numpy.plugin as numpy_plugin
from fake_backends import make_plugin
from opdispatch.backend import DeviceInfo
from opdispatch.cli import main
from opdispatch.ops import OPS
from opdispatch_conformance.gradients import REFERENCE, SUFFIX, run_gradient_case
from opdispatch_conformance.runner import FAILED, PASSED, UNSUPPORTED
from opdispatch_conformance.suite import collect_cases, run_device


def test_the_reference_device_is_hidden_and_runs_every_op():
    assert REFERENCE == od.Device("reference:0")
    assert REFERENCE not in od.devices() and REFERENCE in od.devices(hidden=True)
    assert {k.op for k in od.kernels(REFERENCE)} == set(OPS)


def test_every_differentiable_op_has_passing_gradient_checks_on_numpy():
    run = run_device(od.Device("numpy:0"), collect_cases(random_per_op=3, onnx=False), out=None, gradients="only")
    results = run["results"]
    assert results and all(r.op.endswith(SUFFIX) for r in results)
    assert [r for r in results if r.status == FAILED] == []
    # every case passes on the NumPy backend's kernels (another provider's, oneDNN's say, may decline some)
    assert [r for r in results if r.pinned in ("", "numpy") and r.status != PASSED] == []
    checked = {r.op[:-len(SUFFIX)] for r in results}
    differentiable = {op for op, s in OPS.items() if s.vjp is not None}
    assert checked == differentiable, differentiable - checked
    assert {r.dtype for r in results} == {"float16", "float32", "float64"}  # numpy:0: float16 computed in float32


def test_a_missing_backward_kernel_is_unsupported_with_its_name(clean_registry):
    # max_pool2d_backward (first maximum per window) has no decomposition: without its kernel the
    # gradient of max_pool2d cannot run
    kernels = [k for k in numpy_plugin.opdispatch_kernels() if k.op != "max_pool2d_backward"]
    od.register_plugin(make_plugin("nobackward", kernels, devices=[DeviceInfo(index=0)],
                                   to_numpy=lambda d: np.array(d, copy=True), from_numpy=lambda a: np.array(a)))
    case = next(c for c in collect_cases(["max_pool2d"], random_per_op=0, onnx=False))
    res = run_gradient_case(case, od.Device("nobackward:0"), "float32")
    assert res.status == UNSUPPORTED
    assert "max_pool2d_backward" in res.message and res.message.startswith("backward:")


def test_a_missing_decomposable_backward_kernel_runs_its_decomposition(clean_registry):
    kernels = [k for k in numpy_plugin.opdispatch_kernels() if k.op != "conv2d_backward_weight"]
    od.register_plugin(make_plugin("nobackward", kernels, devices=[DeviceInfo(index=0)],
                                   to_numpy=lambda d: np.array(d, copy=True), from_numpy=lambda a: np.array(a)))
    for case in collect_cases(["conv2d"], random_per_op=3, onnx=False):
        res = run_gradient_case(case, od.Device("nobackward:0"), "float32")
        assert res.status == PASSED, (case.name, res.message)


def test_cli_gradients_only_and_its_reproduction_line(capsys):
    assert main(["conformance", "--ops", "tanh", "--no-onnx", "--random", "1", "--gradients", "only"]) == 0
    out = capsys.readouterr().out
    assert "tanh.grad" in out and "\ntanh " not in out
    case = next(c for c in collect_cases(["tanh"], random_per_op=0, onnx=False))
    res = run_gradient_case(case, od.Device("numpy:0"), "float32")
    argv = shlex.split(res.repro)
    assert argv[:2] == ["opdispatch", "conformance"] and "--gradients" in argv
    assert main(argv[1:]) == 0
    assert "tanh.grad" in capsys.readouterr().out


@pytest.mark.parametrize("mode", ["eager", "graph"])
def test_a_wrong_gradient_is_reported_with_the_input_it_concerns(clean_registry, mode):
    def relu_backward_halved(dy, x):
        return np.where(x > 0, dy / 2, dy.dtype.type(0))

    from opdispatch.backend import Kernel

    kernels = [k for k in numpy_plugin.opdispatch_kernels() if k.op != "relu_backward"]
    od.register_plugin(make_plugin("halved", kernels + [Kernel("relu_backward", relu_backward_halved)],
                                   devices=[DeviceInfo(index=0)], to_numpy=lambda d: np.array(d, copy=True),
                                   from_numpy=lambda a: np.array(a)))
    case = next(c for c in collect_cases(["relu"], random_per_op=0, onnx=False))
    res = run_gradient_case(case, od.Device("halved:0"), "float64", mode)
    assert res.status == FAILED
    assert "d/d x outside tolerance" in res.message and f"--mode {mode} --gradients only" in res.repro


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gradient_checks_use_the_device_kernels_not_the_reference(clean_registry, dtype):
    calls = []

    def counting_conv_backward_input(dy, w, **attrs):
        calls.append(dtype)
        return numpy_plugin.conv.KERNELS["conv2d_backward_input"](dy, w, **attrs)

    from opdispatch.backend import Kernel

    kernels = [k for k in numpy_plugin.opdispatch_kernels() if k.op != "conv2d_backward_input"]
    od.register_plugin(make_plugin("counting", kernels + [Kernel("conv2d_backward_input", counting_conv_backward_input)],
                                   devices=[DeviceInfo(index=0)], to_numpy=lambda d: np.array(d, copy=True),
                                   from_numpy=lambda a: np.array(a)))
    case = next(c for c in collect_cases(["conv2d"], random_per_op=0, onnx=False))
    assert run_gradient_case(case, od.Device("counting:0"), dtype).status == PASSED
    assert calls == [dtype]
