"""Third-party backend plugins, installed for real with pip and found through entry points.

``tests/plugins/`` holds three tiny distributions, each with its own ``pyproject.toml``:

* ``opdispatch-fake``: backend ``fake`` with one device ``fake:0`` (float32 only) whose arrays
  are its own ``FakeArray`` type; kernels for relu, add, mul, matmul and sum, none for conv2d;
* ``opdispatch-broken-import``: entry point ``broken_import`` whose module fails to import;
* ``opdispatch-bad-signature``: backend ``badsig`` whose conv2d kernel does not fit the schema.

The module fixture installs them with pip (``--no-index --no-deps --target``) into a temporary
directory, puts it on ``sys.path`` and rediscovers the plugins through
``importlib.metadata.entry_points``; on teardown it removes them and rediscovers again, so the
other test modules see a clean registry.

pip builds the distributions with setuptools, without build isolation (the ``test`` extra
installs setuptools and wheel), so the entry points come from real installed ``*.dist-info``
and reach opdispatch through importlib.metadata.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import opdispatch as od
from opdispatch import registry as od_registry
from pip_plugins import PLUGINS, install, forget_modules

ROOT = Path(__file__).resolve().parent.parent
DISTS = ("opdispatch-fake", "opdispatch-broken-import", "opdispatch-bad-signature")
MODULES = ("opdispatch_fake", "opdispatch_broken_import", "opdispatch_bad_signature")
EP_NAMES = {"fake", "broken_import", "badsig"}
FAKE = od.Device("fake:0")
NUMPY = od.Device("numpy:0")

pytestmark = pytest.mark.filterwarnings("error::opdispatch.PlacementWarning")


# --------------------------------------------------------------------------------------------
# installing the distributions


def _install(target: Path, scratch: Path) -> None:
    """Install the three distributions into ``target`` with real pip, from a copy of their sources."""
    install(DISTS, target, scratch)


def _forget_plugin_modules() -> None:
    forget_modules(MODULES)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The three plugin distributions installed with pip and discovered through entry points.

    Yields the directory they are installed in (on ``sys.path`` meanwhile).
    """
    scratch = tmp_path_factory.mktemp("plugin-build")
    target = tmp_path_factory.mktemp("plugin-site")
    _install(target, scratch)
    sys.path.insert(0, str(target))
    importlib.invalidate_caches()
    _forget_plugin_modules()
    od_registry.reload()
    try:
        yield target
    finally:
        while str(target) in sys.path:
            sys.path.remove(str(target))
        importlib.invalidate_caches()
        _forget_plugin_modules()
        od.clear_placement_log()
        od_registry.reload()
        # the other test modules must see a registry without the test plugins
        assert not EP_NAMES & {ep.name for ep in importlib.metadata.entry_points(group="opdispatch.backends")}
        assert not EP_NAMES & set(od.backends())
        assert FAKE not in od.devices()


@pytest.fixture
def fake_module(installed):
    """The imported ``opdispatch_fake`` package and its ``array`` module (transfer counters)."""
    return importlib.import_module("opdispatch_fake"), importlib.import_module("opdispatch_fake.array")


