"""Plugin isolation: faulty third-party plugins, installed for real with pip, each break only themselves.

``tests/plugins/opdispatch-fault-*`` are tiny distributions with one fault each (see `FAULTS`);
``opdispatch-fault-twin-a`` is the working plugin that ``-twin-b`` duplicates. The module fixture
installs them all in one pip call into a temporary target, with a short device-probe timeout
(``OPDISPATCH_PROBE_TIMEOUT``), and rediscovers the plugins; on teardown it removes them again.
Faults that would hurt the test process (a Ctrl-C, a first use in a fresh interpreter) run in
subprocesses; everything else runs in process.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import opdispatch as od
from opdispatch import registry as od_registry
from opdispatch.backend import BackendInfo, DeviceInfo, ProviderInfo
from opdispatch.plugins import RESERVED_NAMES
from opdispatch.registry import PROBE_TIMEOUT_ENV, Registry
from fake_backends import make_plugin
from pip_plugins import PLUGINS, forget_modules, install

DISTS = tuple(sorted(p.name for p in PLUGINS.glob("opdispatch-fault-*")))
MODULES = tuple(d.replace("-", "_") for d in DISTS)
TIMEOUT = 1.5  # seconds: the device-probe timeout while the faulty plugins are installed
NUMPY = od.Device("numpy:0")

# distribution -> (kind, expected status, fragments of the reason)
FAULTS = {
    "opdispatch-fault-bad-name": ("backend", "failed", ["backend name 'My Backend' is not allowed", "lowercase"]),
    "opdispatch-fault-cpu-name": ("backend", "failed", ["backend name 'cpu' is not allowed", "the device string "
                                                        "'cpu' is an alias of numpy:0"]),
    "opdispatch-fault-foreign-device": ("backend", "failed", ["ForeignInfo(index=3", "a device of backend 'numpy'",
                                                              "backend 'foreigndev' may publish only its own "
                                                              "devices", "none of its devices is published"]),
    "opdispatch-fault-exit-import": ("backend", "failed", ["import failed", "SystemExit", "giving up at import"]),
    "opdispatch-fault-exit-probe": ("backend", "failed", ["device probe", "SystemExit", "no device, exiting"]),
    "opdispatch-fault-base-probe": ("backend", "failed", ["device probe", "ProbeAbort", "driver aborted"]),
    "opdispatch-fault-hang-probe": ("backend", "unavailable", [f"device probe did not answer within {TIMEOUT:g} s"]),
    "opdispatch-fault-hijack": ("backend", "failed", ["backend name 'numpy' belongs to the distribution "
                                                      "'opdispatch-numpy'", "'opdispatch-fault-hijack'"]),
    "opdispatch-fault-twin-b": ("backend", "failed", ["backend name 'twin' is already provided by",
                                                      "opdispatch-fault-twin-a"]),
    "opdispatch-fault-unknown-hook": ("backend", "failed", ["unknown hook", "opdispatch_bogus_hook"]),
    "opdispatch-fault-hook-signature": ("backend", "failed", ["hook validation failed", "opdispatch_to_numpy",
                                                              "buffer"]),
    "opdispatch-fault-priority-zero": ("provider", "failed", ["priority 0 is not allowed"]),
    "opdispatch-fault-unknown-op": ("provider", "failed", ["unknown op 'conv3d'"]),
    # these load: their faults are in what their kernels do (the tests below and the conformance suite)
    "opdispatch-fault-raising-supports": ("backend", "loaded", []),
    "opdispatch-fault-wrong-shape": ("backend", "loaded", []),
    "opdispatch-fault-wrong-dtype": ("backend", "loaded", []),
    "opdispatch-fault-returns-none": ("backend", "loaded", []),
    "opdispatch-fault-returns-list": ("backend", "loaded", []),
    "opdispatch-fault-returns-tuple": ("backend", "loaded", []),
    "opdispatch-fault-twin-a": ("backend", "loaded", []),
    "opdispatch-fault-slow-probe": ("backend", "loaded", []),  # slow, but well within TIMEOUT
}


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """Every ``opdispatch-fault-*`` distribution installed with pip (one call) and discovered, with
    the probe timeout set to `TIMEOUT`; yields the directory they are installed in."""
    assert set(DISTS) == set(FAULTS), "FAULTS must describe every opdispatch-fault-* distribution"
    target = tmp_path_factory.mktemp("faulty-site")
    install(DISTS, target, tmp_path_factory.mktemp("faulty-build"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(PROBE_TIMEOUT_ENV, str(TIMEOUT))
        sys.path.insert(0, str(target))
        importlib.invalidate_caches()
        forget_modules(MODULES)
        od_registry.reload()
        try:
            yield target
        finally:
            hang = sys.modules.get("opdispatch_fault_hang_probe")
            if hang is not None:
                hang.RELEASE.set()  # let every hanging probe thread end
            while str(target) in sys.path:
                sys.path.remove(str(target))
            importlib.invalidate_caches()
            forget_modules(MODULES)
    od_registry.reload()
    left = {ep.value for group in ("opdispatch.backends", "opdispatch.providers")
            for ep in importlib.metadata.entry_points(group=group)}
    assert not left & set(MODULES)


def _from(statuses, dist: str):
    """The status whose plugin comes from distribution ``dist``."""
    found = [st for st in statuses.values() if f"(from {dist} " in st.origin]
    assert len(found) == 1, (dist, [str(s) for s in statuses.values()])
    return found[0]


def _f32(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _numpy_ops_work(device=NUMPY) -> None:
    """A few ops on ``device`` give NumPy's answers."""
    a, b, w = _f32(2, 3, 6, 6, seed=1), _f32(2, 3, 6, 6, seed=2), _f32(4, 3, 3, 3, seed=3)
    x, y, k = (od.tensor(v, device=device) for v in (a, b, w))
    np.testing.assert_allclose(od.relu(x).numpy(), np.maximum(a, 0))
    np.testing.assert_allclose((x + y).numpy(), a + b, rtol=1e-6)
    np.testing.assert_allclose(od.sum(x).numpy(), a.sum(), rtol=1e-4)
    m = od.matmul(od.tensor(a[0, 0], device=device), od.tensor(b[0, 0], device=device))
    np.testing.assert_allclose(m.numpy(), a[0, 0] @ b[0, 0], rtol=1e-4, atol=1e-5)
    conv = od.conv2d(x, k, padding="SAME")
    assert conv.shape == (2, 4, 6, 6) and conv.device == device
    ref = od.conv2d(od.tensor(a, device="reference:0", dtype="float64"),
                    od.tensor(w, device="reference:0", dtype="float64"), padding="SAME").numpy()
    np.testing.assert_allclose(conv.numpy(), ref, rtol=1e-4, atol=1e-4)


