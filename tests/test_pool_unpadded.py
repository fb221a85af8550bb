"""Pooling reads its input unpadded: the NumPy and CuPy kernels take each window tap over the outputs
whose cell lands inside the input (per-tap valid ranges), the padding being the value the output
starts from, instead of padding the whole input first.

Checked against the padded algorithm they replace (written out below: pad with -inf or 0, one
strided slice per tap): max pooling bit for bit (NaN, infinities, signed zeros and ties included),
its gradient bit for bit but for the sign of zero gradients, the average-pooling gradient bit for
bit, average pooling equal up to the sign of a zero; and with tracemalloc, that no input-sized
padded copy is allocated any more.
"""

from __future__ import annotations

import random
import tracemalloc

import numpy as np
import pytest

import opdispatch as od
from opdispatch.ops import OPS
from opdispatch.shapes import output_hw
from opdispatch_cupy.kernels.table import kernel_functions
from opdispatch_numpy import pool as numpy_pool
from opdispatch_numpy.elementwise import select as numpy_select

CUPY = kernel_functions()  # the CuPy backend's kernels, unwrapped: run here with xp = numpy
BACKENDS = {
    "numpy": {op: getattr(numpy_pool, op) for op in numpy_pool.KERNELS},
    "cupy-kernels": {op: CUPY[op] for op in numpy_pool.KERNELS},
}
SELECT = {  # how each backend keeps dy where a tap holds the maximum (they differ in the sign of a zero)
    "numpy": numpy_select,
    "cupy-kernels": lambda hit, dy: np.where(hit, dy, dy.dtype.type(0)),
}


# -- the padded algorithm, as the kernels ran before ------------------------------------------------

def _padded(x, padding, kernel, stride, dilation, out_hw, fill):
    (pt, pb), (pl, pr) = padding
    h, w = x.shape[2:]
    need = [(out_hw[a] - 1) * stride[a] + dilation[a] * (kernel[a] - 1) + 1 for a in (0, 1)]
    extra = (max(need[0] - (h + pt + pb), 0), max(need[1] - (w + pl + pr), 0))
    return np.pad(x, ((0, 0), (0, 0), (pt, pb + extra[0]), (pl, pr + extra[1])), constant_values=fill)


def _tap(xp, i, j, stride, dilation, out_hw):
    h0, w0 = i * dilation[0], j * dilation[1]
    rows = slice(h0, h0 + stride[0] * (out_hw[0] - 1) + 1, stride[0])
    return xp[:, :, rows, w0:w0 + stride[1] * (out_hw[1] - 1) + 1:stride[1]]


def _taps(kernel):
    return [(i, j) for i in range(kernel[0]) for j in range(kernel[1])]


def padded_max_pool(x, kernel_size, stride, padding, dilation, out_hw):
    xp = _padded(x, padding, kernel_size, stride, dilation, out_hw, -np.inf)
    out = _tap(xp, 0, 0, stride, dilation, out_hw).copy()
    for i, j in _taps(kernel_size)[1:]:
        np.maximum(out, _tap(xp, i, j, stride, dilation, out_hw), out=out)
    return out


def padded_avg_pool(x, kernel_size, stride, padding, out_hw, divisor):
    one = (1, 1)
    xp = _padded(x, padding, kernel_size, stride, one, out_hw, 0.0)
    out = _tap(xp, 0, 0, stride, one, out_hw).copy()
    for i, j in _taps(kernel_size)[1:]:
        out += _tap(xp, i, j, stride, one, out_hw)
    return out / divisor.astype(x.dtype)


