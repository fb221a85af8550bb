"""t[key], len, iteration, index_add / index_update and the gather / scatter_add ops, against NumPy on
numpy:0 and opencl:0, eagerly and under od.function, gradients against finite differences."""

from __future__ import annotations

import numpy as np
import pytest

import opdispatch as od

DEVICES = [d for d in ("numpy:0", "opencl:0") if od.Device(d) in od.devices()]

A = np.arange(24.0).reshape(2, 3, 4) / 7.0

BASIC = [0, -1, (1, 2), (1, -3, 3), (slice(None), slice(None, None, -2)), (slice(None, None, -1), slice(1, 3)),
         (Ellipsis, None, 1), (None, 0, slice(1, 3)), (Ellipsis,), (), (slice(5, 1, -1),), (slice(1, 1),),
         (0, Ellipsis, slice(None, None, 3))]
ADVANCED = [[1, 0], [[1, 0], [0, 0]], (slice(None), [0, 2, 2]), (0, slice(None), [1, -1]), ([0, 1], [1, 2]),
            ([0, 1], slice(None), [1, 2]), (slice(None), [0], None, [1]), (Ellipsis, [3, 0, 3]),
            (slice(None), [[0, 1]], [[1], [2]]), (slice(None), [0], Ellipsis, [1]), (slice(None, None, -1), [], 0),
            A > 1.5, (1, A[0, :, 0] > 0.3), (A[:, :, 0] > 0.5, slice(1, None))]


def _keys_host(key):
    if isinstance(key, tuple):
        return tuple(k.numpy() if isinstance(k, od.Tensor) else k for k in key)
    return key.numpy() if isinstance(key, od.Tensor) else key


def _numeric_grad(f, x, eps=1e-6):
    g = np.zeros_like(x)
    for i in np.ndindex(*x.shape):
        d = np.zeros_like(x)
        d[i] = eps
        g[i] = (f(x + d) - f(x - d)) / (2 * eps)
    return g


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("key", BASIC + ADVANCED, ids=repr)
def test_getitem_matches_numpy_eager_and_graph(device, key):
    t = od.tensor(A, device=device)
    want = A[key]
    got = t[key]
    assert got.shape == want.shape and got.device == od.Device(device)
    np.testing.assert_array_equal(got.numpy(), want)
    graphed = od.function(lambda u: u[key])(t)
    np.testing.assert_array_equal(graphed.numpy(), want)


@pytest.mark.parametrize("device", DEVICES)
def test_int_and_bool_tensor_indices(device):
    t = od.tensor(A, device=device)
    idx = od.tensor(np.array([[2, 0], [-1, 1]], np.int32), device=device)
    np.testing.assert_array_equal(t[:, idx, 1].numpy(), A[:, idx.numpy(), 1])
    rows = od.tensor(np.array([1, 0]), device=device)
    np.testing.assert_array_equal(od.function(lambda u, i: u[i, None])(t, rows).numpy(), A[[1, 0], None])
    mask = od.tensor(A > 1.0, device=device)
    np.testing.assert_array_equal(t[mask].numpy(), A[A > 1.0])
    with pytest.raises(od.GraphTraceError, match="od.where"):
        od.function(lambda u, m: u[m])(t, mask)
    both = (od.tensor(np.array([0, 1]), device=device), od.tensor(np.array([2, 0]), device=device))
    np.testing.assert_array_equal(t[both].numpy(), A[[0, 1], [2, 0]])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("key", [(1, slice(None, None, -2)), (slice(None), [0, 2, 2, -3]), ([1, 1, 0], 2, [0, 0, 3]),
                                 (A > 1.0,), (None, Ellipsis, [3, 3])], ids=repr)
def test_getitem_gradient_matches_finite_differences(device, key):
    x = od.tensor(A, device=device)
    w = np.random.default_rng(0).normal(size=A[key].shape)
    with od.GradientTape() as tape:
        tape.watch(x)
        loss = od.sum(x[key] * w)
    g = tape.gradient(loss, x).numpy()
    np.testing.assert_allclose(g, _numeric_grad(lambda a: float(np.sum(a[key] * w)), A), atol=1e-6)

    @od.function
    def step(u):
        with od.GradientTape() as tape:
            tape.watch(u)
            loss = od.sum(u[key] * w)
        return tape.gradient(loss, u)

    np.testing.assert_allclose(step(x).numpy(), g, atol=1e-12)


