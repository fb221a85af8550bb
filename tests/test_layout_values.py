"""The layout ops on int32, int64 and bool tensors (labels, indices, masks): reshape, transpose, flatten,
slice, concat, split, squeeze, unsqueeze, broadcast_to, pad, gather and scatter_add, and ``t[key]`` built
on them, against NumPy on numpy:0 and opencl:0, eagerly and under od.function; the dtype is kept; float
gradients through graphs that mix in int and bool layout ops still flow."""

from __future__ import annotations

import numpy as np
import pytest

import opdispatch as od
from opdispatch.tensor import F

DEVICES = [d for d in ("numpy:0", "opencl:0") if od.Device(d) in od.devices()]
MODES = ("eager", "graph")

LABELS = np.arange(10)
INTS32 = (np.arange(24, dtype=np.int32).reshape(2, 3, 4) * 7919 - 50000)
BIG = np.array([2**53 + 1, -(2**62) - 3, 2**63 - 1, -(2**63), 5, -7], np.int64).reshape(2, 3)  # beyond float64
MASK = np.random.default_rng(0).random((3, 4)) < 0.5
MASK23 = np.array([[True, False, True], [False, False, True]])


def _run(mode, fn, *args):
    """``fn(*args)`` eagerly or as an od.function."""
    return fn(*args) if mode == "eager" else od.function(fn)(*args)


def _same(got, want):
    """``got`` (a tensor or a tuple of them) equals NumPy's ``want`` in shape, dtype and values."""
    if isinstance(want, (tuple, list)):
        assert isinstance(got, (tuple, list)) and len(got) == len(want)
        for g, w in zip(got, want):
            _same(g, w)
        return
    want = np.asarray(want)
    assert isinstance(got, od.Tensor)
    host = got.numpy()
    assert host.dtype == want.dtype and host.shape == want.shape, (host.dtype, host.shape, want.dtype, want.shape)
    np.testing.assert_array_equal(host, want)


# -- the examples of issue 14 ---------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("device", DEVICES)
def test_issue_examples(device, mode):
    labels = od.tensor(LABELS, device=device)
    mask = od.tensor(MASK, device=device)
    a = od.tensor(np.array([3, -1], np.int32), device=device)
    b = od.tensor(np.array([7, 8, 9], np.int32), device=device)
    x = od.tensor(INTS32, device=device)
    perm = od.tensor(np.array([9, 0, 3, 3, -1]), device=device)
    _same(_run(mode, lambda t: t[2:5], labels), LABELS[2:5])
    _same(_run(mode, lambda t: t.reshape(2, 5), labels), LABELS.reshape(2, 5))
    _same(_run(mode, lambda m: m.T, mask), MASK.T)
    _same(_run(mode, lambda u, v: od.concat([u, v]), a, b), np.concatenate([a.numpy(), b.numpy()]))
    _same(_run(mode, lambda t: t[[0, 2]], x[0]), INTS32[0][[0, 2]])
    _same(_run(mode, lambda t, p: t[p], labels, perm), LABELS[perm.numpy()])


# -- every op, every value dtype ------------------------------------------------------------------

DATA = {"int32": INTS32, "int64": INTS32.astype(np.int64) * 2**33, "bool": INTS32 % 3 == 0}