def _f32(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# --------------------------------------------------------------------------------------------
# discovery and status


def test_entry_points_metadata_lists_the_installed_plugins(installed):
    eps = {ep.name: ep for ep in importlib.metadata.entry_points(group="opdispatch.backends")}
    assert EP_NAMES <= set(eps)
    assert eps["fake"].value == "opdispatch_fake.plugin"
    assert eps["broken_import"].value == "opdispatch_broken_import.plugin"
    assert eps["badsig"].value == "opdispatch_bad_signature.plugin"
    # the entry points come from the distributions pip installed into the target directory
    for name, dist in (("fake", "opdispatch-fake"), ("broken_import", "opdispatch-broken-import"),
                       ("badsig", "opdispatch-bad-signature")):
        assert eps[name].dist is not None and eps[name].dist.name == dist
        assert Path(str(eps[name].dist.locate_file(""))).resolve() == installed.resolve()
    assert "numpy" in eps  # the in-tree backend is still installed


def test_backends_reports_every_plugin_with_its_status(installed):
    b = od.backends()
    assert {"numpy", "fake", "broken_import", "badsig"} <= set(b)

    assert b["numpy"].status == "loaded"
    assert b["numpy"].devices == (NUMPY,)

    fake = b["fake"]
    assert fake.status == "loaded", fake
    assert fake.devices == (FAKE,)
    assert set(fake.ops) == {"relu", "add", "mul", "matmul", "sum"}
    assert "conv2d" not in fake.ops
    assert "opdispatch-fake" in fake.origin

    broken = b["broken_import"]
    assert broken.status == "failed"
    assert broken.devices == ()
    assert "import" in broken.reason
    assert "ModuleNotFoundError" in broken.reason
    assert "opdispatch_nonexistent_runtime_lib" in broken.reason
    assert "opdispatch-broken-import" in broken.origin

    bad = b["badsig"]
    assert bad.status == "failed"
    assert bad.devices == ()
    assert "conv2d" in bad.reason
    assert "signature" in bad.reason
    assert "conv2d(x, w)" in bad.reason  # the offending signature is shown
    assert "bias" in bad.reason and "stride" in bad.reason  # and what the schema expects
    assert "opdispatch-bad-signature" in bad.origin
    # str() of a status carries the reason too (what a CLI would print)
    assert "failed" in str(bad) and "conv2d" in str(bad)


def test_devices_lists_only_the_working_plugins(installed):
    devs = od.devices()
    assert NUMPY in devs and FAKE in devs
    candidates = {NUMPY, FAKE, od.Device("badsig:0"), od.Device("broken_import:0")}
    assert candidates & set(devs) == {NUMPY, FAKE}
    assert not any(d.backend in ("badsig", "broken_import") for d in devs)


def test_failed_plugins_give_clear_device_errors(installed):
    with pytest.raises(od.DeviceError, match=r"badsig:0.*failed.*conv2d"):
        od.tensor([1.0], dtype="float32", device="badsig:0")
    with pytest.raises(od.DeviceError, match=r"broken_import.*failed"):
        with od.device("broken_import:0"):
            pass


def _fresh_python(code: str, target: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(target), *filter(None, [env.get("PYTHONPATH")])])
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env,
                          timeout=120, cwd=str(target))


def test_import_in_a_fresh_process_survives_broken_plugins(installed):
    code = (
        "import opdispatch as od\n"
        "b = od.backends()\n"
        "for name in sorted(b):\n"
        "    print(name, b[name].status, ','.join(map(str, b[name].devices)))\n"
        "print('DEVICES', ' '.join(map(str, od.devices())))\n"
        "with od.device('fake:0'):\n"
        "    x = od.tensor([-1.0, 2.0], dtype='float32')\n"
        "print('RELU', od.relu(x).numpy().tolist(), od.relu(x).device, type(x.data).__name__)\n"
    )
    proc = _fresh_python(code, installed)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "numpy loaded numpy:0" in lines
    assert "fake loaded fake:0" in lines
    assert "broken_import failed " in lines
    assert "badsig failed " in lines
    devices = next(line for line in lines if line.startswith("DEVICES")).split()[1:]
    assert "numpy:0" in devices and "fake:0" in devices
    assert "badsig:0" not in devices and "broken_import:0" not in devices
    assert "RELU [0.0, 2.0] fake:0 FakeArray" in lines


def test_cli_devices_prints_every_backend_with_its_status(installed):
    if not (ROOT / "opdispatch" / "cli.py").exists():
        pytest.skip("opdispatch/cli.py does not exist yet")
    # exactly what the `opdispatch` console script does, without depending on its reinstall
    code = ("import sys\nfrom opdispatch.cli import main\n"
            "sys.argv = ['opdispatch', 'devices']\nsys.exit(main())\n")
    proc = _fresh_python(code, installed)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    lines = out.splitlines()
    for name, status in (("numpy", "loaded"), ("fake", "loaded"), ("broken_import", "failed"),
                         ("badsig", "failed")):
        assert any(name in line and status in line for line in lines), \
            f"no line shows backend {name!r} as {status!r}:\n{out}"
    assert "fake:0" in out and "numpy:0" in out
    assert "opdispatch_nonexistent_runtime_lib" in out  # the failure reason is printed
    assert "conv2d" in out


# --------------------------------------------------------------------------------------------
# running ops on the plugin's device