def padded_max_pool_backward(x, dy, kernel_size, stride, padding, dilation, select):
    out_hw = dy.shape[2:]
    xp = _padded(x, padding, kernel_size, stride, dilation, out_hw, -np.inf)
    real = _padded(np.ones((1, 1) + x.shape[2:], dtype=bool), padding, kernel_size, stride, dilation, out_hw, False)
    out = padded_max_pool(x, kernel_size, stride, padding, dilation, out_hw)
    taken = np.zeros(out.shape, dtype=bool)
    dxp = np.zeros(xp.shape, dtype=x.dtype)
    for i, j in _taps(kernel_size):
        xt = _tap(xp, i, j, stride, dilation, out_hw)
        hit = ((xt == out) | (np.isnan(xt) & np.isnan(out))) & _tap(real, i, j, stride, dilation, out_hw) & ~taken
        taken |= hit
        view = _tap(dxp, i, j, stride, dilation, out_hw)
        view += select(hit, dy)
    (pt, _), (pl, _) = padding
    return dxp[:, :, pt:pt + x.shape[2], pl:pl + x.shape[3]]


def padded_avg_pool_backward(dy, input_shape, kernel_size, stride, padding, divisor):
    one = (1, 1)
    g = dy / divisor.astype(dy.dtype)
    dxp = _padded(np.zeros(input_shape, dy.dtype), padding, kernel_size, stride, one, dy.shape[2:], 0.0)
    for i, j in _taps(kernel_size):
        view = _tap(dxp, i, j, stride, one, dy.shape[2:])
        view += g
    (pt, _), (pl, _) = padding
    return dxp[:, :, pt:pt + input_shape[2], pl:pl + input_shape[3]]


# -- random calls ------------------------------------------------------------------------------------

SPECIALS = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, 3.0, -3.0])


def random_calls(count: int, seed: int = 0):
    """Valid (op, x, kernel attributes) triples: paddings of every form, SAME, ceil_mode, dilation,
    windows that hold padding only, empty batches; values with NaN, +-inf, signed zeros and ties."""
    r, rng = random.Random(seed), np.random.default_rng(seed)
    made = 0
    while made < count:
        op = r.choice(["max_pool2d", "avg_pool2d"])
        attrs = {"kernel_size": (r.randint(1, 4), r.randint(1, 4)),
                 "stride": r.choice([None, (r.randint(1, 3), r.randint(1, 3))]),
                 "padding": r.choice([0, 1, (1, 2), ((0, 1), (2, 0)), ((1, 0), (0, 1)), "SAME", "VALID"]),
                 "ceil_mode": r.random() < 0.5}
        if op == "max_pool2d":
            attrs["dilation"] = (r.randint(1, 3), r.randint(1, 3))
        else:
            attrs["count_include_pad"] = r.random() < 0.5
        dtype = r.choice([np.float32, np.float64])
        shape = (r.randint(0, 2), r.randint(1, 3), r.randint(1, 9), r.randint(1, 9))
        schema = OPS[op]
        try:
            _, kattrs = schema.infer(op, [od.TensorMeta(shape, np.dtype(dtype))], schema.normalize(attrs))
        except od.OpDispatchError:
            continue
        x = rng.standard_normal(shape).astype(dtype)
        if r.random() < 0.3:
            x = np.round(x)  # ties
        if r.random() < 0.5:
            mask = rng.random(shape) < 0.3
            x[mask] = rng.choice(SPECIALS, int(mask.sum()))
        made += 1
        yield op, x, kattrs


CALLS = list(random_calls(400))


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a).view(np.uint64 if a.dtype == np.float64 else np.uint32)


def _unsigned_zeros(a: np.ndarray) -> np.ndarray:
    """``a`` with -0.0 made +0.0: NumPy's fast path for non-overlapping unpadded windows writes a
    gradient the tap does not take as ``0 * dy`` (-0.0 for a negative dy), the general path adds it."""
    return np.where(a == 0, a.dtype.type(0), a)