CASES = [
    ("reshape", lambda t: od.reshape(t, (4, -1)), lambda a: a.reshape(4, -1)),
    ("transpose", lambda t: od.transpose(t, (2, 0, 1)), lambda a: a.transpose(2, 0, 1)),
    ("transpose_none", lambda t: od.transpose(t), lambda a: a.T),
    ("flatten", lambda t: od.flatten(t, 1), lambda a: a.reshape(2, -1)),
    ("slice", lambda t: od.slice(t, starts=(0, 2), ends=(None, None), axes=(1, 2), steps=(2, -1)),
     lambda a: a[:, 0::2, 2::-1]),
    ("concat", lambda t: od.concat([t, t[:, :1], t[:, ::-1]], axis=1),
     lambda a: np.concatenate([a, a[:, :1], a[:, ::-1]], axis=1)),
    ("split", lambda t: od.split(t, (1, 0, 3), axis=2), lambda a: tuple(np.split(a, [1, 1], axis=2))),
    ("squeeze", lambda t: od.squeeze(t[:, :1, :, None]), lambda a: np.squeeze(a[:, :1, :, None])),
    ("unsqueeze", lambda t: od.unsqueeze(t, (0, -1)), lambda a: np.expand_dims(a, (0, -1))),
    ("broadcast_to", lambda t: F.broadcast_to(t[:, :1], shape=(5, 2, 3, 4)),
     lambda a: np.broadcast_to(a[:, :1], (5, 2, 3, 4))),
    ("pad_constant", lambda t: od.pad(t, ((1, 0), (2, 3)), value=1), lambda a: np.pad(a, ((0, 0), (1, 0), (2, 3)),
                                                                                        constant_values=1)),
    ("pad_reflect", lambda t: od.pad(t, ((2, 1), (3, 3)), mode="reflect"),
     lambda a: np.pad(a, ((0, 0), (2, 1), (3, 3)), mode="reflect")),
    ("pad_edge", lambda t: od.pad(t, ((1, 1), (0, 4)), mode="edge"),
     lambda a: np.pad(a, ((0, 0), (1, 1), (0, 4)), mode="edge")),
    ("gather", lambda t: od.gather(t, od.tensor(np.array([[3, -1], [0, 0]], np.int32), device=t.device), axis=2),
     lambda a: np.take(a, [[3, -1], [0, 0]], axis=2)),
    ("getitem_basic", lambda t: t[..., None, ::-2], lambda a: a[..., None, ::-2]),
    ("getitem_int", lambda t: t[1, -1], lambda a: a[1, -1]),
    ("getitem_array", lambda t: t[:, [2, 0, 2], 1:], lambda a: a[:, [2, 0, 2], 1:]),
    ("getitem_two_arrays", lambda t: t[[1, 0], :, [3, 3]], lambda a: a[[1, 0], :, [3, 3]]),
    ("getitem_mask", lambda t: t[MASK23], lambda a: a[MASK23]),
    ("getitem_row_mask", lambda t: t[:, MASK23[0]], lambda a: a[:, MASK23[0]]),

]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", sorted(DATA))
@pytest.mark.parametrize("name,fn,ref", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("device", DEVICES)
def test_layout_ops_on_values_match_numpy(device, name, fn, ref, dtype, mode):
    data = DATA[dtype]
    _same(_run(mode, fn, od.tensor(data, device=device)), ref(data))


@pytest.mark.parametrize("dtype", sorted(DATA))
@pytest.mark.parametrize("device", DEVICES)
def test_bool_and_int_tensor_keys_on_value_tensors(device, dtype):
    data = DATA[dtype]
    t = od.tensor(data, device=device)
    _same(t[od.tensor(MASK23, device=device)], data[MASK23])  # a mask tensor: eagerly (its indices on the host)
    row = np.array([True, False, False, True])
    _same(t[..., od.tensor(row, device=device)[::-1]], data[..., row[::-1]])  # a mask made by a bool layout op
    idx = od.tensor(np.array([[2, -1], [0, 0]], np.int32), device=device)
    _same(t[:, idx], data[:, idx.numpy()])
    _same(od.function(lambda u, i: u[1, i, ::-1])(t, idx), data[1, idx.numpy(), ::-1])
    with pytest.raises(od.GraphTraceError, match="od.where"):
        od.function(lambda u, m: u[m])(t, od.tensor(MASK23, device=device))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("device", DEVICES)
def test_int64_beyond_float64_moves_exactly(device, mode):
    t = od.tensor(BIG, device=device)
    _same(_run(mode, lambda u: u.T[::-1], t), BIG.T[::-1])
    _same(_run(mode, lambda u: od.pad(u, ((1, 1),), mode="reflect"), t), np.pad(BIG, ((0, 0), (1, 1)), "reflect"))
    _same(_run(mode, lambda u: od.pad(u, ((1, 0),), value=-(2.0**62)), t),
          np.pad(BIG, ((0, 0), (1, 0)), constant_values=-(2**62)))
    _same(_run(mode, lambda u: u[:, [2, 0]], t), BIG[:, [2, 0]])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", ["int32", "int64"])
@pytest.mark.parametrize("device", DEVICES)
def test_scatter_add_sums_ints(device, dtype, mode):
    updates = DATA[dtype][:, :, :3]
    idx = np.array([1, -1, 1])
    want = np.zeros((2, 3, 2), dtype=dtype)
    np.add.at(want, (slice(None), slice(None), np.where(idx < 0, idx + 2, idx)), updates)
    got = _run(mode, lambda u, i: od.scatter_add(u, i, axis=2, size=2), od.tensor(updates, device=device),
               od.tensor(idx, device=device))
    _same(got, want)


@pytest.mark.parametrize("device", DEVICES)
def test_values_keep_their_dtype_and_lists_are_numpy_like(device):
    with od.device(device):
        assert od.reshape([1, 2, 3, 4], (2, 2)).dtype == np.int64  # NumPy's dtype for a list of ints
        assert od.concat([[True], [False, True]]).dtype == np.bool_
        t = od.tensor(np.arange(6, dtype=np.int32))
        assert t[1:].dtype == np.int32 and t.reshape(2, 3).T.dtype == np.int32
        assert od.tensor(MASK)[0].dtype == np.bool_


# -- errors ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("device", DEVICES)
def test_errors_name_the_op_and_what_is_allowed(device):
    with od.device(device):
        ints, mask = od.tensor(LABELS), od.tensor(MASK)
        with pytest.raises(od.InvalidArgumentError, match=r"pad: argument 'value' got 2.5; allowed: an integer"):
            od.pad(ints, ((1, 1),), value=2.5)
        with pytest.raises(od.InvalidArgumentError, match=r"pad: .*'value'.*int32"):
            od.pad(od.tensor(INTS32), ((1, 1),), value=2.0**31)
        with pytest.raises(od.InvalidArgumentError, match=r"pad: argument 'value' got 2.0; allowed: 0 or 1"):
            od.pad(mask, ((1, 1),), value=2)
        with pytest.raises(od.InvalidArgumentError, match=r"pad: argument 'value' got inf"):
            od.pad(ints, ((1, 1),), value=float("inf"))
        np.testing.assert_array_equal(od.pad(mask, ((0, 1),), value=True).numpy(),
                                      np.pad(MASK, ((0, 0), (0, 1)), constant_values=True))
        np.testing.assert_array_equal(od.pad(ints, ((1, 0),), mode="edge", value=0.5).numpy(),
                                      np.pad(LABELS, (1, 0), mode="edge"))  # value is for constant padding only
        with pytest.raises(od.DTypeError, match=r"scatter_add: argument 'updates' got dtype bool; allowed: .*int64"):
            od.scatter_add(mask, od.tensor(np.array([0, 1])), axis=0, size=3)
        with pytest.raises(od.DTypeError, match=r"concat: argument 'tensors\[1\]' got dtype int32 but 'tensors\[0\]' "
                                                r"has int64"):
            od.concat([ints, od.tensor(np.arange(3, dtype=np.int32))])
        with pytest.raises(od.DTypeError, match=r"concat: .*float32"):
            od.concat([od.tensor(np.ones(2, np.float32)), ints])
        with pytest.raises(od.DTypeError, match="gather: argument 'indices' got dtype bool"):
            od.gather(ints, mask[0])


# -- gradients ---------------------------------------------------------------------------------------

X = np.random.default_rng(1).normal(size=(3, 4))
W = np.random.default_rng(2).normal(size=(2, 4))


def _mixed(x, labels, mask):
    """A float loss whose graph mixes int and bool layout ops: rows picked by labels moved through
    reshape/slice/concat/gather, a mask moved through transpose/pad/slice chooses between two values."""
    lab = od.concat([labels[::-1], labels[:1]]).reshape(2, 2)[:, 1]  # int layout ops: [0, 2]
    picked = x[lab]  # float gather with int indices from int ops
    m = od.pad(mask.T, ((0, 0), (0, 1)), value=False)[:, :4]  # bool layout ops: shape (2, 4)
    return od.sum(od.where(m, picked * W, picked ** 2))


def _mixed_numpy(x, labels, mask):
    lab = np.concatenate([labels[::-1], labels[:1]]).reshape(2, 2)[:, 1]
    picked = x[lab]
    m = np.pad(mask.T, ((0, 0), (0, 1)))[:, :4]
    return float(np.sum(np.where(m, picked * W, picked ** 2)))


@pytest.mark.parametrize("device", DEVICES)
def test_float_gradients_flow_through_graphs_mixing_int_and_bool_layout_ops(device):
    labels_np = np.array([2, 1, 0])
    x = od.tensor(X, device=device)
    labels, mask = od.tensor(labels_np, device=device), od.tensor(MASK[:2].T.copy(), device=device)
    with od.GradientTape() as tape:
        tape.watch(x)
        loss = _mixed(x, labels, mask)
    assert abs(float(loss) - _mixed_numpy(X, labels_np, MASK[:2].T)) < 1e-12
    g = tape.gradient(loss, x).numpy()
    eps, want = 1e-6, np.zeros_like(X)
    for i in np.ndindex(*X.shape):
        d = np.zeros_like(X)
        d[i] = eps
        want[i] = (_mixed_numpy(X + d, labels_np, MASK[:2].T) - _mixed_numpy(X - d, labels_np, MASK[:2].T)) / (2 * eps)
    np.testing.assert_allclose(g, want, atol=1e-6)

    @od.function
    def step(u, lab, m):
        with od.GradientTape() as tape:
            tape.watch(u)
            loss = _mixed(u, lab, m)
        return loss, tape.gradient(loss, u)

    loss2, g2 = step(x, labels, mask)
    np.testing.assert_allclose(g2.numpy(), g, atol=1e-12)
    assert abs(float(loss2) - float(loss)) < 1e-12


@pytest.mark.parametrize("device", DEVICES)
def test_int_and_bool_tensors_take_no_gradient(device):
    labels = od.tensor(LABELS, device=device)
    with od.GradientTape() as tape, pytest.raises(od.GradientError, match="allowed: float tensors"):
        tape.watch(labels)
    x = od.tensor(X, device=device)
    with od.GradientTape() as tape:
        tape.watch(x)
        rows = labels[0:3:2]  # int ops on the tape: not recorded (nothing tracked flows in)
        loss = od.sum(x[rows])
    np.testing.assert_array_equal(tape.gradient(loss, x).numpy(), np.isin(np.arange(3), [0, 2])[:, None]
                                  * np.ones((3, 4)))
