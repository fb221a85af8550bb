"""Kernel providers registered in-process: validation, targets, priorities over existing tensors,
``supports()`` failures, and static limits checked once per call signature (the pip-installed provider
is tested in test_providers.py)."""

from __future__ import annotations

import numpy as np
import pytest

import opdispatch as od
from fake_backends import make_plugin
from opdispatch.backend import Kernel, ProviderInfo

NUMPY = od.Device("numpy:0")


def test_a_broken_provider_fails_alone(clean_registry):
    class BadPriority:
        @od.hookimpl
        def opdispatch_provider_info(self):
            return ProviderInfo(name="zero", priority=0)

        @od.hookimpl
        def opdispatch_provider_kernels(self):
            return []

    class NoBackend:
        @od.hookimpl
        def opdispatch_provider_info(self):
            return ProviderInfo(name="nobackend")

        @od.hookimpl
        def opdispatch_provider_kernels(self):
            return [Kernel("relu", np.negative)]  # names no backend

    assert "priority 0 is not allowed" in od.register_plugin(BadPriority()).reason
    assert "names no backend" in od.register_plugin(NoBackend()).reason
    assert {r.provider for r in od.kernels(NUMPY, "relu")} == {"numpy"}
    assert od.relu(od.tensor(np.array([-1.0]))).numpy().tolist() == [0.0]


def test_a_provider_for_a_backend_that_is_not_installed_changes_nothing(clean_registry):
    class Elsewhere:
        @od.hookimpl
        def opdispatch_provider_info(self):
            return ProviderInfo(name="elsewhere")

        @od.hookimpl
        def opdispatch_provider_kernels(self):
            return [Kernel("relu", np.negative, backend="tpu")]

    assert od.register_plugin(Elsewhere()).status == "loaded"
    assert od.providers()["elsewhere"].targets == ("tpu",)
    assert {r.provider for r in od.kernels(NUMPY, "relu")} == {"numpy"}


def test_a_provider_registered_at_run_time_applies_to_existing_tensors(clean_registry):
    x = od.tensor(np.array([-1.0, 3.0], np.float32))
    seen = []

    def relu(a):
        seen.append(a.shape)
        return np.maximum(a, 0)

    class Late:
        @od.hookimpl
        def opdispatch_provider_info(self):
            return ProviderInfo(name="late", priority=7)

        @od.hookimpl
        def opdispatch_provider_kernels(self):
            return [Kernel("relu", relu, backend="numpy")]

    od.register_plugin(Late())
    assert od.relu(x).numpy().tolist() == [0.0, 3.0] and seen == [(2,)]


def test_a_supports_that_raises_is_a_kernel_error_naming_op_and_provider(clean_registry):
    def bad_supports(metas, attrs):
        return 1 / 0

    class Raising:
        @od.hookimpl
        def opdispatch_provider_info(self):
            return ProviderInfo(name="raising")

        @od.hookimpl
        def opdispatch_provider_kernels(self):
            return [Kernel("relu", np.negative, backend="numpy", supports=bad_supports)]

    od.register_plugin(Raising())
    with pytest.raises(od.KernelError, match="relu: supports.. of the relu kernel of 'raising' raised "
                                             "ZeroDivisionError"):
        od.relu(od.tensor(np.array([1.0])))


def test_static_limits_are_checked_once_per_signature_and_keep_the_fast_path(clean_registry):
    checked = []

    def limit(metas, attrs):
        checked.append(metas[0].shape)
        return None

    od.register_plugin(make_plugin("limited", [Kernel("add", np.add, supports=limit)]))
    a = od.tensor(np.ones(3), device="limited:0")
    for _ in range(5):
        od.add(a, a)
    assert checked == [(3,)]
    od.add(od.tensor(np.ones(4), device="limited:0"), od.tensor(np.ones(4), device="limited:0"))
    assert checked == [(3,), (4,)]


def _recording_provider(name: str, priority: int, ran: list):
    def relu(x):
        ran.append(name)
        return np.maximum(x, 0)

    class Provider:
        @od.hookimpl
        def opdispatch_provider_info(self):
            return ProviderInfo(name=name, priority=priority)

        @od.hookimpl
        def opdispatch_provider_kernels(self):
            return [Kernel("relu", relu, backend="numpy")]

    return Provider()


def test_compiled_graphs_follow_provider_changes_and_pins(clean_registry):
    ran: list[str] = []
    od.register_plugin(_recording_provider("alpha", 20, ran))
    od.register_plugin(_recording_provider("beta", 10, ran))
    x = od.tensor(np.array([-1.0, 2.0], np.float32))
    step = od.function(lambda x: od.relu(x) * 2.0)
    graph = step.graph(x)

    def who(run):
        ran.clear()
        run()
        return list(ran)

    assert who(lambda: step(x)) == ["alpha"] and who(lambda: graph(x)) == ["alpha"]
    od.disable_provider("alpha")
    assert who(lambda: step(x)) == ["beta"] and who(lambda: graph(x)) == ["beta"]
    od.enable_provider("alpha")
    with od.use_provider("beta"):
        assert who(lambda: step(x)) == ["beta"] and who(lambda: graph(x)) == ["beta"]
    assert who(lambda: step(x)) == ["alpha"] and who(lambda: graph(x)) == ["alpha"]


def test_use_provider_needs_a_known_name():
    with pytest.raises(od.InvalidArgumentError, match="use_provider: argument 'name' got 'nope'; allowed: a loaded"):
        od.use_provider("nope")


def test_providers_never_serve_the_hidden_reference_oracle(clean_registry):
    ran: list[str] = []

    class Evil:
        @od.hookimpl
        def opdispatch_provider_info(self):
            return ProviderInfo(name="evil", priority=10)

        @od.hookimpl
        def opdispatch_provider_kernels(self):
            return [Kernel("relu", lambda x: ran.append(1) or x, backend="reference")]

    od.register_plugin(Evil())
    assert [r.provider for r in od.kernels("reference:0", "relu")] == ["reference"]
    assert od.relu(od.tensor(np.array([-1.0]), device="reference:0")).numpy().tolist() == [0.0] and not ran


def test_kernels_of_an_unknown_op_is_an_error():
    with pytest.raises(od.InvalidArgumentError, match="unknown op 'nosuch'"):
        od.kernels(NUMPY, "nosuch")
