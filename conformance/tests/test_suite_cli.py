"""The conformance runner, reports and both entry points (CLI and pytest)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import opdispatch as od
from fake_backends import make_mini, make_plugin
from opdispatch.backend import DeviceInfo, Kernel
from opdispatch.cli import main
from opdispatch_conformance import report
from opdispatch_conformance.cases import Case, In, case_from_json, grid_cases
from opdispatch_conformance.gradients import gradient_cases
from opdispatch_conformance.runner import FAILED, PASSED, UNSUPPORTED, run_case
from opdispatch_conformance.suite import collect_cases, run_device
from opdispatch.ops import OPS


def _liar_plugin():
    """Kernels that claim support and misbehave in one way each."""

    def relu_wrong_shape(x):
        return np.maximum(x, 0).reshape(-1)

    def neg_wrong_dtype(x):
        return -x.astype(np.float64)

    def exp_raises(x):
        raise ZeroDivisionError("kernel crashed")

    def tanh_wrong_type(x):
        return "not an array"

    def to_numpy(data):
        if not isinstance(data, np.ndarray):
            raise TypeError(f"liar cannot read back a {type(data).__name__}")
        return np.array(data, copy=True)

    f32 = ("float32",)
    return make_plugin("liar", [Kernel("relu", relu_wrong_shape, f32), Kernel("neg", neg_wrong_dtype, f32),
                                Kernel("exp", exp_raises, f32), Kernel("tanh", tanh_wrong_type, f32)],
                       devices=[DeviceInfo(index=0, dtypes=f32)], to_numpy=to_numpy)


CASE_2D = Case("relu", (In((2, 3)),))


@pytest.fixture
def liar(clean_registry):
    od.register_plugin(_liar_plugin())
    return od.Device("liar:0")


@pytest.mark.parametrize("op, fragment", [  # dispatch checks every kernel result before it becomes a tensor
    ("relu", "returned its output of shape (6,) and dtype float32; the schema inferred shape (2, 3)"),
    ("neg", "returned its output of shape (2, 3) and dtype float64; the schema inferred shape (2, 3) and dtype "
            "float32"),
    ("exp", "raised KernelError"),
    ("tanh", "returned str as its output; allowed: a liar array of shape (2, 3)"),
])
def test_misbehaving_kernels_fail_with_the_reason(liar, op, fragment):
    res = run_case(Case(op, (In((2, 3)),)), liar, "float32")
    assert res.status == FAILED
    assert fragment in res.message
    if op == "exp":
        assert "ZeroDivisionError: kernel crashed" in res.traceback


def test_declared_gaps_are_unsupported_not_failures(liar):
    assert run_case(Case("sigmoid", (In((2,)),)), liar, "float32").status == UNSUPPORTED
    res = run_case(CASE_2D, liar, "float64")
    assert res.status == UNSUPPORTED and "does not support float64" in res.message


def test_supports_reason_is_reported(clean_registry):
    od.register_plugin(make_mini(), name="mini")
    case = Case("conv2d", (In((1, 2, 4, 4)), In((2, 1, 3, 3)), None), {"groups": 2})
    res = run_case(case, od.Device("mini:0"), "float32")
    assert res.status == UNSUPPORTED and res.message.startswith("groups > 1 is not implemented; its decomposition needs")


def test_run_goes_on_after_failures_and_reports_every_op(liar):
    cases = collect_cases(["relu", "neg", "exp", "sigmoid", "tanh"], random_per_op=2, onnx=False)
    run = run_device(liar, cases, out=None)
    summary = {s.op: s for s in report.summarize(run["results"])}
    forward = {"relu", "neg", "exp", "sigmoid", "tanh"}
    assert set(summary) == forward | {op + ".grad" for op in forward}
    assert summary["sigmoid"].verdict == "unsupported" and summary["relu"].verdict == "FAIL"


def test_reproduction_line_reruns_the_case():
    case = grid_cases()[5]
    assert case_from_json(case.to_json()) == case
    res = run_case(case, od.Device("numpy:0"), "float32")
    assert res.status == PASSED and "--case '" in res.repro
    assert main(["conformance", "--device", "numpy:0", "--dtypes", "float32", "--case", case.to_json()]) == 0


def test_cli_writes_stable_json_and_markdown(tmp_path, capsys):
    args = ["conformance", "--device", "numpy:0", "--ops", "conv2d,relu", "--no-onnx", "--random", "3"]
    assert main(args + ["--report", str(tmp_path / "a.json"), "--markdown", str(tmp_path / "a.md")]) == 0
    assert main(args + ["--report", str(tmp_path / "b.json")]) == 0
    a, b = (tmp_path / "a.json").read_text(), (tmp_path / "b.json").read_text()
    assert a == b  # two runs diff cleanly: nothing time-dependent, stable order
    data = json.loads(a)
    assert data["format"] == "opdispatch-conformance" and data["version"] == 1
    dev = data["devices"]["numpy:0"]
    assert dev["totals"]["failed"] == 0 and dev["totals"]["passed"] > 0
    assert {s["op"] for s in dev["summary"]} == {"conv2d", "relu", "conv2d.grad", "relu.grad"}
    row = dev["summary"][0]
    assert {"max_abs_error", "max_rel_error", "rtol_at_worst", "worst_error_over_tolerance"} <= set(row)
    md = (tmp_path / "a.md").read_text()
    assert "| conv2d | float32 |" in md and "## Ops x devices" in md
    out = capsys.readouterr().out
    assert "conv2d" in out and "passed: 0 failed" in out


def test_reports_record_the_device_its_driver_and_the_providers_that_ran(clean_registry, tmp_path, capsys):
    from opdispatch import hookimpl
    from opdispatch.backend import ProviderInfo

    def relu(x):
        return np.maximum(x, x.dtype.type(0))

    class FastRelu:
        @hookimpl
        def opdispatch_provider_info(self):
            return ProviderInfo(name="fastrelu", version="2.5.1", priority=50, plugin_api=1)

        @hookimpl
        def opdispatch_provider_kernels(self):
            return [Kernel("relu", relu, dtypes=("float32",), backend="drv")]

    facts = {"driver version": "7.1", "firmware": "A2"}
    od.register_plugin(make_plugin("drv", [Kernel("relu", relu, dtypes=("float32",)),
                                           Kernel("add", np.add, dtypes=("float32",))],
                                   devices=[DeviceInfo(0, name="Driven", dtypes=("float32",), driver=facts)]),
                       name="drv")
    od.register_plugin(FastRelu(), name="fastrelu")
    assert main(["conformance", "--device", "drv:0", "--device", "numpy:0", "--ops", "relu,add", "--no-onnx",
                 "--random", "1", "--report", str(tmp_path / "r.json"), "--markdown", str(tmp_path / "r.md")]) == 0
    devices = json.loads((tmp_path / "r.json").read_text())["devices"]
    assert devices["drv:0"]["device"] == {"name": "Driven", "dtypes": ["float32"], "driver": facts}
    assert devices["drv:0"]["providers"] == {"fastrelu": "2.5.1"}  # its own kernels are the backend's version
    assert devices["numpy:0"]["device"]["driver"]["numpy"] == np.__version__
    assert "fastrelu" not in devices["numpy:0"]["providers"]
    md = (tmp_path / "r.md").read_text()
    assert "- Device: Driven (dtypes float32)" in md and "- Driver: driver version: 7.1; firmware: A2" in md
    assert "- Kernel providers that ran: fastrelu 2.5.1" in md and f"- Driver: numpy: {np.__version__}" in md


def test_a_report_named_gz_is_the_same_json_compressed_and_stable(tmp_path):
    import gzip

    args = ["conformance", "--device", "numpy:0", "--ops", "relu,add", "--no-onnx", "--random", "2"]
    for name in ("plain.json", "a.json.gz", "b.json.gz"):
        assert main(args + ["--report", str(tmp_path / name)]) == 0
    plain, packed = (tmp_path / "plain.json").read_bytes(), (tmp_path / "a.json.gz").read_bytes()
    assert gzip.decompress(packed) == plain and len(packed) * 5 < len(plain)
    assert packed == (tmp_path / "b.json.gz").read_bytes()  # no time stamp: equal runs, equal files


def test_cli_exit_status_is_nonzero_when_a_supported_case_fails(liar, capsys):
    assert main(["conformance", "--device", "liar:0", "--ops", "relu,sigmoid", "--no-onnx"]) == 1
    out = capsys.readouterr().out
    assert "FAILED relu(" in out and "reproduce: opdispatch conformance --device liar:0" in out


def test_cli_all_prints_a_matrix_of_ops_by_device(clean_registry, capsys):
    od.register_plugin(make_mini(), name="mini")
    assert main(["conformance", "--all", "--ops", "relu,add,conv2d", "--no-onnx", "--random", "2"]) == 0
    out = capsys.readouterr().out
    assert "| op | mini:0 | mini:1 | numpy:0 |" in out  # then any other installed device
    assert "| conv2d | unsupported" in out


def test_cli_unknown_device_is_a_clear_error(capsys):
    assert main(["conformance", "--device", "nosuch:0"]) == 2
    assert "no backend named 'nosuch'" in capsys.readouterr().err


@pytest.mark.slow
def test_pytest_entry_runs_the_same_cases(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pytest", "--pyargs", "opdispatch_conformance", "--od-device",
                           "numpy:0", "--od-ops", "relu,max_pool2d", "--od-dtypes", "float32", "--od-random", "2",
                           "-q", "-p", "no:cacheprovider"], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    cases = collect_cases(["relu", "max_pool2d"], random_per_op=2)
    assert f"{len(cases) + len(gradient_cases(cases))} passed" in proc.stdout


def test_every_op_has_grid_and_random_cases():
    from opdispatch_conformance.cases import GENERATORS
    from opdispatch.ops import OPS

    assert set(GENERATORS) == set(OPS)
    assert {c.op for c in grid_cases()} == set(OPS)
