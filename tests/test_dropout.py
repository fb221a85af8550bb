"""od.dropout: mask statistics, the same mask on every device bit for bit, gradient, eval mode, and
seed=None under od.function (a fresh mask per call, the same draws as eager, kept by saved graphs)."""

from __future__ import annotations

import numpy as np
import pytest

import opdispatch as od
from opdispatch.ops import OPS
from opdispatch.ops.nn import RunSeed
from opdispatch.reference.nn import GOLDEN, MASK64, dropout_key, dropout_keep, dropout_threshold, mix64
from opdispatch_cupy.simulate import SimulatedPlugin

F32 = np.float32
HAS_OPENCL = "opencl:0" in {str(d) for d in od.devices()}
needs_opencl = pytest.mark.skipif(not HAS_OPENCL, reason="no opencl:0 on this machine")


@pytest.fixture
def cupysim(clean_registry):
    """The CuPy backend's kernels on NumPy arrays, as ``cupysim:0``."""
    status = od.register_plugin(SimulatedPlugin(), name="cupysim")
    assert status.status == "loaded", status
    yield "cupysim:0"


def _x(*shape: int, dtype=F32) -> np.ndarray:
    return np.random.default_rng(sum(shape)).standard_normal(shape).astype(dtype)


def _ones(*shape: int, dtype=F32) -> od.Tensor:
    return od.tensor(np.ones(shape, dtype=dtype))


# -- the mask -------------------------------------------------------------------------------------

def test_the_mask_is_the_documented_hash():
    """Element i is kept when (mix64(mix64(seed + G) + i * G) >> 40) >= ceil(p * 2**24)."""
    seed, p = 987654321, 0.37
    key, t = dropout_key(seed), dropout_threshold(p)
    expected = [(mix64((key + i * GOLDEN) & MASK64) >> 40) >= t for i in range(200)]
    assert dropout_keep(seed, p, (200,)).tolist() == expected
    y = od.dropout(_ones(200), p, seed=seed).numpy()
    assert ((y != 0) == np.array(expected)).all()


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_mask_statistics(p):
    n = 200_000
    y = od.dropout(_ones(n), p, seed=42).numpy()
    kept = y != 0
    assert abs(kept.mean() - (1 - p)) < 4 * np.sqrt(p * (1 - p) / n)
    np.testing.assert_array_equal(y[kept], F32(1 / (1 - p)))  # kept ones scaled by 1 / (1 - p)
    assert abs(y.mean() - 1.0) < 0.02  # expectation preserved
    # neighbouring elements are independent: the pair (kept i, kept i+1) occurs (1-p)**2 of the time
    both = (kept[:-1] & kept[1:]).mean()
    assert abs(both - (1 - p) ** 2) < 5 * np.sqrt((1 - p) ** 2 / n)


def test_seeds_give_different_masks_and_one_seed_the_same():
    x = _ones(1000)
    a, b = od.dropout(x, 0.5, seed=1).numpy(), od.dropout(x, 0.5, seed=2).numpy()
    assert (a != b).mean() > 0.4
    np.testing.assert_array_equal(a, od.dropout(x, 0.5, seed=1).numpy())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_same_mask_on_numpy_opencl_and_cupy_bit_for_bit(dtype, cupysim):
    x = _x(3, 129, 65, dtype=dtype)
    for seed in (0, 7, 2**63 + 5, 2**64 - 1):
        want = od.dropout(od.tensor(x), 0.3, seed=seed).numpy()
        devices = [cupysim] + (["opencl:0"] if HAS_OPENCL else [])
        for dev in devices:
            got = od.dropout(od.tensor(x, device=dev), 0.3, seed=seed).numpy()
            assert got.tobytes() == want.tobytes(), (dev, seed)  # values too: one IEEE multiply each
    np.testing.assert_allclose(want, x * np.where(dropout_keep(2**64 - 1, 0.3, x.shape), 1 / 0.7, 0), rtol=1e-6)


@needs_opencl
def test_same_mask_numpy_and_opencl_in_graph_mode():
    x = _x(17, 33)
    f = od.function(lambda t: od.dropout(t, 0.6, seed=123))
    a = f(od.tensor(x)).numpy()
    b = f(od.tensor(x, device="opencl:0")).numpy()
    assert a.tobytes() == b.tobytes()


