"""Plugin loading in isolation: each broken plugin is reported, the others keep working."""

from __future__ import annotations

import subprocess
import sys

import pytest

import opdispatch as od
from opdispatch.registry import Registry
from fake_backends import make_broken, make_mini, make_unavailable


@pytest.fixture
def reg() -> Registry:
    """A private registry with the installed plugins (the global one is left alone)."""
    r = Registry()
    r.load_entry_points()
    return r


def test_installed_numpy_backend_is_found_through_its_entry_point(reg):
    st = reg.backends()["numpy"]
    assert st.status == "loaded"
    assert st.devices == (od.Device("numpy:0"),)
    assert "opdispatch-numpy" in st.origin
    assert "conv2d" in st.ops


def test_a_working_run_time_plugin_adds_its_devices(reg):
    st = reg.add_plugin(make_mini(), name="mini")
    assert st.status == "loaded", st
    devs = reg.devices()  # other installed backends (opencl, cupy on a GPU) may add devices of their own
    assert devs[:2] == [od.Device("mini:0"), od.Device("mini:1")] and od.Device("numpy:0") in devs
    assert devs == sorted(devs, key=lambda d: (d.backend, d.index))
    rt = reg.runtime(od.Device("mini:1"))
    assert rt.info.name == "mini device 1"
    assert [dt.name for op, dt in rt.fast if op == "relu"] == ["float32"]  # float64 not declared
    assert "conv2d" not in {op for op, _ in rt.fast}  # it has a supports() check: never on the fast path


@pytest.mark.parametrize("kind, fragment", [
    ("probe-crash", "driver exploded"),
    ("bad-kernel", "conv2d"),
    ("unknown-op", "conv3d"),
    ("unknown-hook", "opdispatch_bogus"),
    ("missing-hook", "opdispatch_to_numpy"),
    ("bad-hook-args", "nonsense"),
])
def test_a_broken_plugin_is_reported_with_its_reason_and_the_rest_works(reg, kind, fragment):
    st = reg.add_plugin(make_broken(kind), name=f"broken-{kind}")
    assert st.status == "failed"
    assert fragment in st.reason
    assert st.devices == ()
    assert reg.backends()["numpy"].status == "loaded"
    assert reg.add_plugin(make_mini(), name="mini").status == "loaded"


def test_bad_kernel_signature_reason_names_the_schema(reg):
    st = reg.add_plugin(make_broken("bad-kernel"))
    assert "does not fit the schema" in st.reason
    assert "stride" in st.reason and "bias" in st.reason


def test_unavailable_backend_reports_reason_and_contributes_no_device(reg):
    st = reg.add_plugin(make_unavailable())
    assert st.status == "unavailable"
    assert st.reason == "no CUDA driver found"
    assert all(d.backend != "nogpu" for d in reg.devices())
    with pytest.raises(od.DeviceError, match="nogpu.*unavailable.*no CUDA driver"):
        reg.runtime(od.Device("nogpu:0"))


def test_a_device_keeps_its_driver_facts_and_bad_ones_fail_only_their_backend(reg):
    from opdispatch.backend import DeviceInfo
    from fake_backends import make_plugin

    facts = {"driver version": "1.2", "runtime": "ExampleRT 4"}
    assert reg.add_plugin(make_plugin("drv", [], devices=[DeviceInfo(0, driver=facts)])).status == "loaded"
    assert reg.runtime(od.Device("drv:0")).info.driver == facts
    bad = reg.add_plugin(make_plugin("baddrv", [], devices=[DeviceInfo(0, driver={"version": 3})]))
    assert bad.status == "failed"
    assert "device 0 declares driver {'version': 3}; allowed: a mapping of str to str" in bad.reason
    assert reg.runtime(od.Device("drv:0")).info.driver == facts
    assert DeviceInfo(0).driver == {}  # optional


def test_duplicate_backend_name_is_refused_and_the_first_kept(reg):
    assert reg.add_plugin(make_mini(), name="mini").status == "loaded"
    second = reg.add_plugin(make_mini(), name="mini")
    assert second.status == "failed" and "already provided" in second.reason
    assert reg.backends()["mini"].status == "loaded"


def test_unknown_device_error_lists_available_devices(reg):
    with pytest.raises(od.DeviceError, match=r"no backend named 'tpu'.*numpy:0"):
        reg.runtime(od.Device("tpu:0"))
    with pytest.raises(od.DeviceError, match=r"numpy:0"):
        reg.runtime(od.Device("numpy:3"))


def test_import_opdispatch_loads_no_plugin_and_no_gpu_library():
    code = ("import sys, opdispatch, opdispatch.registry as r; "
            "assert r._REGISTRY is None; "
            "bad = [m for m in ('cupy', 'pyopencl', 'torch', 'opdispatch_numpy') if m in sys.modules]; "
            "assert not bad, bad; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_od_backends_and_devices_on_the_global_registry():
    assert od.Device("numpy:0") in od.devices()
    assert od.backends()["numpy"].status == "loaded"