def test_tensors_live_on_the_fake_device(installed, fake_module):
    pkg, array_mod = fake_module
    a = _f32(3, 4)
    before = dict(array_mod.TRANSFERS)
    with od.device("fake:0"):
        x = od.tensor(a)
    assert x.device == FAKE
    assert type(x.data) is pkg.FakeArray
    assert array_mod.TRANSFERS["from_numpy"] == before["from_numpy"] + 1
    with pytest.raises(TypeError):
        np.asarray(x.data)  # the backend array is not host memory
    np.testing.assert_array_equal(x.numpy(), a)
    assert array_mod.TRANSFERS["to_numpy"] == before["to_numpy"] + 1
    np.testing.assert_array_equal(np.asarray(x), a)
    assert "fake:0" in repr(x) and "fake:0" in str(x)
    y = od.tensor(a, device="fake:0")  # an explicit device argument works the same way
    assert y.device == FAKE and type(y.data) is pkg.FakeArray


def test_ops_run_on_the_fake_device(installed, fake_module):
    pkg, array_mod = fake_module
    a, b, m = _f32(3, 4, seed=1), _f32(3, 4, seed=2), _f32(4, 5, seed=3)
    with od.device("fake:0"):
        x, y, w = od.tensor(a), od.tensor(b), od.tensor(m)
    before = dict(array_mod.TRANSFERS)
    results = {
        "relu": (od.relu(x), np.maximum(a, 0)),
        "add": (x + y, a + b),
        "add_self": (x + x, a + a),
        "mul": (od.mul(x, y), a * b),
        "mul_op": (x * y, a * b),
        "matmul": (od.matmul(x, w), a @ m),
        "matmul_op": (x @ w, a @ m),
        "sum": (od.sum(x), np.sum(a)),
        "sum_axis": (od.sum(x, axis=1, keepdims=True), np.sum(a, axis=1, keepdims=True)),
        "broadcast": (od.add(x, od.tensor(b[:1], device="fake:0")), a + b[:1]),
    }
    # ops ran on the device: no data crossed to the host (one upload: the broadcast operand)
    assert array_mod.TRANSFERS["to_numpy"] == before["to_numpy"]
    assert array_mod.TRANSFERS["from_numpy"] == before["from_numpy"] + 1
    for name, (got, want) in results.items():
        assert got.device == FAKE, name
        assert type(got.data) is pkg.FakeArray, name
        assert got.dtype == np.float32, name
        assert got.shape == np.shape(want), name
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-5, err_msg=name)


def test_python_scalars_are_placed_on_the_fake_device(installed, fake_module):
    pkg, _ = fake_module
    a = _f32(2, 3)
    x = od.tensor(a, device="fake:0")
    for got, want in ((x + 2.0, a + 2), (3 * x, 3 * a), (od.add(x, 1), a + 1)):
        assert got.device == FAKE and got.dtype == np.float32
        assert type(got.data) is pkg.FakeArray
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-6)


def test_transfers_round_trip_through_the_plugin_hooks(installed, fake_module):
    pkg, array_mod = fake_module
    a = _f32(2, 3, seed=4)
    x = od.tensor(a, device="fake:0")
    before = dict(array_mod.TRANSFERS)
    h = x.to("numpy:0")
    assert array_mod.TRANSFERS["to_numpy"] == before["to_numpy"] + 1
    assert h.device == NUMPY and isinstance(h.data, np.ndarray)
    np.testing.assert_array_equal(h.numpy(), a)
    back = h.to("fake:0")
    assert array_mod.TRANSFERS["from_numpy"] == before["from_numpy"] + 1
    assert back.device == FAKE and type(back.data) is pkg.FakeArray
    np.testing.assert_array_equal(back.numpy(), a)
    assert x.to(FAKE) is x  # already there: no copy
    # data created on numpy:0 moves to the fake device too
    z = od.tensor(a).to("fake:0")
    assert z.device == FAKE and type(z.data) is pkg.FakeArray


def test_float64_is_rejected_on_the_float32_only_device(installed):
    with od.device("fake:0"):
        with pytest.raises(od.DTypeError, match="fake:0") as err:
            od.tensor(np.ones(3))  # float64
        assert "float64" in str(err.value)
        assert od.tensor([1.0, 2.0]).dtype == np.float32  # Python floats default to float32
        with pytest.raises(od.DTypeError, match="fake:0"):
            od.tensor([1.0, 2.0], dtype="float64")
    with pytest.raises(od.DTypeError, match="fake:0"):
        od.tensor(np.ones(3), device="fake:0")
    with pytest.raises(od.DTypeError, match="fake:0"):
        od.tensor(np.ones(3)).to("fake:0")


