"""The classic TensorFlow-tutorial CNN, written with opdispatch ops, for any image size.

    conv 5x5x32 SAME -> relu -> max pool 2 -> conv 5x5x64 SAME -> relu -> max pool 2
    -> dense 1024 -> relu -> dense 10  (softmax cross-entropy on top, in the loss)

With ``batch_norm=True`` each convolution loses its bias and is followed by batch norm
(training mode while training, running statistics otherwise). Parameters and batch-norm
running statistics are plain dicts name -> tensor, so they checkpoint as they are.
"""

from __future__ import annotations

import math
from typing import Optional, Union

import numpy as np

import opdispatch as od

Params = dict[str, od.Tensor]


def _ceil_half(n: int) -> int:
    return (n + 1) // 2


def init_params(rng: "Union[int, od.random.Generator, np.random.Generator]", *, image_hw: tuple[int, int] = (28, 28),
                in_channels: int = 1, classes: int = 10, hidden: int = 1024, batch_norm: bool = False,
                dtype: str = "float32", device: Optional[str] = None) -> tuple[Params, Params]:
    """He-initialised parameters and (for the batch-norm variant) running statistics, drawn from
    ``rng`` (an ``od.random.Generator``, a seed for one, or a NumPy Generator that gives one its seed):
    the same values on every device."""
    gen = rng if isinstance(rng, od.random.Generator) else od.random.Generator(
        int(rng.integers(2**63)) if isinstance(rng, np.random.Generator) else rng)
    flat = 64 * _ceil_half(_ceil_half(image_hw[0])) * _ceil_half(_ceil_half(image_hw[1]))  # two pools (ceil mode)
    shapes = {"conv1.w": (32, in_channels, 5, 5), "conv2.w": (64, 32, 5, 5),
              "fc1.w": (flat, hidden), "fc2.w": (hidden, classes)}
    params = {name: gen.normal(shape, std=math.sqrt(2.0 / math.prod(shape[1:] if "conv" in name else shape[:1])),
                               dtype=dtype, device=device)
              for name, shape in shapes.items()}
    params["fc1.b"] = od.zeros(hidden, dtype=dtype, device=device)
    params["fc2.b"] = od.zeros(classes, dtype=dtype, device=device)
    state = {}
    for conv, c in (("conv1", 32), ("conv2", 64)):
        if batch_norm:
            params[f"{conv}.gamma"] = od.ones(c, dtype=dtype, device=device)
            params[f"{conv}.beta"] = od.zeros(c, dtype=dtype, device=device)
            state[f"{conv}.mean"] = od.zeros(c, dtype=dtype, device=device)
            state[f"{conv}.var"] = od.ones(c, dtype=dtype, device=device)
        else:
            params[f"{conv}.b"] = od.zeros(c, dtype=dtype, device=device)
    return dict(sorted(params.items())), state


def _conv_block(params: Params, state: Params, new_state: Params, x: od.Tensor, conv: str, training: bool
                ) -> od.Tensor:
    if f"{conv}.gamma" not in params:
        y = od.conv2d(x, params[f"{conv}.w"], params[f"{conv}.b"], padding="SAME")
    else:
        y = od.conv2d(x, params[f"{conv}.w"], padding="SAME")
        rm, rv, gamma, beta = state[f"{conv}.mean"], state[f"{conv}.var"], params[f"{conv}.gamma"], params[f"{conv}.beta"]
        if training:
            y, new_state[f"{conv}.mean"], new_state[f"{conv}.var"] = od.batch_norm(y, rm, rv, gamma, beta, training=True)
        else:
            y = od.batch_norm(y, rm, rv, gamma, beta)
    return od.max_pool2d(od.relu(y), 2, ceil_mode=True)


def forward(params: Params, state: Params, x: od.Tensor, *, training: bool) -> tuple[od.Tensor, Params]:
    """Logits of ``x`` (N, C, H, W), and the batch-norm running statistics after this batch."""
    new_state = dict(state)
    h = _conv_block(params, state, new_state, x, "conv1", training)
    h = _conv_block(params, state, new_state, h, "conv2", training)
    h = od.relu(od.add(od.matmul(od.flatten(h), params["fc1.w"]), params["fc1.b"]))
    return od.add(od.matmul(h, params["fc2.w"]), params["fc2.b"]), new_state


def loss_fn(params: Params, state: Params, x: od.Tensor, labels: np.ndarray) -> tuple[od.Tensor, Params]:
    """Mean softmax cross-entropy of a training batch, and the updated running statistics."""
    logits, new_state = forward(params, state, x, training=True)
    return od.softmax_cross_entropy(logits, labels), new_state


def train_step(opt: od.Optimizer, state: Params, x: od.Tensor, labels: np.ndarray) -> tuple[float, Params]:
    """One forward, backward and update; returns the loss and the new running statistics."""
    names = list(opt.params)
    with od.GradientTape() as tape:
        tape.watch([opt.params[n] for n in names])
        loss, new_state = loss_fn(opt.params, state, x, labels)
    grads = tape.gradient(loss, [opt.params[n] for n in names])
    opt.step(dict(zip(names, grads)))
    return loss.item(), new_state