# --------------------------------------------------------------------------------------------
# every faulty plugin is reported with its reason; every other backend works


@pytest.mark.parametrize("dist", sorted(FAULTS))
def test_each_plugin_is_reported_with_its_status_and_reason(installed, dist):
    kind, status, fragments = FAULTS[dist]
    st = _from(od.backends() if kind == "backend" else od.providers(), dist)
    assert st.status == status, str(st)
    for fragment in fragments:
        assert fragment in st.reason, (fragment, st.reason)
    if kind == "backend":
        assert (st.devices != ()) == (status == "loaded")


def test_the_other_backends_work_with_every_faulty_plugin_installed(installed):
    b = od.backends()
    assert b["numpy"].status == "loaded" and "(from opdispatch-numpy " in b["numpy"].origin
    assert b["numpy"].devices == (NUMPY,)
    _numpy_ops_work()
    # numpy:0 runs its own kernels only: no faulty provider got in (the in-tree oneDNN one may be installed)
    assert {k.provider for k in od.kernels(NUMPY)} - {"onednn"} == {"numpy"}
    if od.Device("opencl:0") in od.devices():
        a = _f32(3, 4, seed=5)
        x = od.tensor(a, device="opencl:0")
        np.testing.assert_allclose(od.relu(x).numpy(), np.maximum(a, 0))
        np.testing.assert_allclose((x * x).numpy(), a * a, rtol=1e-6)
    # the graph frontend and gradients on numpy:0 as well
    f = od.function(lambda t: od.sum(od.relu(t) * t))
    a = _f32(3, 4, seed=6)
    np.testing.assert_allclose(f(od.tensor(a)).numpy(), np.sum(np.maximum(a, 0) * a), rtol=1e-5)
    w = od.tensor(a)
    with od.GradientTape() as tape:
        tape.watch(w)
        loss = od.sum(w * w)
    np.testing.assert_allclose(tape.gradient(loss, w).numpy(), 2 * a, rtol=1e-6)
    # every faulty device is missing, with a reason; the working plugins' devices are there
    devs = set(od.devices())
    for name in ("exitprobe", "baseprobe", "hangprobe", "unknownhook", "hooksig"):
        assert od.Device(f"{name}:0") not in devs
    assert {od.Device(f"{n}:0") for n in ("twin", "badsupports", "wrongshape", "retnone")} <= devs


def test_the_cli_lists_every_faulty_plugin_with_its_reason(installed, capsys):
    from opdispatch.cli import main

    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    for fragment in ("'My Backend' is not allowed", "SystemExit", "ProbeAbort", "did not answer within",
                     "belongs to the distribution 'opdispatch-numpy'", "already provided by", "opdispatch_bogus_hook",
                     "priority 0", "conv3d"):
        assert fragment in out, fragment


# --------------------------------------------------------------------------------------------
# a hanging probe


def _hang_module():
    return importlib.import_module("opdispatch_fault_hang_probe")


def test_a_hanging_probe_stalls_no_op_on_another_backend(installed):
    hang = _hang_module()
    start = time.monotonic()
    reg = od_registry.reload()  # a fresh registry: the probe starts (and hangs) again
    reg.start_probes(["hangprobe"])
    probe = reg._probes["hangprobe"]
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(3):
                _numpy_ops_work()
        except BaseException as exc:  # noqa: B036 -- reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    work()
    for t in threads:
        t.join(timeout=30)
    elapsed = time.monotonic() - start
    assert not errors, errors
    # all of that ran while the probe hung: it has not answered, and its deadline has not come
    assert hang.ENTERED.is_set() and not hang.ANSWERED.is_set()
    assert not probe.settled.is_set() and elapsed < TIMEOUT, elapsed
    assert reg.has_device(NUMPY) and not reg.has_device(od.Device("reference:0"))
    assert reg.has_device(od.Device("reference:0"), hidden=True) and not probe.settled.is_set()
    # a lookup of the hung backend's device waits for its own probe only, then says why
    with pytest.raises(od.DeviceError, match=f"hangprobe.*unavailable.*did not answer within {TIMEOUT:g} s"):
        od.tensor([1.0], dtype="float32", device="hangprobe:0")
    assert time.monotonic() - start >= TIMEOUT - 0.05
    st = od.backends()["hangprobe"]
    assert st.status == "unavailable" and st.reason == f"device probe did not answer within {TIMEOUT:g} s"
    assert od.Device("hangprobe:0") not in od.devices()


