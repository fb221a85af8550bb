"""adaptive_avg_pool2d against an independent NumPy formula (PyTorch's windows), eager / od.function /
GradientTape (finite differences), non-finite values staying in their windows, and its errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

import opdispatch as od
from opdispatch.errors import InvalidArgumentError, ShapeError


def naive(x, oh, ow):
    n, c, h, w = x.shape
    y = np.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            r0, r1 = math.floor(i * h / oh), math.ceil((i + 1) * h / oh)
            c0, c1 = math.floor(j * w / ow), math.ceil((j + 1) * w / ow)
            y[:, :, i, j] = x[:, :, r0:r1, c0:c1].sum(axis=(2, 3)) / ((r1 - r0) * (c1 - c0))
    return y


CASES = [((2, 3, 8, 6), (4, 3)), ((2, 3, 7, 5), (3, 2)), ((1, 2, 5, 5), 3), ((2, 3, 7, 6), (1, 1)),
         ((1, 2, 3, 4), (5, 7)), ((1, 2, 6, 7), (None, 3)), ((1, 2, 6, 7), (4, None)), ((1, 1, 1, 1), (2, 3)),
         ((2, 2, 13, 11), (7, 7)), ((1, 2, 9, 10), 1), ((3, 1, 10, 3), (3, 3))]


def _out(shape, size):
    size = (size, size) if isinstance(size, int) else size
    return tuple(shape[2 + a] if v is None else v for a, v in enumerate(size))


@pytest.mark.parametrize("shape,size", CASES)
def test_matches_numpy_formula_eager_and_graph(shape, size):
    x = np.random.default_rng(sum(shape)).standard_normal(shape)
    want = naive(x, *_out(shape, size))
    got = od.adaptive_avg_pool2d(x, size)
    assert got.shape == want.shape and got.dtype == np.float64
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(od.adaptive_avg_pool2d(x.astype(np.float32), size).numpy(), want, rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(od.function(lambda t: od.adaptive_avg_pool2d(t, size))(x).numpy(), want,
                               rtol=1e-12, atol=1e-14)


def test_global_pooling_is_the_spatial_mean():
    x = np.random.default_rng(1).standard_normal((2, 5, 7, 9))
    np.testing.assert_allclose(od.adaptive_avg_pool2d(x, (1, 1)).numpy(), x.mean(axis=(2, 3), keepdims=True),
                               rtol=1e-12)


@pytest.mark.parametrize("shape,size", [CASES[0], CASES[1], CASES[4], CASES[8], CASES[3]])
def test_gradient_matches_finite_differences_and_graph(shape, size):
    rng = np.random.default_rng(5)
    x = rng.standard_normal(shape)
    weight = rng.standard_normal((shape[0], shape[1]) + _out(shape, size))

    def loss(t):
        return od.sum(od.adaptive_avg_pool2d(t, size) * weight)

    xt = od.tensor(x)
    with od.GradientTape() as tape:
        tape.watch(xt)
        value = loss(xt)
    g = tape.gradient(value, xt).numpy()
    # the rule: each output's weight over its window's size, added to every element of its window
    want = np.zeros(shape)
    oh, ow = _out(shape, size)
    for i in range(oh):
        for j in range(ow):
            r0, r1 = math.floor(i * shape[2] / oh), math.ceil((i + 1) * shape[2] / oh)
            c0, c1 = math.floor(j * shape[3] / ow), math.ceil((j + 1) * shape[3] / ow)
            want[:, :, r0:r1, c0:c1] += weight[:, :, i:i + 1, j:j + 1] / ((r1 - r0) * (c1 - c0))
    np.testing.assert_allclose(g, want, rtol=1e-12, atol=1e-14)
    for k in rng.choice(x.size, size=5, replace=False):
        plus, minus = x.copy(), x.copy()
        plus.reshape(-1)[k] += 1e-6
        minus.reshape(-1)[k] -= 1e-6
        fd = (float(loss(plus)) - float(loss(minus))) / 2e-6
        assert abs(g.reshape(-1)[k] - fd) <= 1e-6 * max(1.0, abs(fd))

    @od.function
    def grad(t):
        with od.GradientTape() as tp:
            tp.watch(t)
            v = loss(t)
        return tp.gradient(v, t)

    np.testing.assert_allclose(grad(x).numpy(), g, rtol=1e-12, atol=1e-14)


def test_non_finite_values_stay_in_their_windows():
    x = np.zeros((1, 1, 7, 5))
    x[0, 0, 0, 0] = np.inf
    x[0, 0, 6, 4] = np.nan
    y = od.adaptive_avg_pool2d(x, (3, 2)).numpy()[0, 0]
    assert y[0, 0] == np.inf and np.isnan(y[2, 1])
    assert np.count_nonzero(np.isfinite(y)) == 4


def test_errors():
    x = np.zeros((1, 2, 4, 4), np.float32)
    for bad in (0, (0, 2), (2, -1), (2, 2, 2), 2.5, None, "2"):
        with pytest.raises(InvalidArgumentError, match="adaptive_avg_pool2d: argument 'output_size'"):
            od.adaptive_avg_pool2d(x, bad)
    with pytest.raises(ShapeError, match="adaptive_avg_pool2d: argument 'x'.*rank 4"):
        od.adaptive_avg_pool2d(np.zeros((2, 4, 4), np.float32), 2)
    with pytest.raises(ShapeError, match="argument 'x'"):
        od.adaptive_avg_pool2d(np.zeros((1, 2, 0, 4), np.float32), 2)


def test_empty_batch():
    assert od.adaptive_avg_pool2d(np.zeros((0, 3, 7, 5), np.float32), (3, 2)).shape == (0, 3, 3, 2)
