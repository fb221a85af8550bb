"""The CNN-zoo elementwise ops (clip, hardsigmoid, hardswish, erf, gelu, abs, pow, maximum, minimum):
values against formulas written independently here (math.erf, math.tanh, Python's ** per element),
edge values (NaN, +-inf, +-0.0, kinks, ties), gradient rules at and between the kinks, and the three
frontends (eager, od.function, GradientTape) on NumPy and, where present, OpenCL."""

from __future__ import annotations

import math

import numpy as np
import pytest

import opdispatch as od
from opdispatch_numpy.elementwise import erf64

NAN, INF = math.nan, math.inf
DEVICES = ["numpy:0"] + (["opencl:0"] if any(str(d) == "opencl:0" for d in od.devices()) else [])


def _each(fn, values):
    return np.array([fn(float(v)) for v in np.asarray(values, dtype=np.float64).reshape(-1)]).reshape(np.shape(values))


def _py_pow(x, y):
    """C99's pow, from Python's math.pow (which raises where C returns inf or NaN)."""
    x, y = float(x), float(y)
    odd = float(y).is_integer() and abs(y) < 2**53 and int(y) % 2 == 1
    if x == 0 and y < 0:  # pole: +-inf, the sign of a zero base for odd integer exponents
        return math.copysign(INF, x) if odd else INF
    try:
        return math.pow(x, y)
    except ValueError:
        return NAN
    except OverflowError:
        return -INF if x < 0 and odd else INF


def _gelu(v, approximate="none"):
    if v != v or v == -INF:
        return v if v != v else 0.0
    if approximate == "tanh":
        return 0.5 * v * (1.0 + math.tanh(math.sqrt(2.0 / math.pi) * (v + 0.044715 * v ** 3))) if abs(v) < 1e100 \
            else (v if v > 0 else -0.0)
    return 0.5 * v * (1.0 + math.erf(v / math.sqrt(2.0)))


FORMULAS = {
    "hardsigmoid": lambda v: min(max(v + 3.0, 0.0), 6.0) / 6.0 if v == v else NAN,
    "hardswish": lambda v: (0.0 if v <= -3 else v if v >= 3 else v * (v + 3.0) / 6.0) if v == v else NAN,
    "erf": math.erf,
    "abs": math.fabs,
    "gelu": _gelu,
}
EDGES = [NAN, INF, -INF, 0.0, -0.0, -3.0, 3.0, -2.9999, 2.9999, 1e-30, -1e-30, 0.5, -7.0, 40.0, -40.0, 1e4]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("op", sorted(FORMULAS))
def test_unary_ops_match_formulas_on_edge_values(op, dtype, device):
    x = np.array(EDGES + list(np.random.default_rng(1).uniform(-8, 8, 37)), dtype=dtype)
    got = getattr(od, op)(od.tensor(x, device=device)).numpy()
    want = _each(FORMULAS[op], x.astype(np.float64))
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_allclose(got, want, rtol=8 * np.finfo(dtype).eps, atol=4 * np.finfo(dtype).eps)


def test_float64_erf_is_accurate_to_about_1e_15_relative():
    x = np.concatenate([np.linspace(-7, 7, 20001), np.geomspace(1e-300, 7, 5000), -np.geomspace(1e-300, 7, 5000)])
    want = _each(math.erf, x)
    rel = np.abs(erf64(x) - want) / np.maximum(np.abs(want), 1e-300)
    assert rel.max() < 2e-15
    assert np.signbit(erf64(np.array([-0.0]))[0]) and np.isnan(erf64(np.array([NAN]))[0])


def test_float32_erf_is_within_one_ulp():
    x = np.random.default_rng(2).uniform(-5, 5, 20000).astype(np.float32)
    got = od.erf(x).numpy()
    want = _each(math.erf, x.astype(np.float64))
    assert np.all(np.abs(got - want) <= np.spacing(np.abs(want).astype(np.float32)))


@pytest.mark.parametrize("device", DEVICES)
def test_gelu_tanh_approximation_and_the_error_for_other_strings(device):
    x = np.array(EDGES, dtype=np.float64)
    got = od.gelu(od.tensor(x, device=device), approximate="tanh").numpy()
    np.testing.assert_allclose(got, _each(lambda v: _gelu(v, "tanh"), x), rtol=1e-14, atol=1e-15)
    with pytest.raises(od.InvalidArgumentError,
                       match=r"gelu: argument 'approximate' got 'exact'; allowed: 'none', 'tanh'"):
        od.gelu(od.tensor(x, device=device), approximate="exact")
    with pytest.raises(od.InvalidArgumentError, match="approximate"):
        od.gelu(od.tensor(x, device=device), approximate=None)


