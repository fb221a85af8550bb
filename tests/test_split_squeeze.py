"""od.split, od.squeeze, od.unsqueeze: semantics against NumPy, errors, gradients (eager, graph, and
split's own gradient rule), and the existing concat and pad against API.md."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

import opdispatch as od
from opdispatch.ops import OPS
from opdispatch.tensor import F

F64 = np.float64


def _x(*shape: int) -> np.ndarray:
    return np.random.default_rng(len(shape)).standard_normal(shape)


# -- split ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("sections, axis", [(2, 0), (3, 1), (1, -1), ([1, 2, 1], 2), ([0, 4, 0], -1), ([3], 1)])
def test_split_matches_numpy(sections, axis):
    x = _x(4, 3, 4)
    parts = od.split(x, sections, axis=axis)
    assert isinstance(parts, tuple)
    bounds = sections if isinstance(sections, int) else np.cumsum(sections)[:-1]
    want = np.split(x, bounds, axis=axis)
    assert len(parts) == len(want)
    for p, w in zip(parts, want):
        assert p.shape == w.shape
        np.testing.assert_array_equal(p.numpy(), w)


def test_split_errors_name_the_argument():
    x = _x(4, 6)
    with pytest.raises(od.ShapeError, match=r"split: argument 'sections' got 4; allowed: .*divides the size 6 of axis 1"):
        od.split(x, 4, axis=1)
    with pytest.raises(od.ShapeError, match=r"argument 'sections' got \[1, 2\]; allowed: part sizes summing to 4"):
        od.split(x, [1, 2])
    for bad in (0, -1, [], [1, -1, 4], 2.0, None):
        with pytest.raises(od.InvalidArgumentError, match="argument 'sections'"):
            od.split(x, bad)
    with pytest.raises(od.InvalidArgumentError, match="argument 'axis'"):
        od.split(x, 2, axis=2)
    with pytest.raises(od.ShapeError, match="rank >= 1"):
        od.split(np.float64(1.0), 1)


def test_split_gradient_is_the_joined_gradients_with_zeros_for_unused_parts():
    x = od.tensor(_x(2, 7))
    with od.GradientTape() as tape:
        tape.watch(x)
        a, b, c = od.split(x, [2, 3, 2], axis=1)
        loss = od.sum(a * 2.0) + od.sum(c * c)
    g = tape.gradient(loss, x).numpy()
    want = np.concatenate([np.full((2, 2), 2.0), np.zeros((2, 3)), 2 * x.numpy()[:, 5:]], axis=1)
    np.testing.assert_allclose(g, want)


@pytest.mark.parametrize("present", [(True, False, True), (False, True, False), (False, False, True),
                                     (True, True, True), (True, False, False)])
def test_split_rule_fills_missing_gradients_with_zeros(present):
    """The schema's own rule (used where a backend has a split kernel, and by graph exporters)."""
    x = od.tensor(_x(3, 6))
    sizes = (1, 3, 2)
    grads = [od.tensor(np.full((3, n), float(i + 1))) if on else None
             for i, (n, on) in enumerate(zip(sizes, present))]
    rec = SimpleNamespace(inputs=[x], attrs={"sections": sizes, "axis": 1}, outputs=[], wants=lambda i: True)
    (g,) = OPS["split"].vjp(F, rec, grads)
    want = np.concatenate([np.full((3, n), float(i + 1) if on else 0.0)
                           for i, (n, on) in enumerate(zip(sizes, present))], axis=1)
    np.testing.assert_array_equal(g.numpy(), want)


def test_split_in_a_graph_and_saved(tmp_path):
    f = od.function(lambda t: od.split(t, 3, axis=-1))
    x = od.tensor(_x(2, 9))
    for p, w in zip(f(x), np.split(x.numpy(), 3, axis=-1)):
        np.testing.assert_array_equal(p.numpy(), w)
    g = f.graph(x)
    g.save(tmp_path / "g")
    loaded = od.load_graph(str(tmp_path / "g.json"))
    for p, w in zip(loaded(x), np.split(x.numpy(), 3, axis=-1)):
        np.testing.assert_array_equal(p.numpy(), w)


def test_split_of_one_part_is_a_one_tuple():
    (p,) = od.split(_x(3, 2), 1)
    assert p.shape == (3, 2)


# -- squeeze / unsqueeze ------------------------------------------------------------------------------

