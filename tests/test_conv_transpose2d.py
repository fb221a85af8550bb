"""conv_transpose2d against an independent NumPy loop (PyTorch's ConvTranspose2d formula), the adjoint
identity with conv2d, eager / od.function / GradientTape (finite differences), and its errors."""

from __future__ import annotations

import numpy as np
import pytest

import opdispatch as od
from opdispatch.errors import InvalidArgumentError, ShapeError


def naive(x, w, b, stride, padding, output_padding, dilation, groups):
    """Every (input pixel, tap) pair adds x * w at output row i*s + a*d - top (PyTorch's definition)."""
    n, c_in, h, wd = x.shape
    _, cog, kh, kw = w.shape
    (pt, pb), (pl, pr) = padding
    oh = (h - 1) * stride[0] - pt - pb + dilation[0] * (kh - 1) + output_padding[0] + 1
    ow = (wd - 1) * stride[1] - pl - pr + dilation[1] * (kw - 1) + output_padding[1] + 1
    y = np.zeros((n, cog * groups, oh, ow))
    cig = c_in // groups
    for c in range(c_in):
        for co in range(cog):
            for i in range(h):
                for j in range(wd):
                    for a in range(kh):
                        for q in range(kw):
                            r, s = i * stride[0] + a * dilation[0] - pt, j * stride[1] + q * dilation[1] - pl
                            if 0 <= r < oh and 0 <= s < ow:
                                y[:, (c // cig) * cog + co, r, s] += x[:, c, i, j] * w[c, co, a, q]
    return y if b is None else y + b.reshape(1, -1, 1, 1)


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _pads(p):
    if isinstance(p, int):
        return ((p, p), (p, p))
    if isinstance(p[0], int):
        return ((p[0], p[0]), (p[1], p[1]))
    return tuple(tuple(s) for s in p)


CASES = [  # x shape, w shape, bias, stride, padding, output_padding, dilation, groups
    ((2, 3, 5, 4), (3, 2, 3, 3), True, 2, 1, 1, 1, 1),
    ((1, 2, 3, 5), (2, 3, 2, 3), False, (3, 2), ((0, 2), (1, 0)), (2, 1), 1, 1),
    ((2, 4, 3, 3), (4, 3, 3, 2), True, 2, 1, 1, (2, 3), 2),               # groups and dilation
    ((1, 4, 4, 5), (4, 1, 3, 3), False, 1, 1, 0, 1, 4),                   # depthwise
    ((2, 2, 3, 3), (2, 1, 3, 2), True, 1, (1, 0), (2, 1), (3, 2), 2),     # output_padding >= stride, < dilation
    ((1, 2, 3, 3), (2, 2, 2, 2), False, 2, ((0, 0), (0, 0)), 1, 1, 1),    # zero rows appended (bottom < output_padding)
    ((1, 1, 1, 1), (1, 3, 1, 1), True, 1, 0, 0, 1, 1),
    ((3, 6, 2, 7), (6, 1, 4, 1), True, (1, 3), (2, 0), (0, 2), 1, 3),
]


@pytest.mark.parametrize("case", CASES)
def test_matches_numpy_loop_eager_and_graph(case):
    xs, ws, has_b, stride, padding, out_pad, dilation, groups = case
    rng = np.random.default_rng(sum(xs) + sum(ws))
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    b = rng.standard_normal(ws[1] * groups) if has_b else None
    attrs = {"stride": stride, "padding": padding, "output_padding": out_pad, "dilation": dilation, "groups": groups}
    want = naive(x, w, b, _pair(stride), _pads(padding), _pair(out_pad), _pair(dilation), groups)
    got = od.conv_transpose2d(x, w, b, **attrs)
    assert got.shape == want.shape and got.dtype == np.float64
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-12)
    f32 = od.conv_transpose2d(x.astype(np.float32), w.astype(np.float32),
                              None if b is None else b.astype(np.float32), **attrs)
    assert f32.dtype == np.float32
    np.testing.assert_allclose(f32.numpy(), want, rtol=1e-4, atol=1e-4)
    graph = od.function(lambda x, w: od.conv_transpose2d(x, w, b, **attrs))
    np.testing.assert_allclose(graph(x, w).numpy(), want, rtol=1e-12, atol=1e-12)


def test_is_the_adjoint_of_conv2d():
    """<conv2d(u, w), x> == <u, conv_transpose2d(x, w)> with the same stride, padding, dilation, groups."""
    rng = np.random.default_rng(3)
    w = rng.standard_normal((6, 2, 3, 2))  # conv2d: 6 filters over 4 channels in 2 groups
    attrs = {"stride": (2, 3), "padding": ((1, 0), (2, 1)), "dilation": (1, 2), "groups": 2}
    u = rng.standard_normal((2, 4, 9, 11))
    y = od.conv2d(u, w, **attrs).numpy()
    x = rng.standard_normal(y.shape)
    hgap = u.shape[2] - ((y.shape[2] - 1) * 2 - 1 + 1 * 2 + 1)   # the rows conv2d never read
    wgap = u.shape[3] - ((y.shape[3] - 1) * 3 - 3 + 2 * 1 + 1)
    z = od.conv_transpose2d(x, w, output_padding=(hgap, wgap), **attrs).numpy()
    assert z.shape == u.shape
    np.testing.assert_allclose(np.sum(y * x), np.sum(u * z), rtol=1e-12)


@pytest.mark.parametrize("case", [CASES[0], CASES[2], CASES[4], CASES[5], CASES[7]])
def test_gradients_match_finite_differences(case):
    xs, ws, _, stride, padding, out_pad, dilation, groups = case
    rng = np.random.default_rng(7)
    arrays = [rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[1] * groups)]
    attrs = {"stride": stride, "padding": padding, "output_padding": out_pad, "dilation": dilation, "groups": groups}
    weight = rng.standard_normal(od.conv_transpose2d(*arrays, **attrs).shape)

    def loss(x, w, b):
        return od.sum(od.conv_transpose2d(x, w, b, **attrs) * weight)

    tensors = [od.tensor(a) for a in arrays]
    with od.GradientTape() as tape:
        tape.watch(tensors)
        value = loss(*tensors)
    grads = tape.gradient(value, tensors)
    for i, g in enumerate(grads):
        assert g.shape == arrays[i].shape
        flat = arrays[i].reshape(-1)
        for j in rng.choice(flat.size, size=min(6, flat.size), replace=False):
            plus, minus = [a.copy() for a in arrays], [a.copy() for a in arrays]
            plus[i].reshape(-1)[j] += 1e-6
            minus[i].reshape(-1)[j] -= 1e-6
            fd = (float(loss(*plus)) - float(loss(*minus))) / 2e-6
            assert abs(float(g.numpy().reshape(-1)[j]) - fd) <= 1e-6 * max(1.0, abs(fd))
    # the bias gradient is dy summed over N, H, W; the same rules under od.function
    np.testing.assert_allclose(grads[2].numpy(), weight.sum(axis=(0, 2, 3)), rtol=1e-12)

    @od.function
    def step(x, w, b):
        with od.GradientTape() as t:
            t.watch([x, w, b])
            v = loss(x, w, b)
        return t.gradient(v, [x, w, b])

    for g, h in zip(grads, step(*arrays)):
        np.testing.assert_allclose(h.numpy(), g.numpy(), rtol=1e-10, atol=1e-12)