def _divisor(x_hw, kattrs, out_hw):
    from opdispatch.reference.pool import avg_pool_divisor

    return avg_pool_divisor(x_hw, **kattrs)


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_the_unpadded_kernels_match_the_padded_algorithm(backend):
    kernels = BACKENDS[backend]
    checked = 0
    for op, x, ka in CALLS:
        dilation = ka.get("dilation", (1, 1))
        out_hw = output_hw(x.shape[2:], ka["kernel_size"], ka["stride"], ka["padding"], dilation, ka["ceil_mode"])
        dy = np.random.default_rng(checked).standard_normal(x.shape[:2] + out_hw).astype(x.dtype)
        with np.errstate(all="ignore"):
            if op == "max_pool2d":
                got = kernels[op](x, **ka)
                want = padded_max_pool(x, ka["kernel_size"], ka["stride"], ka["padding"], dilation, out_hw)
                assert np.array_equal(_bits(got), _bits(want)), (op, x.shape, ka)
                got = kernels["max_pool2d_backward"](x, dy, **ka)
                want = padded_max_pool_backward(x, dy, ka["kernel_size"], ka["stride"], ka["padding"], dilation,
                                                SELECT[backend])
                assert np.array_equal(_bits(_unsigned_zeros(got)), _bits(_unsigned_zeros(want))), \
                    ("max_pool2d_backward", x.shape, ka)
            else:
                div = _divisor(x.shape[2:], ka, out_hw)
                got = kernels[op](x, **ka)
                want = padded_avg_pool(x, ka["kernel_size"], ka["stride"], ka["padding"], out_hw, div)
                assert got.dtype == want.dtype and np.array_equal(got, want, equal_nan=True), (op, x.shape, ka)
                got = kernels["avg_pool2d_backward"](dy, input_shape=x.shape, **ka)
                want = padded_avg_pool_backward(dy, x.shape, ka["kernel_size"], ka["stride"], ka["padding"], div)
                assert np.array_equal(_bits(got), _bits(want)), ("avg_pool2d_backward", x.shape, ka)
        checked += 1
    assert checked == len(CALLS)


def test_windows_of_padding_only():
    """A dilated window whose taps all land in the padding: -inf, and no gradient, as before."""
    x = np.full((1, 1, 1, 1), 5.0)
    ka = {"kernel_size": (1, 2), "stride": (1, 1), "padding": ((0, 0), (1, 2)), "dilation": (1, 3), "ceil_mode": False}
    ref = od.op_function("max_pool2d")(od.tensor(x), **ka).numpy()  # taps at -1 and 2: both padding
    assert ref.tolist() == [[[[-np.inf]]]]
    for kernels in BACKENDS.values():
        y = kernels["max_pool2d"](x, **ka)
        assert y.tolist() == [[[[-np.inf]]]]
        assert kernels["max_pool2d_backward"](x, np.ones_like(y), **ka).tolist() == [[[[0.0]]]]


# -- memory: no padded copy ---------------------------------------------------------------------------

def _peak(fn) -> int:
    """Peak bytes allocated (NumPy reports its buffers to tracemalloc) while ``fn`` runs."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        fn()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_pooling_allocates_no_padded_input(backend):
    kernels = BACKENDS[backend]
    x = np.random.default_rng(0).standard_normal((4, 16, 128, 128)).astype(np.float32)  # 4 MiB
    ka = {"kernel_size": (3, 3), "stride": (2, 2), "padding": ((1, 1), (1, 1)), "ceil_mode": False}
    out = x.nbytes // 4  # (4, 16, 64, 64)
    dy = np.ones(x.shape[:2] + (64, 64), np.float32)
    slack = 256 << 10
    # forward: the output and nothing of the input's size (a padded copy alone is x.nbytes * 1.03)
    assert _peak(lambda: kernels["max_pool2d"](x, dilation=(1, 1), **ka)) <= out + slack
    assert _peak(lambda: kernels["avg_pool2d"](x, count_include_pad=False, **ka)) <= out + slack
    # gradients: dx and output-sized temporaries; no padded input, padded gradient or cropped copy
    assert _peak(lambda: kernels["avg_pool2d_backward"](dy, input_shape=x.shape, count_include_pad=True, **ka)) \
        <= x.nbytes + 2 * out + slack
    assert _peak(lambda: kernels["max_pool2d_backward"](x, dy, dilation=(1, 1), **ka)) <= 2 * x.nbytes
