"""Optimizer steps are all or nothing: a step that raises changes no parameter, slot or step count,
the error is typed and names the argument, and correct steps afterwards work."""

from __future__ import annotations

import numpy as np
import pytest

import opdispatch as od
from opdispatch.errors import ArgumentTypeError
from fake_backends import make_mini


def _opt(cls, dtype="float32", **kw):
    params = {"a": od.tensor(np.arange(3.0), dtype=dtype), "b": od.tensor(np.ones((2, 2)), dtype=dtype),
              "c": od.tensor([0.5], dtype=dtype)}
    return cls(params, lr=0.1, **kw)


def _grads(dtype="float32", scale=1.0):
    return {"a": od.tensor(np.full(3, scale), dtype=dtype), "b": od.tensor(np.full((2, 2), scale), dtype=dtype),
            "c": od.tensor([scale], dtype=dtype)}


def _snapshot(opt):
    return ({k: (p, p.numpy().copy()) for k, p in opt.params.items()},
            {s: dict(per) for s, per in opt.slots.items()}, opt.steps)


def _assert_unchanged(opt, snap):
    params, slots, steps = snap
    assert opt.steps == steps
    assert set(opt.params) == set(params)
    for k, (p, arr) in params.items():
        assert opt.params[k] is p
        np.testing.assert_array_equal(opt.params[k].numpy(), arr)
    assert {s: dict(per) for s, per in opt.slots.items()} == slots
    for per in opt.slots.values():
        for t in per.values():
            assert t.dtype == np.float32


OPTIMIZERS = [(od.SGD, {}), (od.SGD, dict(momentum=0.9, nesterov=True, weight_decay=0.01)), (od.Adam, {})]


def _bad_dtype_last():
    g = _grads()
    g["c"] = od.tensor([1.0], dtype="float64")  # after a and b: the old code had updated those already
    return g


def _bad_shape_middle():
    g = _grads()
    g["b"] = od.tensor(np.ones(4), dtype="float32")
    return g


def _none_entry():
    g = _grads()
    g["b"] = None
    return g


def _array_entry():
    g = _grads()
    g["c"] = np.ones(1, np.float32)
    return g


def _unknown_name():
    g = _grads()
    g["zz"] = od.tensor([1.0], dtype="float32")
    return g


BAD = [
    (_bad_dtype_last, od.DTypeError, r"gradient of 'c' has dtype float64; allowed: the parameter's dtype float32"),
    (_bad_shape_middle, od.InvalidArgumentError, r"gradient of 'b' has shape \(4,\)"),
    (_none_entry, ArgumentTypeError, r"gradient of 'b' is NoneType; allowed: an od tensor"),
    (_array_entry, ArgumentTypeError, r"gradient of 'c' is ndarray; allowed: an od tensor"),
    (_unknown_name, od.InvalidArgumentError, r"unknown parameter 'zz'"),
    (lambda: None, ArgumentTypeError, r"argument 'grads' got NoneType; allowed: a dict"),
    (lambda: list(_grads().values()), ArgumentTypeError, r"argument 'grads' got list; allowed: a dict.*dict\(zip"),
    (lambda: tuple(_grads().values()), ArgumentTypeError, r"argument 'grads' got tuple"),
    (lambda: od.tensor([1.0]), ArgumentTypeError, r"argument 'grads' got Tensor"),
    (lambda: {1: od.tensor([1.0])}, od.InvalidArgumentError, r"unknown parameter 1"),
]


@pytest.mark.parametrize("cls, kw", OPTIMIZERS, ids=["sgd", "sgd-nesterov-wd", "adam"])
@pytest.mark.parametrize("make, error, match", BAD, ids=[
    "float64-among-float32", "wrong-shape", "none-gradient", "numpy-gradient", "unknown-name", "grads-none",
    "grads-list", "grads-tuple", "grads-tensor", "non-str-name"])
def test_a_failed_step_changes_nothing_and_later_steps_work(cls, kw, make, error, match):
    opt = _opt(cls, **kw)
    ref = _opt(cls, **kw)
    opt.step(_grads(scale=0.5))  # slots exist, so "unchanged" also covers them
    ref.step(_grads(scale=0.5))
    snap = _snapshot(opt)
    with pytest.raises(error, match=match) as info:
        opt.step(make())
    assert isinstance(info.value, od.OpDispatchError)
    _assert_unchanged(opt, snap)
    for _ in range(2):  # correct steps afterwards work and equal an optimizer that never saw the bad one
        opt.step(_grads(scale=2.0))
        ref.step(_grads(scale=2.0))
    assert opt.steps == ref.steps == 3
    for k in ref.params:
        assert opt.params[k].dtype == np.float32
        np.testing.assert_array_equal(opt.params[k].numpy(), ref.params[k].numpy())
    for s in ref.slots:
        for k in ref.slots[s]:
            np.testing.assert_array_equal(opt.slots[s][k].numpy(), ref.slots[s][k].numpy())


