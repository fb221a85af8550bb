"""Optimizers: updates match the textbook (PyTorch) formulas, run on the parameters' device, validate input."""

from __future__ import annotations

import numpy as np
import pytest

import opdispatch as od

STEPS = 3


def _grads(rng, shapes):
    return [{k: rng.standard_normal(s) for k, s in shapes.items()} for _ in range(STEPS)]


SHAPES = {"w": (3, 4), "b": (4,)}


def _run(opt_cls, kwargs, dtype="float64"):
    rng = np.random.default_rng(0)
    p0 = {k: rng.standard_normal(s) for k, s in SHAPES.items()}
    grads = _grads(rng, SHAPES)
    opt = opt_cls({k: od.tensor(v, dtype=dtype) for k, v in p0.items()}, **kwargs)
    for g in grads:
        opt.step({k: od.tensor(v, dtype=dtype) for k, v in g.items()})
    return p0, grads, opt


@pytest.mark.parametrize("kwargs", [dict(lr=0.1, momentum=0.9), dict(lr=0.05, momentum=0.0),
                                    dict(lr=0.1, momentum=0.8, nesterov=True, weight_decay=0.01)])
def test_sgd_matches_the_formula(kwargs):
    p0, grads, opt = _run(od.SGD, kwargs)
    mu, lr, wd = kwargs["momentum"], kwargs["lr"], kwargs.get("weight_decay", 0.0)
    for k in SHAPES:
        p, v = p0[k].copy(), None
        for g in grads:
            g = g[k] + wd * p
            v = g if v is None else mu * v + g
            p = p - lr * ((g + mu * v) if kwargs.get("nesterov") else v)
        np.testing.assert_allclose(opt.params[k].numpy(), p, rtol=1e-12, atol=1e-12)
    assert opt.steps == STEPS


def test_adam_matches_the_formula():
    kw = dict(lr=0.01, beta1=0.8, beta2=0.99, eps=1e-6)
    p0, grads, opt = _run(od.Adam, kw)
    for k in SHAPES:
        p, m, v = p0[k].copy(), 0.0, 0.0
        for t, g in enumerate(grads, 1):
            m = kw["beta1"] * m + (1 - kw["beta1"]) * g[k]
            v = kw["beta2"] * v + (1 - kw["beta2"]) * g[k] ** 2
            mhat, vhat = m / (1 - kw["beta1"] ** t), v / (1 - kw["beta2"] ** t)
            p = p - kw["lr"] * mhat / (np.sqrt(vhat) + kw["eps"])
        np.testing.assert_allclose(opt.params[k].numpy(), p, rtol=1e-10, atol=1e-12)


def test_adam_matches_pytorch_when_installed():
    torch = pytest.importorskip("torch", reason="PyTorch is an optional test oracle (pip install -e '.[bench]')")
    p0, grads, opt = _run(od.Adam, dict(lr=0.01))
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in p0.items()}
    topt = torch.optim.Adam(list(tp.values()), lr=0.01)
    for g in grads:
        for k, t in tp.items():
            t.grad = torch.tensor(g[k])
        topt.step()
    for k in SHAPES:
        np.testing.assert_allclose(opt.params[k].numpy(), tp[k].detach().numpy(), rtol=1e-10, atol=1e-12)


def test_updates_keep_dtype_and_device_and_accept_a_schedule():
    opt = od.SGD({"w": od.tensor(np.ones(3), dtype="float32")}, lr=0.1)
    opt.lr = np.float64(0.05)  # a NumPy scalar from a schedule is a plain learning rate
    opt.step({"w": od.tensor(np.ones(3), dtype="float32")})
    w = opt.params["w"]
    assert w.dtype == np.float32 and w.device == od.Device("numpy:0")
    np.testing.assert_allclose(w.numpy(), 0.95)


@pytest.mark.parametrize("cls, kwargs, fragment", [
    (od.SGD, dict(lr=0.0), "'lr' got 0.0"),
    (od.SGD, dict(momentum=1.0), "'momentum' got 1.0"),
    (od.Adam, dict(beta2=-0.1), "'beta2' got -0.1"),
    (od.Adam, dict(eps=float("nan")), "'eps' got nan"),
])
def test_bad_hyper_parameters_are_named(cls, kwargs, fragment):
    with pytest.raises(od.InvalidArgumentError, match=fragment):
        cls({"w": od.tensor([1.0])}, **kwargs)


def test_a_bad_step_changes_nothing():
    opt = od.SGD({"w": od.tensor([1.0, 2.0])}, lr=0.1)
    before = opt.params["w"]
    with pytest.raises(od.InvalidArgumentError, match="unknown parameter 'v'"):
        opt.step({"w": od.tensor([1.0, 1.0]), "v": od.tensor([1.0])})
    with pytest.raises(od.InvalidArgumentError, match=r"gradient of 'w' has shape \(3,\)"):
        opt.step({"w": od.tensor([1.0, 1.0, 1.0])})
    assert opt.params["w"] is before and opt.steps == 0 and opt.slots["velocity"] == {}
    with pytest.raises(od.InvalidArgumentError, match="allowed: float tensors"):
        od.Adam({"w": np.ones(2)})


def test_stepping_inside_a_traced_function_is_refused_and_changes_nothing():
    opt = od.SGD({"w": od.tensor(np.ones(3))}, lr=0.1)
    before = opt.params["w"]

    @od.function
    def step(w):
        with od.GradientTape() as tape:
            tape.watch(w)
            loss = od.sum(w * w)
        opt.step({"w": tape.gradient(loss, w)})
        return loss

    with pytest.raises(od.InvalidArgumentError, match="SGD.step: called inside od.function"):
        step(opt.params["w"])
    assert opt.params["w"] is before and opt.steps == 0