@pytest.mark.parametrize("axis", [None, 0, -1, (0, 3), (3, 0), (), [0]])
def test_squeeze_matches_numpy(axis):
    x = _x(1, 3, 2, 1)
    want = np.squeeze(x, axis=tuple(axis) if isinstance(axis, list) else axis)
    got = od.squeeze(x, axis)
    assert got.shape == want.shape
    np.testing.assert_array_equal(got.numpy(), want)


def test_squeeze_error_names_the_axis():
    with pytest.raises(od.ShapeError, match=r"squeeze: argument 'axis' .*axis 1 of x, shape \(1, 3, 1\), has size 3"):
        od.squeeze(_x(1, 3, 1), (0, 1))
    with pytest.raises(od.InvalidArgumentError, match="argument 'axis'"):
        od.squeeze(_x(1, 3), 2)
    with pytest.raises(od.InvalidArgumentError, match="distinct axes"):
        od.squeeze(_x(1, 3), (0, -2))
    with pytest.raises(od.InvalidArgumentError, match="argument 'axis'"):
        od.squeeze(_x(1, 3), "0")


@pytest.mark.parametrize("shape, axis", [((2, 3), 0), ((2, 3), -1), ((2, 3), 2), ((2, 3), (0, 3)), ((2, 3), (-1, 0)),
                                         ((2, 3), (1, -2)), ((), 0), ((), (0, -1)), ((4,), (-3, -1))])
def test_unsqueeze_matches_numpy_expand_dims(shape, axis):
    x = _x(*shape)
    want = np.expand_dims(x, axis)
    got = od.unsqueeze(x, axis)
    assert got.shape == want.shape
    np.testing.assert_array_equal(got.numpy(), want)


def test_unsqueeze_errors():
    with pytest.raises(od.InvalidArgumentError, match="argument 'axis'"):
        od.unsqueeze(_x(2, 3), 3)
    with pytest.raises(od.InvalidArgumentError, match="distinct axes"):
        od.unsqueeze(_x(2, 3), (0, -4))
    with pytest.raises(od.InvalidArgumentError, match="argument 'axis'"):
        od.unsqueeze(_x(2, 3), None)


def test_squeeze_unsqueeze_gradients_and_graph():
    x = od.tensor(_x(1, 4, 1))

    def fn(t):
        return od.sum(od.unsqueeze(od.squeeze(t), (0, -1)) * 3.0)

    with od.GradientTape() as tape:
        tape.watch(x)
        loss = fn(x)
    np.testing.assert_array_equal(tape.gradient(loss, x).numpy(), np.full((1, 4, 1), 3.0))
    f = od.function(fn)
    np.testing.assert_allclose(f(x).numpy(), loss.numpy())
    assert set(f.graph(x).ops()) <= {"reshape", "mul", "sum"}  # a reshape, no kernel of its own


# -- concat and pad, as API.md states them ------------------------------------------------------------

def test_concat_and_pad_follow_api_md():
    a, b = _x(2, 3), _x(2, 1)
    np.testing.assert_array_equal(od.concat([a, b], axis=1).numpy(), np.concatenate([a, b], axis=1))
    np.testing.assert_array_equal(od.concat((a, a)).numpy(), np.concatenate([a, a]))
    x = _x(2, 3, 4)
    pads = ((1, 2), (2, 1))  # the last len(pads) axes
    for mode in ("constant", "reflect", "edge"):
        want = np.pad(x, ((0, 0),) + pads, mode=mode)
        np.testing.assert_array_equal(od.pad(x, pads, mode=mode).numpy(), want)
    np.testing.assert_array_equal(od.pad(x, [[1, 1]], value=-2.5).numpy(),
                                  np.pad(x, ((0, 0), (0, 0), (1, 1)), constant_values=-2.5))
    with pytest.raises(od.InvalidArgumentError, match="argument 'mode'"):
        od.pad(x, pads, mode="wrap")
    for mode in ("constant", "reflect", "edge"):
        t = od.tensor(x)
        with od.GradientTape() as tape:
            tape.watch(t)
            loss = od.sum(od.pad(t, pads, mode=mode) * 1.0)
        g = tape.gradient(loss, t).numpy()  # how often each element was copied into the result
        assert g.shape == x.shape and g.sum() == (x.size if mode == "constant" else 2 * 6 * 7)
        if mode == "constant":
            np.testing.assert_array_equal(g, np.ones_like(x))