@pytest.mark.parametrize("cls", [od.SGD, od.Adam])
def test_a_gradient_on_another_device_is_refused_before_anything_changes(cls, clean_registry):
    od.register_plugin(make_mini(), name="mini")
    opt = _opt(cls)
    snap = _snapshot(opt)
    g = _grads()
    g["c"] = g["c"].to("mini:0")
    with pytest.raises(od.DeviceMismatchError, match=r"gradient of 'c' is on mini:0; allowed: the parameter's "
                                                     r"device numpy:0"):
        opt.step(g)
    _assert_unchanged(opt, snap)
    opt.step(_grads())
    assert opt.steps == 1


@pytest.mark.parametrize("cls", [od.SGD, od.Adam])
def test_a_kernel_failing_midway_changes_nothing(cls, clean_registry):
    """On 'mini' (relu and add only) the update's first mul fails: nothing may be committed."""
    od.register_plugin(make_mini(), name="mini")
    params = {"a": od.tensor([1.0, 2.0], dtype="float32", device="mini:0"),
              "b": od.tensor([3.0], dtype="float32", device="mini:0")}
    opt = cls(params, lr=0.1)
    before = dict(opt.params)
    with pytest.raises(od.OpDispatchError):
        opt.step({k: od.tensor(np.ones(p.shape), dtype="float32", device="mini:0") for k, p in params.items()})
    assert opt.params == before and opt.steps == 0 and all(per == {} for per in opt.slots.values())


def test_partial_gradients_keep_the_other_parameters():
    opt = _opt(od.SGD)
    b, c = opt.params["b"], opt.params["c"]
    opt.step({"a": od.tensor(np.ones(3), dtype="float32")})
    assert opt.params["b"] is b and opt.params["c"] is c and opt.steps == 1


@pytest.mark.parametrize("make, error, match", [
    (lambda: od.SGD(None), ArgumentTypeError, "argument 'params' got NoneType; allowed: a non-empty dict"),
    (lambda: od.SGD([od.tensor([1.0])]), ArgumentTypeError, "argument 'params' got list"),
    (lambda: od.SGD({1: od.tensor([1.0])}), ArgumentTypeError, "parameter name 1 is int; allowed: strings"),
    (lambda: od.SGD({"w": od.tensor([1.0])}, lr="0.1"), ArgumentTypeError, "'lr' got '0.1'; allowed: a number"),
    (lambda: od.SGD({"w": od.tensor([1.0])}, lr=None), ArgumentTypeError, "'lr' got None"),
    (lambda: od.Adam({"w": od.tensor([1.0])}, beta1=[0.9]), ArgumentTypeError, "'beta1' got \\[0.9\\]"),
])
def test_bad_constructor_arguments_are_typed_errors(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_a_bad_learning_rate_assignment_keeps_the_old_one():
    opt = _opt(od.SGD)
    for bad in (None, "fast", float("inf"), -1.0):
        with pytest.raises(od.InvalidArgumentError, match="'lr'"):
            opt.lr = bad
    assert opt.lr == 0.1


@pytest.mark.parametrize("meta, arrays, match", [
    (None, {}, "allowed: two dicts"),
    ({"kind": "sgd", "steps": 1}, [], "allowed: two dicts"),
    ({"kind": "sgd", "steps": True}, {}, "'steps' got True"),
    ({"kind": "sgd", "steps": 1}, {"velocity/a": [1.0, 2.0, 3.0]}, "allowed: a NumPy array"),
    ({"kind": "sgd", "steps": 1}, {"velocity/a": np.array(["x", "y", "z"])}, "allowed: a NumPy array"),
    ({"kind": "sgd", "steps": 1}, {"velocity/a": np.ones(2)}, "has shape"),
])
def test_load_state_dict_validates_before_changing_anything(meta, arrays, match):
    opt = _opt(od.SGD)
    opt.step(_grads())
    snap = _snapshot(opt)
    with pytest.raises(od.InvalidArgumentError, match=match):
        opt.load_state_dict(meta, arrays)
    _assert_unchanged(opt, snap)