def test_an_answer_after_the_timeout_is_not_used(installed):
    hang = _hang_module()
    assert od.backends()["hangprobe"].status == "unavailable"
    hang.RELEASE.set()  # the hung probe answers now, too late
    assert hang.ANSWERED.wait(10)
    probe = od_registry.registry()._probes["hangprobe"]
    assert probe.thread is not None
    probe.thread.join(10)
    st = od.backends()["hangprobe"]
    assert st.status == "unavailable" and st.devices == ()
    assert st.reason.startswith(f"device probe did not answer within {TIMEOUT:g} s (it answered")
    assert "too late" in st.reason
    assert od.Device("hangprobe:0") not in od.devices()


def _fresh_python(code: str, target: Path, timeout_s: float, *args: str, **kw):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(target), *filter(None, [env.get("PYTHONPATH")])])
    env[PROBE_TIMEOUT_ENV] = str(timeout_s)
    return subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=str(target), **kw)


def test_a_fresh_process_runs_numpy_ops_at_once_and_exits(installed):
    """First use in a fresh interpreter with every faulty plugin installed: sys.exit() at import ends
    nothing, the first numpy:0 op does not wait for the hanging probe, and the process exits."""
    code = (
        "import time; t0 = time.monotonic()\n"
        "import numpy as np, opdispatch as od\n"
        "y = od.relu(od.tensor(np.array([-1.0, 2.0], dtype='float32')))\n"
        "print('FIRST', time.monotonic() - t0, y.numpy().tolist(), y.device)\n"
        "b = od.backends()\n"
        "print('BACKENDS', time.monotonic() - t0)\n"
        "for name in sorted(b):\n"
        "    print('STATUS', name.split(' ')[0], b[name].status)\n"
    )
    start = time.monotonic()
    proc = _fresh_python(code, installed, 3.0)
    out, err = proc.communicate(timeout=60)
    total = time.monotonic() - start
    assert proc.returncode == 0, err
    lines = out.splitlines()
    first = next(line for line in lines if line.startswith("FIRST")).split(" ", 2)
    assert float(first[1]) < 3.0 and first[2] == "[0.0, 2.0] numpy:0", first
    assert 3.0 - 0.5 < float(next(line for line in lines if line.startswith("BACKENDS")).split()[1]) < 10
    statuses = {tuple(line.split()[1:]) for line in lines if line.startswith("STATUS")}
    assert {("numpy", "loaded"), ("hangprobe", "unavailable"), ("fault_exit_import", "failed"),
            ("exitprobe", "failed"), ("twin", "loaded"), ("numpy", "failed")} <= statuses
    assert total < 30


def test_ctrl_c_interrupts_a_wait_for_a_hanging_probe(installed):
    code = (
        "import sys, numpy as np, opdispatch as od\n"
        "od.relu(od.tensor(np.ones(2, dtype='float32')))\n"
        "print('WAITING', flush=True)\n"
        "try:\n"
        "    od.backends()\n"
        "except KeyboardInterrupt:\n"
        "    print('INTERRUPTED', flush=True)\n"
        "    raise\n"
        "print('NOT INTERRUPTED', flush=True)\n"
    )
    proc = _fresh_python(code, installed, 60.0)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "WAITING"
        time.sleep(0.3)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        assert proc.stdout.readline().strip() == "INTERRUPTED"
        assert time.monotonic() - sent < 5
        # at exit the probe in flight is waited for until its deadline; another Ctrl-C ends that too
        while proc.poll() is None and time.monotonic() - sent < 15:
            proc.send_signal(signal.SIGINT)
            time.sleep(0.3)
        assert proc.poll() is not None, "the process did not end after Ctrl-C"
        assert proc.returncode != 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


EXIT_WAIT = """
import sys, time
from pathlib import Path
import numpy as np
import opdispatch as od
from opdispatch import registry
from opdispatch.backend import BackendInfo, DeviceInfo

class Slow:
    @od.hookimpl
    def opdispatch_backend_info(self):
        return BackendInfo(name="slow")

    @od.hookimpl
    def opdispatch_devices(self):
        time.sleep(0.5)
        Path(sys.argv[1]).write_text("answered")
        return [DeviceInfo(index=0)]

    @od.hookimpl
    def opdispatch_kernels(self):
        return []

    @od.hookimpl
    def opdispatch_from_numpy(self, array, device):
        return array

    @od.hookimpl
    def opdispatch_to_numpy(self, data, device):
        return data

class EntryPoint:
    name, value, group, dist = "slow", "slow_plugin", "opdispatch.backends", None

    def load(self):
        return Slow()

found = registry.entry_points
registry.entry_points = lambda group: found(group) + ([EntryPoint()] if group == "opdispatch.backends" else [])
registry.registry().start_probes(["slow"])  # probes start when needed: this one is needed now
print(od.relu(od.tensor(np.ones(2, dtype="float32"))).numpy().tolist())  # numpy:0 at once; slow:0 probing
"""