def test_nonfinite_values_dropped_stay_nan_and_p_one_is_x_times_zero():
    x = od.tensor(np.array([np.nan, np.inf, -np.inf, -1.0, 2.0] * 40, dtype=F32))
    y = od.dropout(x, 1.0, seed=3).numpy()
    assert np.isnan(y[:3]).all() and (y[3::5] == 0).all() and np.signbit(y[3::5]).all()  # -1 * 0 = -0.0
    np.testing.assert_array_equal(od.dropout(_ones(50), 1.0, seed=3).numpy(), np.zeros(50, F32))  # PyTorch's zeros


# -- arguments, eval mode -------------------------------------------------------------------------

def test_eval_mode_and_p_zero_return_x_unchanged():
    x = od.tensor(_x(4, 5))
    assert od.dropout(x, 0.5, training=False) is x
    assert od.dropout(x, 0.0) is x
    assert od.dropout(x, 0.0, seed=4) is x
    np.testing.assert_array_equal(od.dropout(np.ones(3, F32), 0.5, training=False).numpy(), np.ones(3))
    f = od.function(lambda t: od.dropout(t, 0.5, training=False) * 2)
    np.testing.assert_array_equal(f(x).numpy(), x.numpy() * 2)
    assert "dropout" not in f.graph(x).ops()


@pytest.mark.parametrize("p", [-0.1, 1.5, float("nan"), "0.5", None])
def test_bad_p_is_a_clear_error(p):
    with pytest.raises(od.InvalidArgumentError, match=r"dropout: argument 'p' got .*allowed: a real number >= 0"):
        od.dropout(_ones(3), p)
    with pytest.raises(od.InvalidArgumentError, match="argument 'p'"):
        od.dropout(_ones(3), p, training=False)  # checked in eval mode too


@pytest.mark.parametrize("seed", [-1, 2**64, 1.5, "abc", True])
def test_bad_seed_is_a_clear_error(seed):
    with pytest.raises(od.InvalidArgumentError, match=r"dropout: argument 'seed' got .*allowed: an int in \[0, 2\*\*64\)"):
        od.dropout(_ones(3), 0.5, seed=seed)


def test_integer_input_is_refused():
    with pytest.raises(od.DTypeError, match="dropout"):
        od.dropout(np.ones(3, dtype=np.int64), 0.5, seed=1)


# -- gradient ---------------------------------------------------------------------------------------

def test_gradient_is_dropout_of_dy_with_the_same_mask():
    x = od.tensor(_x(6, 7))
    od.random.seed(5)
    with od.GradientTape() as tape:
        tape.watch(x)
        y = od.dropout(x, 0.4)
        loss = od.sum(y * y)
    g = tape.gradient(loss, x).numpy()
    mask = y.numpy() / np.where(x.numpy() == 0, 1, x.numpy())  # 0 or 1 / 0.6
    np.testing.assert_allclose(g, 2 * y.numpy() * mask, rtol=1e-5)
    assert ((g == 0) == (y.numpy() == 0)).all()


def test_seed_none_draws_are_reproducible_after_od_random_seed():
    x = _ones(64)
    od.random.seed(123)
    a = [od.dropout(x, 0.5).numpy() for _ in range(3)]
    od.random.seed(123)
    b = [od.dropout(x, 0.5).numpy() for _ in range(3)]
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[0], a[1])


def test_od_random_seed_checks_its_argument():
    with pytest.raises(od.InvalidArgumentError, match=r"od.random.seed: argument 's'"):
        od.random.seed(-3)


# -- graph mode -------------------------------------------------------------------------------------

def _model(x, w):
    h = od.dropout(od.relu(x @ w), 0.5)
    return od.dropout(h, 0.25) + od.dropout(x @ w, 0.5)


def test_graph_draws_a_fresh_mask_per_call_with_the_same_sequence_as_eager():
    x, w = od.tensor(_x(8, 16)), od.tensor(_x(16, 16))
    od.random.seed(2024)
    eager = [_model(x, w).numpy() for _ in range(4)]
    f = od.function(_model)
    od.random.seed(2024)
    graph = [f(x, w).numpy() for _ in range(4)]
    for e, g in zip(eager, graph):
        np.testing.assert_allclose(g, e, rtol=1e-6)
    assert not np.array_equal(graph[0], graph[1])  # no traced constant seed
    text = str(f.graph(x, w))
    assert "seed=per_run:0" in text and "seed=per_run:2" in text


