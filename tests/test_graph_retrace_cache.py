"""The signature cache of ``od.function`` is bounded: at most ``max_signatures`` traced signatures
(default 64), the least recently used dropped first and traced again when it comes back; the
`GraphRetraceWarning` still comes once, at the 8th trace."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import opdispatch as od
from opdispatch.graph.function import MAX_SIGNATURES, RETRACE_WARNING, GraphRetraceWarning


def counting(**options):
    """An od.function of (x, k) -> x * k and the list its traces append k to (tracing runs the
    Python function once; a cached signature runs the graph without it)."""
    traces: list = []

    def fn(x, k):
        traces.append(k)
        return x * k

    return od.function(fn, **options), traces


X = od.tensor(np.ones(3))


def test_the_least_recently_used_signature_is_evicted_and_traced_again():
    f, traces = counting(max_signatures=2)
    f(X, 1.0)
    f(X, 2.0)
    assert traces == [1.0, 2.0]
    f(X, 1.0)                      # a hit: 1.0 is now the most recently used
    assert traces == [1.0, 2.0]
    f(X, 3.0)                      # a third signature: 2.0, the least recently used, goes
    assert traces == [1.0, 2.0, 3.0]
    assert f(X, 1.0).numpy().tolist() == [1.0] * 3 and traces == [1.0, 2.0, 3.0]  # still cached
    assert f(X, 2.0).numpy().tolist() == [2.0] * 3                                  # evicted: traced again
    assert traces == [1.0, 2.0, 3.0, 2.0]
    f(X, 3.0)                      # ... which evicted 3.0 (1.0 was used after it)
    assert traces == [1.0, 2.0, 3.0, 2.0, 3.0]


def test_the_default_bound_is_64_signatures():
    assert MAX_SIGNATURES == 64
    f, traces = counting()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GraphRetraceWarning)
        for k in range(MAX_SIGNATURES + 1):
            f(X, float(k))
        assert len(traces) == MAX_SIGNATURES + 1
        f(X, float(MAX_SIGNATURES))  # the newest are all kept
        f(X, 1.0)
        assert len(traces) == MAX_SIGNATURES + 1
        f(X, 0.0)                    # the oldest was dropped
    assert len(traces) == MAX_SIGNATURES + 2 and traces[-1] == 0.0


def test_the_bound_is_set_per_function_and_as_a_decorator():
    @od.function(max_signatures=1)
    def g(x, k):
        return x + k

    g(X, 1)
    g(X, 2)
    assert g(X, 1).numpy().tolist() == [2.0] * 3
    h, traces = counting(max_signatures=1)
    h(X, 1.0)
    h(X, 1.0)
    h(X, 2.0)
    h(X, 1.0)
    assert traces == [1.0, 2.0, 1.0]


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, None, "64"])
def test_a_bad_bound_is_refused(bad):
    with pytest.raises(od.InvalidArgumentError, match="max_signatures.*allowed: an int >= 1"):
        od.function(lambda x: x, max_signatures=bad)


def test_the_retrace_warning_still_comes_once_at_the_8th_trace_even_with_a_small_bound():
    f, traces = counting(max_signatures=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(RETRACE_WARNING + 3):
            f(X, 0.5 * (i % 4))  # 4 signatures cycling through a cache of 2: every call traces
    retraces = [w for w in caught if issubclass(w.category, GraphRetraceWarning)]
    assert len(traces) == RETRACE_WARNING + 3
    assert len(retraces) == 1 and f"traced {RETRACE_WARNING} times" in str(retraces[0].message)
    assert retraces[0].filename == __file__


def _new_kernels():
    """Register a provider: the kernel tables change (the registry's generation moves on)."""
    class Provider:
        @od.hookimpl
        def opdispatch_provider_info(self):
            return od.ProviderInfo(name=f"p{len(seen)}")

        @od.hookimpl
        def opdispatch_provider_kernels(self):
            return [od.Kernel("relu", lambda x: np.maximum(x, 0), backend="numpy")]

    seen.append(od.register_plugin(Provider()))


seen: list = []


def test_compiled_plans_of_kernels_no_longer_in_force_are_dropped(clean_registry, tmp_path):
    """Each change of the kernel tables recompiles on the next call; the older plans are not kept."""
    step = od.function(lambda x: od.relu(x) + 1.0)
    step(X)
    step.graph(X).save(str(tmp_path / "g.odg"))
    loaded = od.load_graph(str(tmp_path / "g.odg"))
    loaded(X)
    for _ in range(3):
        _new_kernels()
        assert step(X).numpy().tolist() == [2.0, 2.0, 2.0] and loaded(X).numpy().tolist() == [2.0, 2.0, 2.0]
    (entry,) = step._cache.values()
    assert len(entry.lowered) == 1 and len(loaded._cache) == 1