def test_import_starts_no_thread_and_each_probe_starts_when_its_devices_are_needed():
    code = ("import threading, numpy as np, opdispatch as od, opdispatch.registry as r\n"
            "assert threading.active_count() == 1 and r._REGISTRY is None\n"
            "reg = r.registry()\n"
            "assert threading.active_count() == 1 and not reg._probes\n"  # loading the plugins probes nothing
            "od.relu(od.tensor(np.ones(2, dtype='float32')))\n"
            "print('FIRST', ' '.join(sorted(reg._probes)))\n"
            "od.devices()\n"
            "assert all(p.thread.name == 'opdispatch-probe-' + n for n, p in reg._probes.items())\n"
            "print('ALL', ' '.join(sorted(reg._probes)))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines())
    assert lines["FIRST"].split() == ["numpy"]  # numpy:0's own probe only: not opencl's, cupy's, reference's
    assert {"numpy", "reference", "opencl", "cupy"} <= set(lines["ALL"].split())


def test_the_interpreter_exits_after_the_probes_in_flight(tmp_path):
    """A probe still running at exit is waited for (until its deadline): a daemon thread coming back
    from a GPU or OpenCL runtime while the interpreter shuts down would abort the process."""
    marker = tmp_path / "answered"
    env = {**os.environ, PROBE_TIMEOUT_ENV: "10"}
    proc = subprocess.run([sys.executable, "-c", EXIT_WAIT, str(marker)], capture_output=True, text=True,
                          env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[1.0, 1.0]"
    assert marker.read_text() == "answered"


# --------------------------------------------------------------------------------------------
# exits and interrupts


def test_sys_exit_at_import_is_that_plugins_failure(installed):
    st = _from(od.backends(), "opdispatch-fault-exit-import")
    assert st.name == "fault_exit_import"  # reported under its entry point's name: it never said its own
    assert "SystemExit: opdispatch-fault-exit-import: giving up at import" in st.reason


def _interrupt(*args: object) -> None:
    raise KeyboardInterrupt


def _interrupting(hook: str) -> object:
    plugin = make_plugin("ctrlc", [])
    setattr(type(plugin), hook, od.hookimpl(_interrupt))
    return plugin


def test_a_keyboard_interrupt_while_loading_a_plugin_propagates():
    with pytest.raises(KeyboardInterrupt):
        Registry().add_plugin(_interrupting("opdispatch_backend_info"))

    class Provider:
        @od.hookimpl
        def opdispatch_provider_info(self):
            raise KeyboardInterrupt

        @od.hookimpl
        def opdispatch_provider_kernels(self):
            return []

    with pytest.raises(KeyboardInterrupt):
        Registry().add_plugin(Provider())


def test_a_keyboard_interrupt_while_importing_a_plugin_propagates(monkeypatch):
    class Interrupting:
        name, value, group, dist = "ctrlc", "ctrlc_plugin", "opdispatch.backends", None

        def load(self):
            raise KeyboardInterrupt

    monkeypatch.setattr(od_registry, "entry_points", lambda group: [Interrupting()] if "backends" in group else [])
    with pytest.raises(KeyboardInterrupt):
        Registry().load_entry_points()


def test_a_keyboard_interrupt_raised_by_a_probe_is_that_plugins_failure():
    """A probe runs in a thread of its own, which the user's Ctrl-C never reaches: a KeyboardInterrupt
    raised there is the plugin's own doing."""
    st = Registry().add_plugin(_interrupting("opdispatch_devices"))
    assert st.status == "failed" and "device probe" in st.reason and "KeyboardInterrupt" in st.reason


def test_a_system_exit_in_any_hook_is_that_plugins_failure():
    plugin = make_plugin("exits", [])
    type(plugin).opdispatch_kernels = od.hookimpl(lambda self: sys.exit(2))
    reg = Registry()
    st = reg.add_plugin(plugin)
    assert st.status == "failed" and "SystemExit: 2" in st.reason
    assert reg.status("reference").status == "loaded"


# --------------------------------------------------------------------------------------------
# names: the in-tree ones are protected, conflicts resolve the same way whatever the order


def _order(monkeypatch, reverse: bool) -> dict:
    """Load the installed plugins (not the hanging one) in entry-point name order, or reversed, into
    a private registry; name -> (status, origin) of the plugins that claim numpy or twin."""
    original = od_registry.entry_points

    def eps(group):
        found = [ep for ep in original(group) if ep.name != "fault_hang_probe"]
        return found[::-1] if reverse else found

    monkeypatch.setattr(od_registry, "entry_points", eps)
    reg = Registry()
    reg.load_entry_points()
    return {name: (st.status, st.origin, st.reason) for name, st in reg.backends().items()
            if name.split(" ")[0] in ("numpy", "twin")}


def test_name_conflicts_resolve_the_same_way_whatever_the_entry_point_order(installed, monkeypatch):
    forward, backward = _order(monkeypatch, False), _order(monkeypatch, True)
    assert forward == backward
    assert forward["numpy"][0] == "loaded" and "(from opdispatch-numpy " in forward["numpy"][1]
    assert forward["twin"][0] == "loaded" and "(from opdispatch-fault-twin-a " in forward["twin"][1]
    assert len(forward) == 4  # the hijacker and the duplicate twin are reported too, failed
    assert sorted(s for s, _, _ in forward.values()) == ["failed", "failed", "loaded", "loaded"]


def test_the_kept_plugins_run_their_own_kernels(installed):
    a = _f32(5, seed=7)
    np.testing.assert_allclose(od.relu(od.tensor(a)).numpy(), np.maximum(a, 0))  # not the hijacker's -1
    assert od.device_info("numpy:0").name == "CPU (NumPy; float16 computed in float32)"
    assert od.device_info("twin:0").name == "twin A"
    np.testing.assert_allclose(od.relu(od.tensor(a, device="twin:0")).numpy(), np.maximum(a, 0))  # not B's -2


def test_a_run_time_plugin_cannot_take_an_in_tree_name():
    reg = Registry()
    for name in ("numpy", "opencl", "cupy", "reference"):
        st = reg.add_plugin(make_plugin(name, []))
        assert st.status == "failed", st
        assert f"belongs to the distribution {RESERVED_NAMES[name]!r}" in st.reason
        assert "no installed distribution" in st.reason
    assert reg.status("reference").status == "loaded"

    class Hijacker:
        @od.hookimpl
        def opdispatch_provider_info(self):
            return ProviderInfo(name="numpy", priority=5)

        @od.hookimpl
        def opdispatch_provider_kernels(self):
            return []

    reg.add_plugin(Hijacker())
    st = reg.providers()["numpy"]
    assert st.status == "failed" and "provider name 'numpy' belongs to" in st.reason


def test_an_in_tree_backend_registered_at_run_time_keeps_its_name():
    import opdispatch_numpy.plugin as numpy_plugin

    st = Registry().add_plugin(numpy_plugin, name="numpy")  # its module comes from opdispatch-numpy
    assert st.status == "loaded" and st.devices == (NUMPY,)


# --------------------------------------------------------------------------------------------
# kernels that misbehave: a raising supports(), wrong outputs (the conformance suite fails them)


def test_a_raising_supports_is_a_kernel_error_naming_op_and_plugin(installed):
    x = od.tensor(_f32(3, seed=8), device="badsupports:0")
    with pytest.raises(od.KernelError, match=r"relu: supports\(\) of the relu kernel of 'badsupports' raised "
                                             r"ZeroDivisionError"):
        od.relu(x)
    _numpy_ops_work()


OUTPUT_FAULTS = [
    ("badsupports", r"raised KernelError: relu: supports\(\) of the relu kernel of 'badsupports' raised "
                    r"ZeroDivisionError"),
    # dispatch checks every kernel result against the inferred shape and dtype before it becomes a tensor
    ("wrongshape", r"the kernel of backend 'wrongshape' on wrongshape:0 returned its output of shape \(1,\)"),
    ("wrongdtype", r"returned its output of shape \([^)]*\) and dtype float64; the schema inferred .* float32"),
    ("retnone", r"returned NoneType as its output"),
    ("retlist", r"returned list as its output"),
    ("rettuple", r"returned tuple as its output"),
]


@pytest.fixture(scope="module")
def relu_cases(installed):
    from opdispatch_conformance.suite import collect_cases

    return collect_cases(["relu"], random_per_op=2, onnx=False)


@pytest.mark.parametrize("backend, message", OUTPUT_FAULTS, ids=[b for b, _ in OUTPUT_FAULTS])
def test_the_conformance_suite_fails_every_row_of_a_misbehaving_kernel(installed, relu_cases, backend, message):
    import re

    from opdispatch_conformance.suite import run_device

    record = run_device(od.Device(f"{backend}:0"), relu_cases, dtypes=["float32"], gradients="no", out=None)
    results = record["results"]
    assert results and all(r.status == "failed" for r in results), [(r.case, r.status) for r in results]
    assert all(re.search(message, r.message) for r in results), {r.message for r in results}
    # and the same cases pass on numpy:0 and on the kept twin
    for dev in ("numpy:0", "twin:0"):
        ok = run_device(od.Device(dev), relu_cases, dtypes=["float32"], gradients="no", out=None)["results"]
        assert ok and all(r.status == "passed" for r in ok), [(r.case, r.message) for r in ok if r.status != "passed"]


# --------------------------------------------------------------------------------------------
# the timeout setting


def test_the_probe_timeout_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv(PROBE_TIMEOUT_ENV, "0.25")
    assert od_registry.probe_timeout() == 0.25
    monkeypatch.delenv(PROBE_TIMEOUT_ENV)
    monkeypatch.setattr(od_registry, "PROBE_TIMEOUT", 7.0)
    assert od_registry.probe_timeout() == 7.0
    for bad in ("soon", "0", "-3", "inf", "nan"):
        monkeypatch.setenv(PROBE_TIMEOUT_ENV, bad)
        with pytest.warns(RuntimeWarning, match=PROBE_TIMEOUT_ENV):
            assert od_registry.probe_timeout() == 7.0


def test_a_slow_run_time_probe_times_out_alone(monkeypatch):
    monkeypatch.delenv(PROBE_TIMEOUT_ENV, raising=False)
    monkeypatch.setattr(od_registry, "PROBE_TIMEOUT", 0.2)
    release = threading.Event()

    def slow():
        release.wait(30)
        return [DeviceInfo(index=0)]

    reg = Registry()
    try:
        start = time.monotonic()
        st = reg.add_plugin(make_plugin("slow", [], devices=slow))
        assert 0.15 < time.monotonic() - start < 5
        assert st.status == "unavailable" and st.reason == "device probe did not answer within 0.2 s"
        assert reg.add_plugin(make_plugin("quick", [])).status == "loaded"
        assert od.Device("quick:0") in reg.devices() and od.Device("slow:0") not in reg.devices()
    finally:
        release.set()


def test_backend_info_is_not_a_probe():
    """Loading (identity, kernels) stays synchronous: a plugin whose backend_info is slow is slow to
    load, but it is still loaded in the caller's thread."""
    seen = []
    plugin = make_plugin("where", [])
    type(plugin).opdispatch_backend_info = od.hookimpl(
        lambda self: seen.append(threading.current_thread()) or BackendInfo(name="where"))
    assert Registry().add_plugin(plugin).status == "loaded"
    assert seen == [threading.current_thread()]


# --------------------------------------------------------------------------------------------
# the device alias 'cpu' names no backend; a probe publishes its own backend's devices only


def test_the_cpu_alias_still_means_numpy_0_with_a_cpu_plugin_installed(installed):
    st = od.backends()["cpu"]  # reported under its entry point's name, failed
    assert st.status == "failed" and "(from opdispatch-fault-cpu-name " in st.origin and st.devices == ()
    assert od.Device("cpu") == NUMPY
    a = _f32(6, seed=9)
    x = od.tensor(a, device="cpu")
    assert x.device == NUMPY
    np.testing.assert_allclose(od.relu(x).numpy(), np.maximum(a, 0))  # NumPy's relu, not the plugin's -3
    with od.device("cpu"):
        assert od.relu(od.tensor(a)).device == NUMPY
    assert not [d for d in od.devices() if d.backend == "cpu"]
    assert od.tensor(a, device="cpu:0").device == NUMPY  # what the plugin tried to publish
    with pytest.raises(od.DeviceError, match=r"allowed: 'cpu' or 'cpu:0' \(the alias of numpy:0; no backend is named "
                                             r"'cpu'\)"):
        od.tensor(a, device="cpu:1")


def test_a_run_time_plugin_cannot_take_the_cpu_alias():
    reg = Registry()
    st = reg.add_plugin(make_plugin("cpu", []))
    assert st.status == "failed", st
    assert "backend name 'cpu' is not allowed: the device string 'cpu' is an alias of numpy:0" in st.reason
    assert "allowed: lowercase letters" in st.reason
    assert od.Device("cpu:0") == NUMPY  # no device string reaches a backend named cpu

    class CpuProvider:
        @od.hookimpl
        def opdispatch_provider_info(self):
            return ProviderInfo(name="cpu", priority=5)

        @od.hookimpl
        def opdispatch_provider_kernels(self):
            return []

    class CpuKernels:
        @od.hookimpl
        def opdispatch_provider_info(self):
            return ProviderInfo(name="cpukernels", priority=5)

        @od.hookimpl
        def opdispatch_provider_kernels(self):
            return [od.Kernel("relu", lambda x: x, backend="cpu")]

    reg.add_plugin(CpuProvider())
    reg.add_plugin(CpuKernels())
    providers = reg.providers()
    assert providers["CpuProvider"].status == "failed"  # reported under its label: it never got a name
    assert "provider name 'cpu' is not allowed" in providers["CpuProvider"].reason
    assert providers["cpukernels"].status == "failed"
    assert "kernel for 'relu': backend name 'cpu' is not allowed: the device string 'cpu' is an alias of " \
           "numpy:0" in providers["cpukernels"].reason


def test_a_probe_answering_with_another_backends_device_fails_its_backend(installed):
    st = _from(od.backends(), "opdispatch-fault-foreign-device")
    assert st.name == "foreigndev" and st.devices == ()
    devs = od.devices()
    assert od.Device("numpy:3") not in devs and od.Device("foreigndev:0") not in devs  # none of its devices
    assert od.backends()["numpy"].devices == (NUMPY,)
    with pytest.raises(od.DeviceError, match=r"device numpy:3: backend 'numpy' has devices \['numpy:0'\]"):
        od.tensor([1.0], dtype="float32", device="numpy:3")
    with pytest.raises(od.DeviceError, match=r"backend 'foreigndev' is failed: .*a device of backend 'numpy'"):
        od.tensor([1.0], dtype="float32", device="foreigndev:0")
    _numpy_ops_work()


@pytest.mark.parametrize("answer, owner", [
    (lambda: [DeviceInfo(index=0), od.Device("numpy:3")], "numpy"),
    (lambda: [od.Device("bar:0")], "bar"),
    (lambda: ["bar:1"], "bar"),
], ids=["numpy-device", "bar-device", "bar-string"])
def test_a_run_time_probe_may_publish_only_its_own_backends_devices(answer, owner):
    reg = Registry()
    st = reg.add_plugin(make_plugin("foo", [], devices=answer))
    assert st.status == "failed" and st.devices == (), st
    assert f"a device of backend {owner!r}; backend 'foo' may publish only its own devices: DeviceInfo(index=N) " \
           f"becomes foo:N" in st.reason
    assert reg.devices(hidden=True) == [od.Device("reference:0")]  # nothing of foo's answer is published


def test_a_probe_naming_its_own_backend_is_still_only_a_bad_answer():
    st = Registry().add_plugin(make_plugin("foo", [], devices=lambda: [od.Device("foo:0")]))
    assert st.status == "failed" and "returned Device('foo:0'); allowed: DeviceInfo with an index >= 0" in st.reason


# --------------------------------------------------------------------------------------------
# probes start when their devices are needed


def test_a_device_lookup_starts_its_own_backends_probe_only(installed):
    reg = od_registry.reload()
    assert reg.probe_state("slowprobe") == reg.probe_state("hangprobe") == "not started"
    _numpy_ops_work()
    assert reg.probe_state("numpy") == "answered"
    for name in ("slowprobe", "hangprobe", "twin", "opencl", "cupy"):
        assert reg.probe_state(name) in ("not started", "none"), name  # "none": not installed here
    assert reg.probe_state("slowprobe") == "not started" and reg.probe_state("fault_exit_import") == "none"
    assert reg.has_device(od.Device("slowprobe:0"))  # starts slowprobe's probe, waits for it
    assert reg.probe_state("slowprobe") == "answered" and reg.probe_state("hangprobe") == "not started"
    x = od.tensor(_f32(4, seed=10), device="twin:0")  # a lookup (runtime) starts twin's
    assert x.device == od.Device("twin:0") and reg.probe_state("twin") == "answered"
    assert reg.probe_state("hangprobe") == "not started"
    reg.start_probes(["hangprobe"])  # without waiting for it
    released = _hang_module().RELEASE.is_set()  # once an earlier test released it, it answers at once
    assert reg.probe_state("hangprobe") in (("running", "answered") if released else ("running",))
    assert reg._probes["hangprobe"].thread.name == "opdispatch-probe-hangprobe"


def test_running_on_numpy_0_starts_no_other_probe_and_devices_starts_them_all(installed):
    """In a fresh process with every faulty plugin installed: an op on numpy:0 neither waits for nor
    starts the probes of the other backends (the hanging one, the slow one, OpenCL, CuPy);
    od.devices() starts them all and waits for them."""
    code = (
        "import time; t0 = time.monotonic()\n"
        "import numpy as np, opdispatch as od\n"
        "from opdispatch import registry as r\n"
        "y = od.add(od.tensor(np.ones(2, dtype='float32')), od.tensor(np.ones(2, dtype='float32')))\n"
        "first = time.monotonic() - t0\n"
        "import opdispatch_fault_hang_probe as hang, opdispatch_fault_slow_probe as slow\n"
        "reg = r.registry()\n"
        "print('FIRST', first, y.numpy().tolist())\n"
        "print('PROBES', *sorted(reg._probes))\n"
        "print('ENTERED', hang.ENTERED.is_set(), slow.ENTERED.is_set())\n"
        "t1 = time.monotonic()\n"
        "devs = [str(d) for d in od.devices()]\n"
        "print('DEVICES', time.monotonic() - t1, 'slowprobe:0' in devs, hang.ENTERED.is_set(), slow.ANSWERED.is_set(),"
        " reg.probe_state('hangprobe'))\n"
    )
    proc = _fresh_python(code, installed, 3.0)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    lines = dict(line.split(" ", 1) for line in out.splitlines())
    first, result = lines["FIRST"].split(" ", 1)
    assert float(first) < 3.0 and result == "[2.0, 2.0]"
    assert lines["PROBES"].split() == ["numpy"]
    assert lines["ENTERED"] == "False False"
    waited, *rest = lines["DEVICES"].split()
    assert 3.0 - 0.5 < float(waited) < 10 and rest == ["True", "True", "True", "timed", "out"], lines["DEVICES"]


def test_a_fallback_to_numpy_0_waits_for_no_other_probe(installed):
    """An op that falls back (fallback='warn') from a device without its kernel runs on numpy:0 without
    starting the probes of the other backends (the hanging one would hold it for its whole timeout)."""
    code = (
        "import time, warnings\n"
        "import numpy as np, opdispatch as od\n"
        "from opdispatch.backend import BackendInfo, DeviceInfo, Kernel\n"
        "import opdispatch_fault_hang_probe as hang\n"
        "class Few:\n"
        "    @od.hookimpl\n"
        "    def opdispatch_backend_info(self): return BackendInfo(name='few')\n"
        "    @od.hookimpl\n"
        "    def opdispatch_devices(self): return [DeviceInfo(index=0)]\n"
        "    @od.hookimpl\n"
        "    def opdispatch_kernels(self): return [Kernel('neg', np.negative)]\n"
        "    @od.hookimpl\n"
        "    def opdispatch_from_numpy(self, array, device): return np.array(array)\n"
        "    @od.hookimpl\n"
        "    def opdispatch_to_numpy(self, data, device): return np.asarray(data)\n"
        "od.register_plugin(Few())\n"
        "x = od.tensor(np.array([-1.0, 2.0], np.float32), device='few:0')\n"
        "t0 = time.monotonic()\n"
        "with warnings.catch_warnings(record=True) as seen, od.device(None, fallback='warn'):\n"
        "    warnings.simplefilter('always')\n"
        "    y = od.relu(x)\n"
        "print('RELU', time.monotonic() - t0, y.device, y.numpy().tolist(), len(seen), hang.ENTERED.is_set())\n"
    )
    proc = _fresh_python(code, installed, 5.0)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    took, device, *rest = out.split("RELU ", 1)[1].split()
    assert float(took) < 4.0 and device == "few:0" and " ".join(rest) == "[0.0, 2.0] 1 False", out


# --------------------------------------------------------------------------------------------
# fork: the child has none of the parent's threads (probes, lock holders)

FORK = """
import contextlib, multiprocessing, os, sys, threading, time
import numpy as np
import opdispatch as od
from opdispatch import registry as r
import opdispatch_fault_slow_probe as slow

scenario = sys.argv[1]
r.FORK_LOCK_WAIT = 0.3
reg = r.registry()
od.relu(od.tensor(np.ones(2, dtype="float32")))  # numpy:0 works; slowprobe's probe not started
reg.start_probes(["slowprobe"])
assert slow.ENTERED.wait(10)
reg.start_probes()  # and every other probe: all in flight at the fork


def in_child():
    t0 = time.monotonic()
    devs = [str(d) for d in od.devices()]
    y = od.add(od.tensor(np.ones(2, dtype="float32")), od.tensor(np.ones(2, dtype="float32"))).numpy().tolist()
    if scenario == "held":
        r.reload()  # takes _INIT_LOCK, then probes again (the probe threads take _IN_FLIGHT_LOCK)
    again = [str(d) for d in od.devices()]
    return f"{os.getpid()} {time.monotonic() - t0:.2f} {'slowprobe:0' in devs} {'slowprobe:0' in again} {y == [2, 2]}"


if scenario == "pool":
    with multiprocessing.get_context("fork").Pool(1) as pool:
        print("CHILD", pool.apply_async(in_child).get(timeout=40), flush=True)
    pids = []
else:
    release = threading.Event()
    if scenario == "held":  # another thread holds every registry lock across the fork
        held = threading.Event()

        def hold():
            with r._INIT_LOCK, reg._lock, r._IN_FLIGHT_LOCK:
                held.set()
                release.wait(60)

        threading.Thread(target=hold, daemon=True).start()
        assert held.wait(10)
    print("RUNNING", slow.ENTERED.is_set() and not slow.ANSWERED.is_set(), flush=True)
    t0 = time.monotonic()
    # "probing": the forking thread itself holds the registry lock, which the child must release as usual
    with contextlib.nullcontext() if scenario == "held" else reg._lock:
        pid = os.fork()
    if pid == 0:
        try:
            print("CHILD", in_child(), flush=True)
        finally:
            os._exit(0)
    pids = [pid]
    print("FORKED", f"{time.monotonic() - t0:.2f}", flush=True)
    release.set()
for pid in pids:
    deadline = time.monotonic() + 40
    while os.waitpid(pid, os.WNOHANG) == (0, 0):
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            print("CHILD STUCK", flush=True)
            break
        time.sleep(0.05)
print("PARENT", "slowprobe:0" in [str(d) for d in od.devices()], flush=True)
"""


@pytest.mark.parametrize("scenario", ["probing", "held", "pool"])
def test_a_forked_child_probes_again_and_never_waits_on_the_parents_threads(installed, tmp_path, scenario):
    """Fork while slowprobe's probe runs ("probing": the forking thread holds the registry lock; "held":
    another thread holds every registry lock; "pool": a multiprocessing pool, fork start method): in
    the child, od.devices() finishes in bounded time and lists slowprobe:0, probed again by the
    child itself, and numpy:0 works; the parent's own probe answers as usual."""
    marker = tmp_path / "probed-by"
    env = {"OPDISPATCH_FAULT_SLOW_PROBE_S": "0.8", "OPDISPATCH_FAULT_SLOW_PROBE_MARKER": str(marker)}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        proc = _fresh_python(FORK, installed, 2.0, scenario)
    try:
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    lines = out.splitlines()
    assert "CHILD STUCK" not in lines, (out, err)
    children = [line.split()[1:] for line in lines if line.startswith("CHILD ")]
    assert len(children) == 1, (out, err)
    child, took, *answers = children[0]
    # every probe of the child (the hanging one up to its 2 s deadline, twice when "held"), bounded
    assert float(took) < 10 and answers == ["True", "True", "True"], (out, err)
    if scenario != "pool":
        assert "RUNNING True" in lines  # the fork came while the parent's probe ran
        forked = float(next(line for line in lines if line.startswith("FORKED")).split()[1])
        assert forked < (3 * 0.3 + 2 if scenario == "held" else 1)  # a held lock delays a fork boundedly
    assert "PARENT True" in lines
    probed_by = marker.read_text().split()  # the parent once, the child again (twice when "held": reload)
    assert sorted(probed_by) == sorted([str(proc.pid)] + [child] * (2 if scenario == "held" else 1)), probed_by