@pytest.mark.parametrize("device", DEVICES)
def test_clip_follows_np_clip(device):
    x = np.array([NAN, INF, -INF, 0.0, -0.0, -1.0, 1.0, -0.5, 0.25, 7.0, -7.0], dtype=np.float32)
    t = od.tensor(x, device=device)
    for lo, hi in [(-1.0, 1.0), (None, 0.25), (-0.5, None), (1.0, -1.0), (0.0, 6.0)]:
        want = np.clip(x, -np.inf if lo is None else lo, np.inf if hi is None else hi)
        np.testing.assert_array_equal(od.clip(t, lo, hi).numpy(), want)
    np.testing.assert_array_equal(od.clip(t).numpy(), x)
    with pytest.raises(od.InvalidArgumentError, match="clip: argument 'min'"):
        od.clip(t, min="low")
    with pytest.raises(od.InvalidArgumentError, match="clip: argument 'max'"):
        od.clip(t, max=NAN)


@pytest.mark.parametrize("device", DEVICES)
def test_pow_follows_numpy_for_negative_bases_zero_and_specials(device):
    bases = np.array([0.0, -0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -8.0, INF, -INF, NAN])[:, None]
    exps = np.array([0.0, 1.0, 2.0, 3.0, -1.0, -2.0, 0.5, 1.0 / 3.0, INF, -INF, NAN])[None, :]
    got = od.pow(od.tensor(bases, device=device), od.tensor(exps, device=device)).numpy()
    with np.errstate(all="ignore"):  # NaN and inf arguments of math.pow inside np.vectorize
        want = np.vectorize(_py_pow, otypes=[float])(bases, exps)
    np.testing.assert_allclose(got, want, rtol=1e-14)
    assert np.isnan(got[list(bases[:, 0]).index(-8.0), list(exps[0]).index(0.5)])
    with pytest.raises(od.ShapeError, match="pow: arguments 'x' .* and 'y'"):
        od.pow(od.tensor(np.ones(3)), od.tensor(np.ones(4)))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op,np_op", [("maximum", np.maximum), ("minimum", np.minimum)])
def test_maximum_and_minimum_propagate_nan_and_broadcast(op, np_op, device):
    a = np.array([[NAN, 1.0, -INF, 2.0, 0.0]], dtype=np.float32)
    b = np.array([[0.0], [NAN], [3.0]], dtype=np.float32)
    got = getattr(od, op)(od.tensor(a, device=device), od.tensor(b, device=device)).numpy()
    np.testing.assert_array_equal(got, np_op(a, b))
    np.testing.assert_array_equal(getattr(od, op)(od.tensor(a, device=device), 1.5).numpy(), np_op(a, np.float32(1.5)))


def _grad(op, *arrays, device="numpy:0", **attrs):
    ts = [od.tensor(np.asarray(a, dtype=np.float64), device=device) for a in arrays]
    with od.GradientTape() as tape:
        tape.watch(ts)
        y = od.sum(getattr(od, op)(*ts, **attrs))
    gs = tape.gradient(y, ts)
    return [g.numpy() for g in gs]


