"""Runs in int32, int64 and bool (``--dtypes int64``): the cases of the ops that take such values, compared
exactly, on numpy:0 and opencl:0; a wrong integer kernel fails; an unknown dtype is a usage error."""

from __future__ import annotations

import numpy as np
import pytest

import opdispatch as od
from fake_backends import make_plugin
from opdispatch.backend import DeviceInfo, Kernel
from opdispatch.cli import main
from opdispatch_conformance.cases import Case, In, applies, grid_cases
from opdispatch_conformance.runner import FAILED, PASSED
from opdispatch_conformance.suite import DTYPE_CHOICES, collect_cases, run_device
from opdispatch_conformance.tolerance import bound

DEVICES = ["numpy:0"] + (["opencl:0"] if od.Device("opencl:0") in od.devices() else [])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ["int32", "int64", "bool"])
def test_cli_runs_int_and_bool_dtypes_exactly(device, dtype, capsys):
    code = main(["conformance", "--device", device, "--dtypes", dtype, "--ops", "equal,less,where,max,min,argmax",
                 "--random", "3", "--no-onnx"])
    out = capsys.readouterr().out
    assert code == 0, out
    rows = [line.split() for line in out.splitlines() if line.split()[1:2] == [dtype]]
    ops = {r[0] for r in rows}
    # bool has no order for argmax, and where's values take no bool: those ops have no bool case
    assert ops == ({"equal", "less", "max", "min"} if dtype == "bool" else
                   {"equal", "less", "where", "max", "min", "argmax"}), out
    assert all(r[-2] == "0" and r[-1] == "ok" for r in rows), out  # rtol 0: exact


def test_only_the_cases_taking_the_dtype_run_in_it():
    cases = [c for c in grid_cases() if c.op in ("relu", "equal", "argmax")]
    taken = [c for c in cases if applies(c, "int64")]
    assert taken and all(c.op in ("equal", "argmax") for c in taken)
    assert all(applies(c, "float32") for c in cases)
    fixed = Case("argmax", (In((3,), dtype="int32"),))
    assert not applies(fixed, "int64")  # its own dtype: the same call as in the float runs
    assert not applies(Case("equal", (In((2,), "array", values=(0.5, 1.0)), In((2,)))), "int32")  # 0.5 is no int
    assert bound("int64", 10, 1.0, [np.zeros(3)]).atol == 0.0


def test_a_wrong_integer_kernel_fails_and_the_float_one_passes(clean_registry):
    def equal(a, b):  # right for floats, off for integers (the int path compares a + 1)
        return np.equal(a + 1, b) if a.dtype.kind in "iu" else np.equal(a, b)

    od.register_plugin(make_plugin("intbug", [Kernel("equal", equal, ("float32", "int32", "int64", "bool"))],
                                   devices=[DeviceInfo(index=0, dtypes=("float32",))],
                                   to_numpy=lambda d: np.array(d, copy=True), from_numpy=lambda a: np.array(a)))
    cases = collect_cases(["equal"], random_per_op=3, onnx=False)
    run = run_device(od.Device("intbug:0"), cases, ["float32", "int64"], out=None, gradients="no")
    floats = {r.status for r in run["results"] if r.dtype == "float32" and "int" not in r.case}  # float inputs
    ints = [r for r in run["results"] if r.dtype == "int64"]
    assert floats == {PASSED} and ints
    assert FAILED in {r.status for r in ints}
    bad = ints[0]
    assert "exact comparison" in bad.message and "--dtypes int64" in bad.repro


@pytest.mark.parametrize("given", ["foo", "float32,int8", ","])
def test_an_unknown_dtype_is_a_usage_error_listing_the_allowed_ones(given, capsys):
    with pytest.raises(SystemExit) as info:
        main(["conformance", "--dtypes", given])
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert "argument --dtypes" in err and "Traceback" not in err
    assert all(d in err for d in DTYPE_CHOICES), err
    with pytest.raises(od.InvalidArgumentError, match="allowed: one or more of float16"):
        run_device(od.Device("numpy:0"), [], ["nonsense"], out=None)
