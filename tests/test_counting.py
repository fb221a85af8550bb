"""sum and mean of int and bool tensors, as NumPy gives them: ``(pred == labels).sum()`` is an int64
count and ``.mean()`` a float fraction, on every device, eager and graph."""

from __future__ import annotations

import numpy as np
import pytest

import opdispatch as od

DEVICES = [d for d in ("numpy:0", "opencl:0") if d in {str(x) for x in od.devices()}]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ["bool", "int32", "int64"])
def test_sum_and_mean_of_values_match_numpy(device: str, dtype: str) -> None:
    host = (np.random.default_rng(0).integers(-3, 4, size=(5, 7)) > 0).astype(dtype)
    t = od.tensor(host, device=device)
    for axis in (None, 0, 1):
        s = t.sum(axis=axis)
        assert s.dtype == np.int64 and s.device == od.Device(device)
        np.testing.assert_array_equal(s.numpy(), host.sum(axis=axis))
        np.testing.assert_array_equal(od.sum(t, axis=axis, keepdims=True).numpy(), host.sum(axis=axis, keepdims=True))
        m = od.mean(t, axis=axis)
        assert m.dtype.kind == "f"
        np.testing.assert_allclose(m.numpy(), host.mean(axis=axis), rtol=1e-12)
    if dtype == "bool":
        counted = od.function(lambda a: a.sum())(t)
    else:
        counted = od.function(lambda a: (a > 0).sum())(t)
    assert counted.item() == int((host > 0).sum())


def test_accuracy_idiom() -> None:
    logits = od.tensor(np.eye(4, dtype=np.float32)[[0, 1, 3, 2]])
    labels = od.tensor(np.array([0, 1, 2, 2]))
    assert (logits.argmax(axis=1) == labels).mean().item() == 0.75
    assert (logits.argmax(axis=1) == labels).sum().item() == 3