def test_graph_and_eager_interleave_on_one_sequence():
    x = _ones(100)
    f = od.function(lambda t: od.dropout(t, 0.5))
    od.random.seed(9)
    eager = [od.dropout(x, 0.5).numpy() for _ in range(3)]
    od.random.seed(9)
    mixed = [od.dropout(x, 0.5).numpy(), f(x).numpy(), od.dropout(x, 0.5).numpy()]
    for e, m in zip(eager, mixed):
        np.testing.assert_array_equal(e, m)


def test_gradient_tape_inside_od_function_uses_the_forward_mask():
    def step(x):
        with od.GradientTape() as tape:
            tape.watch(x)
            y = od.dropout(x, 0.5)
            loss = od.sum(y * 3.0)
        return y, tape.gradient(loss, x)

    x = od.tensor(_x(10, 10))
    f = od.function(step)
    od.random.seed(77)
    eager = [step(x) for _ in range(2)]
    od.random.seed(77)
    graph = [f(x) for _ in range(2)]
    for (ye, ge), (yg, gg) in zip(eager, graph):
        np.testing.assert_allclose(yg.numpy(), ye.numpy(), rtol=1e-6)
        np.testing.assert_allclose(gg.numpy(), ge.numpy(), rtol=1e-6)
        assert ((gg.numpy() == 0) == (yg.numpy() == 0)).all()
    assert not np.array_equal(graph[0][0].numpy(), graph[1][0].numpy())


def test_an_unused_dropout_still_draws_its_seed_in_a_graph():
    def fn(x):
        od.dropout(x, 0.5)  # result unused: eager still draws a seed
        return od.dropout(x, 0.5)

    x = _ones(50)
    f = od.function(fn)
    od.random.seed(3)
    eager = [fn(x).numpy() for _ in range(2)]
    od.random.seed(3)
    graph = [f(x).numpy() for _ in range(2)]
    for e, g in zip(eager, graph):
        np.testing.assert_array_equal(e, g)


def test_a_constant_input_is_not_folded_into_one_mask():
    c = od.tensor(np.ones(30, F32))
    f = od.function(lambda t: od.dropout(c, 0.5) + t)
    z = od.tensor(np.zeros(30, F32))
    a, b = f(z).numpy(), f(z).numpy()
    assert not np.array_equal(a, b)
    assert "dropout" in f.graph(z).ops()


def test_a_fixed_seed_in_a_graph_is_a_constant_mask():
    x = _ones(40)
    f = od.function(lambda t: od.dropout(t, 0.5, seed=8))
    np.testing.assert_array_equal(f(x).numpy(), f(x).numpy())
    np.testing.assert_array_equal(f(x).numpy(), od.dropout(x, 0.5, seed=8).numpy())


def test_saved_graphs_keep_drawing_fresh_masks(tmp_path):
    x, w = od.tensor(_x(8, 16)), od.tensor(_x(16, 16))
    f = od.function(_model)
    g = f.graph(x, w)
    g.save(tmp_path / "model")
    loaded = od.load_graph(str(tmp_path / "model.json"))
    assert "per_run:1" in str(loaded)
    od.random.seed(31)
    eager = [_model(x, w).numpy() for _ in range(3)]
    od.random.seed(31)
    runs = [loaded(x, w).numpy() for _ in range(3)]
    for e, r in zip(eager, runs):
        np.testing.assert_allclose(r, e, rtol=1e-6)
    assert not np.array_equal(runs[0], runs[1])
    loaded.save(tmp_path / "again")  # save -> load -> save is byte-identical
    assert (tmp_path / "again.json").read_bytes() == (tmp_path / "model.json").read_bytes()


def test_run_seed_marker_and_its_attribute_forms():
    schema = OPS["dropout"]
    assert schema.normalize({"p": 0.5, "seed": "per_run:3"})["seed"] == RunSeed(3)
    assert isinstance(schema.normalize({"p": 0.5, "seed": "per_run:3"})["seed"], RunSeed)
    assert RunSeed(12).draw == 12 and str(RunSeed(0)) == "per_run:0"
    with pytest.raises(od.InvalidArgumentError, match="argument 'seed'"):
        schema.normalize({"p": 0.5, "seed": "per_run:01"})
    with pytest.raises(od.InvalidArgumentError, match="argument 'seed'"):
        od.op_function("softmax_cross_entropy_backward")  # (a generic op function, as F.dropout)
        from opdispatch.tensor import F

        F.dropout(_ones(3), p=0.5)  # the op itself has no default seed: only od.dropout draws one
