"""The oneDNN provider's matmul: numpy.matmul's results (1-D promotion, broadcast batch dimensions,
strided views passed without a copy), declined where NumPy's kernel measured faster, and the
conformance suite's matmul cases on it."""

from __future__ import annotations

import numpy as np
import pytest

import opdispatch as od

pytest.importorskip("opdispatch_onednn")
from opdispatch_onednn import linalg  # noqa: E402
from opdispatch_onednn.primitives import CACHE  # noqa: E402

if od.providers().get("onednn") is None or od.providers()["onednn"].status != "loaded":
    pytest.skip(f"the onednn provider is not loaded here: {od.providers().get('onednn')}", allow_module_level=True)

NUMPY = od.Device("numpy:0")

SHAPES = [
    ((5, 7), (7, 3)), ((7,), (7, 3)), ((5, 7), (7,)), ((7,), (7,)), ((2, 1, 5, 7), (3, 7, 4)),
    ((4, 5, 7), (7, 2)), ((6, 7), (3, 7, 2)), ((3, 1, 4, 6), (1, 2, 6, 5)),
]


@pytest.fixture
def every_shape(monkeypatch):
    """The kernel on every shape, the small ones `supports()` sends to NumPy by default too."""
    monkeypatch.setattr(linalg, "DECLINE_SLOWER", False)


def _pair(sa, sb, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(sa).astype(np.float32), rng.standard_normal(sb).astype(np.float32)


@pytest.mark.parametrize("sa,sb", SHAPES)
def test_matmul_agrees_with_numpy_matmul(every_shape, sa, sb):
    a, b = _pair(sa, sb)
    assert od.explain("matmul", od.tensor(a), od.tensor(b)).provider == "onednn"
    got = od.matmul(od.tensor(a), od.tensor(b)).numpy()
    assert got.shape == np.matmul(a, b).shape
    np.testing.assert_allclose(got, np.matmul(a, b), rtol=1e-5, atol=1e-5)


def test_transposed_views_run_with_their_strides_and_other_views_through_a_copy(every_shape):
    a, b = _pair((40, 24), (40, 16))
    built = CACHE.built
    np.testing.assert_allclose(linalg.matmul(a.T, b), a.T @ b, rtol=1e-5, atol=1e-5)
    key = ("matmul", (24, 40), (40, 16), (1, 24), (16, 1))
    assert CACHE.built == built + 1 and CACHE.get(key, lambda: None) is not None  # the strided primitive
    stepped = a[::2, ::3]  # strides of 2 and 3 elements: passed as they are
    np.testing.assert_allclose(linalg.matmul(stepped, b[:8]), stepped @ b[:8], rtol=1e-5, atol=1e-5)
    reversed_rows = a[::-1, :]  # a negative stride: copied first
    np.testing.assert_allclose(linalg.matmul(reversed_rows, b[:24]), reversed_rows @ b[:24], rtol=1e-5, atol=1e-5)
    broadcast = np.broadcast_to(b[:1, :], (24, 16))  # a zero stride: copied first
    np.testing.assert_allclose(linalg.matmul(a, broadcast), a @ broadcast, rtol=1e-5, atol=1e-5)
    rng = np.random.default_rng(5)
    batched = rng.standard_normal((3, 7, 5)).astype(np.float32).transpose(0, 2, 1)  # batch dims padded with ones
    other = rng.standard_normal((2, 1, 4, 7)).astype(np.float32).swapaxes(-1, -2)
    assert linalg._element_strides(batched, (1, 3, 5, 7)) == (1, 35, 1, 5)
    np.testing.assert_allclose(linalg.matmul(batched, other), batched @ other, rtol=1e-5, atol=1e-5)


def test_nan_and_inf_propagate_as_in_numpy(every_shape):
    a, b = _pair((6, 5), (5, 4))
    a[1, 2], b[3, 0] = np.nan, np.inf
    got, want = od.matmul(od.tensor(a), od.tensor(b)).numpy(), a @ b
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))


def test_small_products_run_on_numpy_and_large_matrix_vector_products_on_onednn():
    small = [od.tensor(x) for x in _pair((64, 64), (64, 64))]
    plan = od.explain("matmul", *small)
    assert plan.provider == "numpy" and "small product" in dict(plan.candidates)["onednn"]
    vec = [od.tensor(x) for x in _pair((1024,), (1024, 1024))]  # a classifier's: OpenBLAS would go multi-threaded
    assert od.explain("matmul", *vec).provider == "onednn"
    big = [od.tensor(x) for x in _pair((8, 128, 64), (64, 256))]
    assert od.explain("matmul", *big).provider == "onednn"
    float64 = [od.tensor(x.astype(np.float64)) for x in _pair((256, 256), (256, 256))]
    assert od.explain("matmul", *float64).provider == "numpy"


def test_a_tape_through_matmul_matches_numpy(every_shape):
    a0, b0 = _pair((3, 5, 6), (6, 4))
    grads = {}
    for provider in ("onednn", "numpy"):
        a, b = od.tensor(a0), od.tensor(b0)
        with od.use_provider(provider):
            with od.GradientTape() as tape:
                tape.watch([a, b])
                loss = od.sum(od.matmul(a, b) ** 2)
            grads[provider] = [g.numpy() for g in tape.gradient(loss, [a, b])]
    for got, want in zip(grads["onednn"], grads["numpy"]):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_conformance_checks_the_onednn_matmul(every_shape):
    from opdispatch_conformance.runner import FAILED, PASSED
    from opdispatch_conformance.suite import collect_cases, run_device

    run = run_device(NUMPY, collect_cases(["matmul"], random_per_op=3, onnx=False), out=None)
    mine = [r for r in run["results"] if r.pinned == "onednn"]
    assert not [r for r in run["results"] if r.status == FAILED]
    assert sum(r.status == PASSED for r in mine) >= 3