def test_errors():
    x, w = np.zeros((1, 4, 3, 3), np.float32), np.zeros((4, 2, 3, 3), np.float32)
    with pytest.raises(InvalidArgumentError, match="conv_transpose2d: argument 'padding'.*'SAME' and 'VALID'"):
        od.conv_transpose2d(x, w, padding="SAME")
    with pytest.raises(InvalidArgumentError, match="argument 'output_padding'.*smaller than the stride"):
        od.conv_transpose2d(x, w, stride=2, output_padding=2)
    with pytest.raises(InvalidArgumentError, match="output_padding"):
        od.conv_transpose2d(x, w, output_padding=1)  # stride 1, dilation 1
    with pytest.raises(InvalidArgumentError, match="output_padding"):
        od.conv_transpose2d(x, w, output_padding=-1)
    with pytest.raises(ShapeError, match=r"argument 'w'.*w\[0\] == 4"):
        od.conv_transpose2d(x, np.zeros((3, 2, 3, 3), np.float32))
    with pytest.raises(ShapeError, match="argument 'groups'"):
        od.conv_transpose2d(x, w, groups=3)
    with pytest.raises(ShapeError, match=r"argument 'bias'.*\(4,\)"):
        od.conv_transpose2d(x, w, np.zeros(2, np.float32), groups=2)  # C_out = 2 * 2
    with pytest.raises(ShapeError, match="argument 'padding'.*output height"):
        od.conv_transpose2d(x, w, padding=(3, 0))  # 5 rows, 6 cropped
    with pytest.raises(ShapeError, match="argument 'x'.*rank 4"):
        od.conv_transpose2d(np.zeros((4, 3, 3), np.float32), w)


def test_empty_batch():
    y = od.conv_transpose2d(np.zeros((0, 2, 3, 3), np.float32), np.ones((2, 3, 2, 2), np.float32), stride=2)
    assert y.shape == (0, 3, 6, 6)
