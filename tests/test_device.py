"""Device values and the device context (contextvars: nests, per thread, per asyncio task)."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

import opdispatch as od


def test_device_parses_prints_and_hashes():
    d = od.Device("opencl:1")
    assert (d.backend, d.index, str(d)) == ("opencl", 1, "opencl:1")
    assert od.Device("numpy") == od.Device("numpy", 0) == od.Device("cpu") == "numpy:0"
    assert len({od.Device("numpy:0"), od.Device("cpu"), od.Device("CPU:0"), od.Device(od.Device("numpy"))}) == 1
    with pytest.raises(od.DeviceError, match=r"got 'cpu:1'; allowed: 'cpu' or 'cpu:0' \(the alias of numpy:0; "
                                             r"no backend is named 'cpu'\)"):
        od.Device("cpu:1")
    assert repr(d) == "Device('opencl:1')"
    with pytest.raises(AttributeError):
        d.index = 3  # type: ignore[misc]


@pytest.mark.parametrize("spec", ["", "numpy:", "numpy:x", ":0", "nu mpy:0", "a:-1"])
def test_bad_device_strings_are_refused(spec):
    with pytest.raises(od.DeviceError, match="allowed"):
        od.Device(spec)


def test_default_device_is_numpy0():
    assert od.get_device() == od.Device("numpy:0")


def test_context_nests_and_restores():
    with od.device("numpy:0") as d:
        assert d == od.get_device() == od.Device("numpy:0")
        with od.device("cpu"):
            assert od.get_device() == "numpy:0"
        x = od.tensor([1.0, 2.0])
        assert x.device == "numpy:0"
    assert od.get_device() == "numpy:0"


def test_entering_an_unknown_device_fails_at_the_with_line_and_changes_nothing():
    with pytest.raises(od.DeviceError, match="no backend named 'nosuch'"):
        with od.device("nosuch:0"):
            pass  # pragma: no cover
    assert od.get_device() == "numpy:0"


def test_bad_fallback_policy_is_refused():
    with pytest.raises(od.InvalidArgumentError, match="fallback.*allowed"):
        od.device("numpy:0", fallback="sometimes")


def test_the_same_context_object_can_be_entered_twice(clean_registry):
    from fake_backends import make_mini

    od.register_plugin(make_mini(), name="mini")
    ctx = od.device("mini:1")
    with ctx:
        with ctx:
            assert od.get_device() == "mini:1"
        assert od.get_device() == "mini:1"
    assert od.get_device() == "numpy:0"


def test_context_is_per_thread(clean_registry):
    from fake_backends import make_mini

    od.register_plugin(make_mini(), name="mini")
    seen = {}
    entered = threading.Event()
    release = threading.Event()

    def worker():
        with od.device("mini:0"):
            entered.set()
            release.wait(5)
            seen["worker"] = od.get_device()

    t = threading.Thread(target=worker)
    t.start()
    entered.wait(5)
    seen["main"] = od.get_device()  # the worker's context does not leak here
    release.set()
    t.join()
    assert seen == {"worker": od.Device("mini:0"), "main": od.Device("numpy:0")}


def test_context_is_per_asyncio_task(clean_registry):
    from fake_backends import make_mini

    od.register_plugin(make_mini(), name="mini")

    async def task(spec, delay):
        with od.device(spec):
            await asyncio.sleep(delay)
            return str(od.get_device()), str(od.tensor(np.ones(2, np.float32)).device)

    async def main():
        return await asyncio.gather(task("mini:0", 0.02), task("mini:1", 0.0), task("numpy:0", 0.01))

    assert asyncio.run(main()) == [("mini:0", "mini:0"), ("mini:1", "mini:1"), ("numpy:0", "numpy:0")]