def test_inputs_on_two_devices_are_an_error_naming_both(installed):
    x = od.tensor(_f32(2, 2), device="fake:0")
    y = od.tensor(_f32(2, 2), device="numpy:0")
    for call in (lambda: x + y, lambda: od.add(y, x), lambda: od.matmul(x, y), lambda: od.mul(x, y)):
        with pytest.raises(od.DeviceMismatchError) as err:
            call()
        assert "fake:0" in str(err.value) and "numpy:0" in str(err.value)


def test_mismatch_under_a_copy_policy_copies_visibly(installed, fake_module):
    pkg, _ = fake_module
    a, b = _f32(2, 2, seed=5), _f32(2, 2, seed=6)
    x, y = od.tensor(a, device="fake:0"), od.tensor(b, device="numpy:0")
    od.clear_placement_log()
    with od.device("fake:0", fallback="warn"):
        with pytest.warns(od.PlacementWarning, match="numpy:0"):
            z = x + y
    assert z.device == FAKE and type(z.data) is pkg.FakeArray
    np.testing.assert_allclose(z.numpy(), a + b, rtol=1e-6)
    assert any(e.op == "add" and e.ran_on == FAKE for e in od.placement_log())


# --------------------------------------------------------------------------------------------
# a missing kernel, and the explicit fallback policies


def _conv_inputs():
    x, w, bias = _f32(1, 2, 5, 5, seed=7), _f32(3, 2, 3, 3, seed=8), _f32(3, seed=9)
    return x, w, bias


def test_missing_kernel_is_a_clear_error(installed):
    x, w, bias = _conv_inputs()
    with od.device("fake:0"):
        tx, tw = od.tensor(x), od.tensor(w)
        with pytest.raises(od.UnsupportedError) as err:
            od.conv2d(tx, tw, padding=1)
    msg = str(err.value)
    assert "conv2d" in msg and "fake:0" in msg
    assert "no kernel" in msg
    # nothing ran elsewhere and nothing was recorded
    assert not [e for e in od.placement_log() if e.requested == FAKE and e.op == "conv2d"]
    # ops the backend lacks entirely are errors too (sigmoid), also on the fast path
    with pytest.raises(od.UnsupportedError, match=r"sigmoid.*fake:0"):
        od.sigmoid(tx)


def test_fallback_warn_runs_elsewhere_and_comes_back(installed, fake_module):
    pkg, _ = fake_module
    x, w, bias = _conv_inputs()
    expected = od.conv2d(od.tensor(x, device="numpy:0"), od.tensor(w, device="numpy:0"),
                         od.tensor(bias, device="numpy:0"), padding=1, stride=(1, 2)).numpy()
    od.clear_placement_log()
    with od.device("fake:0"):
        tx, tw, tb = od.tensor(x), od.tensor(w), od.tensor(bias)
        with od.device(None, fallback="warn"):
            assert od.get_device() == FAKE
            with pytest.warns(od.PlacementWarning) as rec:
                y = od.conv2d(tx, tw, tb, padding=1, stride=(1, 2))
    assert y.device == FAKE
    assert type(y.data) is pkg.FakeArray
    assert y.dtype == np.float32 and y.shape == expected.shape
    np.testing.assert_array_equal(y.numpy(), expected)
    texts = [str(r.message) for r in rec if issubclass(r.category, od.PlacementWarning)]
    assert any("conv2d" in t and "fake:0" in t and "numpy:0" in t for t in texts), texts
    events = [e for e in od.placement_log() if e.op == "conv2d"]
    assert len(events) == 1
    assert events[0].requested == FAKE and events[0].ran_on == NUMPY
    assert "conv2d" in events[0].reason
    # the rest of the chain stays on the fake device
    z = od.relu(y)
    assert z.device == FAKE and type(z.data) is pkg.FakeArray


def test_fallback_record_is_silent_but_logged(installed):
    x, w, _ = _conv_inputs()
    expected = od.conv2d(x, w).numpy()  # numpy:0, the default device
    od.clear_placement_log()
    tx, tw = od.tensor(x, device="fake:0"), od.tensor(w, device="fake:0")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with od.device(None, fallback="record"):
            y = od.conv2d(tx, tw)
    assert not [c for c in caught if issubclass(c.category, od.PlacementWarning)]
    assert y.device == FAKE
    np.testing.assert_array_equal(y.numpy(), expected)
    events = [e for e in od.placement_log() if e.op == "conv2d"]
    assert [(e.requested, e.ran_on) for e in events] == [(FAKE, NUMPY)]
    # the policy ends with the block: the default is an error again
    with pytest.raises(od.UnsupportedError):
        od.conv2d(tx, tw)