@pytest.mark.parametrize("device", DEVICES)
def test_out_of_range_is_an_index_error_naming_axis_index_and_size(device):
    t = od.tensor(A, device=device)
    with pytest.raises(IndexError, match="index 3 is out of range for axis 1 with size 3"):
        t[0, 3]
    with pytest.raises(od.TensorIndexError, match="index -5 .* axis 2 with size 4"):
        t[:, :, [0, -5]]
    with pytest.raises(od.TensorIndexError, match="too many indices"):
        t[0, 0, 0, 0]
    with pytest.raises(IndexError, match="boolean mask"):
        t[A[0] > 0]
    with pytest.raises(IndexError):
        t[1.5]
    bad = od.tensor(np.array([0, 9]), device=device)  # a tensor: checked by the gather op's check_values
    with pytest.raises(od.TensorIndexError, match="index 9 .* size 3"):
        t[:, bad]
    with pytest.raises(od.TensorIndexError, match="index 9"):
        od.function(lambda u, i: u[:, i])(t, bad)


@pytest.mark.parametrize("device", DEVICES)
def test_len_and_iteration(device):
    t = od.tensor(A, device=device)
    assert len(t) == 2
    rows = list(t)
    assert len(rows) == 2 and all(isinstance(r, od.Tensor) for r in rows)
    np.testing.assert_array_equal(rows[1].numpy(), A[1])
    s = od.tensor(np.float32(1.0), device=device)
    with pytest.raises(TypeError):
        len(s)
    with pytest.raises(TypeError):
        iter(s)


@pytest.mark.parametrize("device", DEVICES)
def test_assignment_is_refused_and_the_functional_updates_work(device):
    t = od.tensor(A, device=device)
    with pytest.raises(TypeError, match="index_update"):
        t[0] = 1.0
    want = A.copy()
    np.add.at(want, (slice(None), [0, 2, 0]), 1.5)
    np.testing.assert_allclose(od.index_add(t, (slice(None), [0, 2, 0]), 1.5).numpy(), want)
    want = A.copy()
    want[1, ::2] = -1.0
    np.testing.assert_array_equal(od.index_update(t, (1, slice(None, None, 2)), -1.0).numpy(), want)
    want = A.copy()
    want[A > 2.0] = 0.0
    np.testing.assert_array_equal(od.index_update(t, A > 2.0, 0.0).numpy(), want)
    with pytest.raises(od.InvalidArgumentError, match="more than once"):
        od.index_update(t, [0, 0], 1.0)
    graphed = od.function(lambda u: od.index_add(u, (0, [1, 1]), u[1, [0, 2]]))(t)
    want = A.copy()
    np.add.at(want[0], [1, 1], A[1, [0, 2]])
    np.testing.assert_allclose(graphed.numpy(), want)


@pytest.mark.parametrize("device", DEVICES)
def test_functional_update_gradients(device):
    x = od.tensor(A, device=device)
    v = od.tensor(np.ones((2, 2)), device=device)
    w = np.random.default_rng(1).normal(size=A.shape)
    with od.GradientTape() as tape:
        tape.watch([x, v])
        loss = od.sum(od.index_update(x, (slice(None), 1, [0, 3]), v) * w)
    gx, gv = tape.gradient(loss, [x, v])
    want_gx = w.copy()
    want_gx[:, 1, [0, 3]] = 0
    np.testing.assert_allclose(gx.numpy(), want_gx)
    np.testing.assert_allclose(gv.numpy(), w[:, 1, [0, 3]])
    row = od.tensor(np.ones(4), device=device)
    with od.GradientTape() as tape:
        tape.watch([x, row])
        loss = od.sum(od.index_add(x, ([1, 1], 0), row) * w)  # row broadcast to (2, 4), added twice at x[1, 0]
    gx, grow = tape.gradient(loss, [x, row])
    np.testing.assert_allclose(gx.numpy(), w)
    np.testing.assert_allclose(grow.numpy(), 2 * w[1, 0])


@pytest.mark.parametrize("device", DEVICES)
def test_gather_and_scatter_add_ops(device):
    x = od.tensor(A, device=device)
    idx = np.array([[2, -1], [0, 2]])
    np.testing.assert_array_equal(od.gather(x, idx, axis=1).numpy(), np.take(A, idx, axis=1))
    u = od.tensor(np.ones((2, 3)), device=device)
    out = od.scatter_add(u, np.array([1, 1, -1]), axis=1, size=4).numpy()
    np.testing.assert_array_equal(out, [[0, 2, 0, 1], [0, 2, 0, 1]])
    with pytest.raises(od.DTypeError, match="int32 or int64"):
        od.gather(x, np.array([0.5]), axis=0)
    with pytest.raises(od.TensorIndexError, match="scatter_add: index 4"):
        od.scatter_add(u, np.array([0, 1, 4]), axis=1, size=4)


def test_basic_indexing_fast_path_agrees_with_the_tape_path():
    t = od.tensor(A.astype(np.float32))
    fast = t[1, ::-2]
    with od.GradientTape() as tape:
        tape.watch(t)
        slow = t[1, ::-2]
    np.testing.assert_array_equal(fast.numpy(), slow.numpy())