@pytest.mark.parametrize("device", DEVICES)
def test_gradients_at_the_kinks_follow_pytorch(device):
    x = np.array([-4.0, -3.0, -1.0, 0.0, 1.0, 3.0, 4.0])
    (g,) = _grad("clip", x, min=-1.0, max=1.0, device=device)  # boundaries pass
    np.testing.assert_array_equal(g, [0, 0, 1, 1, 1, 0, 0])
    (g,) = _grad("clip", x, min=1.0, max=-1.0, device=device)  # min > max: constant output
    np.testing.assert_array_equal(g, np.zeros(7))
    (g,) = _grad("hardsigmoid", x, device=device)  # no gradient at +-3
    np.testing.assert_allclose(g, [0, 0, 1 / 6, 1 / 6, 1 / 6, 0, 0])
    (g,) = _grad("hardswish", x, device=device)  # x/3 + 1/2 on [-3, 3]: -1/2 and 3/2 at the kinks
    np.testing.assert_allclose(g, [0, -0.5, 1 / 6, 0.5, 5 / 6, 1.5, 1.0])
    (g,) = _grad("abs", np.array([-2.0, -0.0, 0.0, 3.0]), device=device)
    np.testing.assert_array_equal(g, [-1, 0, 0, 1])
    ga, gb = _grad("maximum", np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0, 1.0]), device=device)  # ties: half
    np.testing.assert_array_equal(ga, [0, 0.5, 1])
    np.testing.assert_array_equal(gb, [1, 0.5, 0])
    ga, gb = _grad("minimum", np.array([1.0, 2.0, 3.0]), np.array([[2.0, 2.0, 1.0]] * 2), device=device)
    np.testing.assert_array_equal(ga, [2, 1, 0])
    np.testing.assert_array_equal(gb, [[0, 0.5, 1]] * 2)


@pytest.mark.parametrize("device", DEVICES)
def test_pow_gradients_at_zero(device):
    x = np.array([0.0, 0.0, 0.0, 2.0, 2.0])
    y = np.array([0.0, 2.0, 0.5, 0.0, 3.0])
    gx, gy = _grad("pow", x, y, device=device)
    np.testing.assert_allclose(gx, [0.0, 0.0, INF, 0.0, 12.0])  # y * x**(y-1); 0 where y == 0
    np.testing.assert_allclose(gy, [0.0, 0.0, 0.0, math.log(2.0), 8 * math.log(2.0)])  # 0 where x == 0


def _fd(f, x, h=1e-6):
    return (f(x + h) - f(x - h)) / (2 * h)


@pytest.mark.parametrize("op,attrs", [("erf", {}), ("gelu", {}), ("gelu", {"approximate": "tanh"}),
                                      ("hardswish", {}), ("hardsigmoid", {}), ("clip", {"min": -0.5, "max": 0.7})])
def test_unary_gradients_match_finite_differences_of_the_formulas(op, attrs):
    x = np.random.default_rng(3).uniform(-4, 4, 41)
    x = x[np.min(np.abs(x[:, None] - np.array([-3.0, 3.0, -0.5, 0.7])), axis=1) > 1e-3]  # away from kinks
    (g,) = _grad(op, x, **attrs)
    if op == "clip":
        want = ((x >= -0.5) & (x <= 0.7)).astype(float)
    else:
        f = FORMULAS[op] if op != "gelu" else (lambda v: _gelu(v, attrs.get("approximate", "none")))
        want = np.array([_fd(f, v) for v in x])
    np.testing.assert_allclose(g, want, rtol=1e-6, atol=1e-8)


def test_pow_gradients_match_finite_differences():
    x, y = np.random.default_rng(4).uniform(0.2, 3, (2, 13))
    gx, gy = _grad("pow", x, y)
    np.testing.assert_allclose(gx, [_fd(lambda v, b=b: v ** b, a) for a, b in zip(x, y)], rtol=1e-6)
    np.testing.assert_allclose(gy, [_fd(lambda v, a=a: a ** v, b) for a, b in zip(x, y)], rtol=1e-6)


@pytest.mark.parametrize("device", DEVICES)
def test_graph_mode_matches_eager_with_gradients(device):
    rng = np.random.default_rng(5)
    x = od.tensor(rng.standard_normal((3, 5)).astype(np.float32), device=device)
    w = od.tensor(rng.uniform(0.5, 2.0, (5,)).astype(np.float32), device=device)

    def model(x, w):
        h = od.gelu(x) + od.gelu(x, approximate="tanh") + od.hardswish(x) * od.hardsigmoid(x)
        h = od.clip(h, -1.0, 2.0) + od.erf(x) - od.abs(x)
        h = od.maximum(h, od.minimum(x, w)) + od.pow(w, od.abs(x))
        return od.sum(h)

    def step(x, w):
        with od.GradientTape() as tape:
            tape.watch([x, w])
            loss = model(x, w)
        gx, gw = tape.gradient(loss, [x, w])
        return loss, gx, gw

    eager = step(x, w)
    graph = od.function(step)(x, w)
    for e, g in zip(eager, graph):
        np.testing.assert_allclose(g.numpy(), e.numpy(), rtol=1e-5, atol=1e-6)
