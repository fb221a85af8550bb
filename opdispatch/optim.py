"""Optimizers: SGD with momentum and Adam, written with ops so updates run on the parameters' device.

Tensors are immutable, so an optimizer owns the current parameters in ``opt.params`` (a dict
name -> tensor) and `step` replaces them::

    opt = od.Adam(params, lr=1e-3)
    with od.GradientTape() as tape:
        tape.watch(list(opt.params.values()))
        loss = model(opt.params, x)
    grads = tape.gradient(loss, list(opt.params.values()))
    opt.step(dict(zip(opt.params, grads)))

`step` validates everything before it changes anything: ``grads`` must be a dict whose every
entry names a parameter and holds a tensor of that parameter's shape, dtype and device; the
whole update is then computed and committed at once, so a step that raises (a bad gradient, a
kernel failing midway) leaves the parameters, the slots and the step count as they were.

`state_dict` / `load_state_dict` give the optimizer's state as host arrays plus JSON-able
settings, which `opdispatch.checkpoint` writes without pickle.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from . import api, recording
from .errors import ArgumentTypeError, DeviceMismatchError, DTypeError, InvalidArgumentError
from .tensor import Tensor, tensor


def _number(cls: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ArgumentTypeError(f"{cls}: argument {name!r} got {value!r}; allowed: a number")
    try:
        return float(value)
    except OverflowError:  # an int beyond the float range (a hostile checkpoint's settings, say)
        raise InvalidArgumentError(f"{cls}: argument {name!r} got an int of {int(value).bit_length()} bits, too big "
                                   f"for a float; allowed: a finite number") from None


def _positive(cls: str, name: str, value: float, allow_zero: bool = False) -> float:
    value = _number(cls, name, value)
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        allowed = "a finite number >= 0" if allow_zero else "a finite number > 0"
        raise InvalidArgumentError(f"{cls}: argument {name!r} got {value}; allowed: {allowed}")
    return value


def _fraction(cls: str, name: str, value: float) -> float:
    value = _number(cls, name, value)
    if not 0.0 <= value < 1.0:
        raise InvalidArgumentError(f"{cls}: argument {name!r} got {value}; allowed: 0 <= {name} < 1")
    return value


class Optimizer:
    """Shared bookkeeping: the parameters, per-parameter slots (momentum buffers...) and the step count."""

    kind = "optimizer"
    slot_names: tuple[str, ...] = ()

    def __init__(self, params: Mapping[str, Tensor]) -> None:
        if not isinstance(params, Mapping):
            raise ArgumentTypeError(f"{type(self).__name__}: argument 'params' got {type(params).__name__}; "
                                    f"allowed: a non-empty dict name -> float tensor")
        if not params:
            raise InvalidArgumentError(f"{type(self).__name__}: argument 'params' got no parameters; "
                                       f"allowed: a non-empty dict name -> float tensor")
        for name, p in params.items():
            if not isinstance(name, str):
                raise ArgumentTypeError(f"{type(self).__name__}: parameter name {name!r} is {type(name).__name__}; "
                                        f"allowed: strings")
            if not isinstance(p, Tensor) or p.dtype.kind != "f":
                raise InvalidArgumentError(f"{type(self).__name__}: parameter {name!r} is {type(p).__name__}; "
                                           f"allowed: float tensors")
        self.params: dict[str, Tensor] = dict(params)
        self.slots: dict[str, dict[str, Tensor]] = {s: {} for s in self.slot_names}
        self.steps = 0

    @property
    def lr(self) -> float:
        """The learning rate; assignable (schedules), validated as a finite float > 0."""
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        self._lr = _positive(type(self).__name__, "lr", value)

    def settings(self) -> dict[str, Any]:
        """The hyper-parameters, JSON-able."""
        raise NotImplementedError

    def _update(self, name: str, p: Tensor, g: Tensor, t: int) -> tuple[Tensor, dict[str, Tensor]]:
        """The new value of parameter ``name`` and of its slots at step ``t``; changes nothing."""
        raise NotImplementedError

    def _check(self, grads: Any) -> None:
        cls = type(self).__name__
        if any(getattr(r, "symbolic", False) for r in recording.active()):
            raise InvalidArgumentError(f"{cls}.step: called inside od.function; allowed: outside traced functions "
                                       f"(return the gradients from the traced function and step with them), "
                                       f"because the optimizer keeps its parameters and state between calls")
        if not isinstance(grads, Mapping):
            hint = (" (for a list of gradients in the order of opt.params: dict(zip(opt.params, grads)))"
                    if isinstance(grads, (list, tuple)) else "")
            raise ArgumentTypeError(f"{cls}.step: argument 'grads' got {type(grads).__name__}; allowed: a dict "
                                    f"parameter name -> gradient tensor{hint}")
        for name, g in grads.items():
            if not isinstance(name, str) or name not in self.params:
                raise InvalidArgumentError(f"{cls}.step: gradient for unknown parameter {name!r}; "
                                           f"allowed: {sorted(self.params)}")
            p = self.params[name]
            if not isinstance(g, Tensor):
                raise ArgumentTypeError(f"{cls}.step: gradient of {name!r} is {type(g).__name__}; allowed: an od "
                                        f"tensor of the parameter's shape, dtype and device (leave a parameter "
                                        f"out of 'grads' to keep its value)")
            if tuple(g.shape) != p.shape:
                raise InvalidArgumentError(f"{cls}.step: gradient of {name!r} has shape {tuple(g.shape)}; "
                                           f"allowed: the parameter's shape {p.shape}")
            if g.dtype != p.dtype:
                raise DTypeError(f"{cls}.step: gradient of {name!r} has dtype {g.dtype.name}; allowed: the "
                                 f"parameter's dtype {p.dtype.name}")
            if g.device != p.device:
                raise DeviceMismatchError(f"{cls}.step: gradient of {name!r} is on {g.device}; allowed: the "
                                          f"parameter's device {p.device}")

    def step(self, grads: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Apply one update with ``grads`` (name -> gradient, of the parameters' shapes, dtypes and
        devices); return the new params.

        Parameters without a gradient in ``grads`` keep their value. Everything is checked first
        and the update is committed only once it has been computed for every parameter, so a step
        that raises (an unknown name, a gradient of the wrong type, shape, dtype or device, a
        kernel failing midway) changes nothing: parameters, slots and step count stay as they were.
        """
        self._check(grads)
        t = self.steps + 1
        new_params: dict[str, Tensor] = {}
        new_slots: dict[str, dict[str, Tensor]] = {s: {} for s in self.slot_names}
        for name, g in grads.items():
            p = self.params[name]
            new_p, slots = self._update(name, p, g, t)
            for what in (new_p, *slots.values()):
                if (what.shape, what.dtype, what.device) != (p.shape, p.dtype, p.device):
                    raise DTypeError(f"{type(self).__name__}.step: the update of {name!r} came out "
                                     f"{what.dtype.name}{list(what.shape)} on {what.device}; allowed: the "
                                     f"parameter's {p.dtype.name}{list(p.shape)} on {p.device}")
            new_params[name] = new_p
            for slot, value in slots.items():
                new_slots[slot][name] = value
        self.params.update(new_params)
        for slot, values in new_slots.items():
            self.slots[slot].update(values)
        self.steps = t
        return self.params

    def state_dict(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(JSON-able settings and step count, host arrays of the slots keyed ``slot/param``)."""
        meta = {"kind": self.kind, "settings": self.settings(), "steps": self.steps}
        arrays = {f"{slot}/{name}": t.numpy() for slot, per in self.slots.items() for name, t in per.items()}
        return meta, arrays

    def load_state_dict(self, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        """Restore what `state_dict` gave, onto the parameters' devices. Validates before changing anything."""
        cls = type(self).__name__
        if not isinstance(meta, Mapping) or not isinstance(arrays, Mapping):
            raise ArgumentTypeError(f"{cls}.load_state_dict: arguments got {type(meta).__name__} and "
                                    f"{type(arrays).__name__}; allowed: two dicts, as state_dict returns them")
        if meta.get("kind") != self.kind:
            raise InvalidArgumentError(f"{cls}.load_state_dict: state of a {meta.get('kind')!r} optimizer; "
                                       f"allowed: {self.kind!r}")
        steps = meta.get("steps")
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
            raise InvalidArgumentError(f"{cls}.load_state_dict: 'steps' got {steps!r}; allowed: an int >= 0")
        slots: dict[str, dict[str, Tensor]] = {s: {} for s in self.slot_names}
        for key, arr in arrays.items():
            slot, _, name = key.partition("/")
            if slot not in slots or name not in self.params:
                raise InvalidArgumentError(f"{cls}.load_state_dict: unknown state entry {key!r}; allowed: "
                                           f"<slot>/<param> with slot in {list(self.slot_names)}")
            p = self.params[name]
            if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "fiu":
                raise ArgumentTypeError(f"{cls}.load_state_dict: {key!r} is {type(arr).__name__} "
                                        f"{getattr(arr, 'dtype', '')}; allowed: a NumPy array of numbers")
            if tuple(arr.shape) != p.shape:
                raise InvalidArgumentError(f"{cls}.load_state_dict: {key!r} has shape {tuple(arr.shape)}; "
                                           f"allowed: the parameter's shape {p.shape}")
            slots[slot][name] = tensor(np.asarray(arr, dtype=p.dtype), device=p.device)
        self.slots, self.steps = slots, steps


class SGD(Optimizer):
    """Stochastic gradient descent with (optionally Nesterov) momentum and L2 weight decay:
    ``v = momentum * v + g + wd * p``; ``p -= lr * v`` (PyTorch's convention)."""

    kind = "sgd"
    slot_names = ("velocity",)

    def __init__(self, params: Mapping[str, Tensor], lr: float = 0.01, momentum: float = 0.9,
                 weight_decay: float = 0.0, nesterov: bool = False) -> None:
        self.lr = lr
        self.momentum = _fraction("SGD", "momentum", momentum)
        self.weight_decay = _positive("SGD", "weight_decay", weight_decay, allow_zero=True)
        self.nesterov = bool(nesterov)
        super().__init__(params)

    def settings(self) -> dict[str, Any]:
        return {"lr": self.lr, "momentum": self.momentum, "weight_decay": self.weight_decay, "nesterov": self.nesterov}

    def _update(self, name: str, p: Tensor, g: Tensor, t: int) -> tuple[Tensor, dict[str, Tensor]]:
        slots = {}
        if self.weight_decay:
            g = api.add(g, api.mul(p, self.weight_decay))
        if self.momentum:
            v_old = self.slots["velocity"].get(name)
            v = g if v_old is None else api.add(api.mul(v_old, self.momentum), g)
            slots["velocity"] = v
            g = api.add(g, api.mul(v, self.momentum)) if self.nesterov else v
        return api.sub(p, api.mul(g, self.lr)), slots


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction: ``m = b1 m + (1-b1) g``, ``v = b2 v + (1-b2) g^2``,
    ``p -= lr * m_hat / (sqrt(v_hat) + eps)``."""

    kind = "adam"
    slot_names = ("m", "v")

    def __init__(self, params: Mapping[str, Tensor], lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8) -> None:
        self.lr = lr
        self.beta1 = _fraction("Adam", "beta1", beta1)
        self.beta2 = _fraction("Adam", "beta2", beta2)
        self.eps = _positive("Adam", "eps", eps)
        super().__init__(params)

    def settings(self) -> dict[str, Any]:
        return {"lr": self.lr, "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}

    def _update(self, name: str, p: Tensor, g: Tensor, t: int) -> tuple[Tensor, dict[str, Tensor]]:
        b1, b2 = self.beta1, self.beta2
        m_old, v_old = self.slots["m"].get(name), self.slots["v"].get(name)
        m = api.mul(g, 1 - b1) if m_old is None else api.add(api.mul(m_old, b1), api.mul(g, 1 - b1))
        g2 = api.mul(g, g)
        v = api.mul(g2, 1 - b2) if v_old is None else api.add(api.mul(v_old, b2), api.mul(g2, 1 - b2))
        step_size = self.lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        eps_hat = self.eps * math.sqrt(1 - b2 ** t)  # PyTorch's form of eps, folded past the bias correction
        return api.sub(p, api.mul(api.div(m, api.add(api.sqrt(v), eps_hat)), step_size)), {"m": m, "v": v}


OPTIMIZERS = {"sgd": SGD, "adam": Adam}
