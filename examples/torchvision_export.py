"""torchvision classification models as ONNX files whose outputs mean something.

    python examples/torchvision_export.py resnet18 resnet18.onnx [--batch 1] [--size 224] [--training]

Needs the optional torch extra (``pip install -e '.[torch]'``: torch 2.13 and torchvision 0.28).
torchvision's C ops do not load with the CPU torch wheel, but building the models needs none of
them, so `import_torchvision` puts a stub in ``sys.modules["torchvision._meta_registrations"]``
first.

A randomly initialised network gives outputs from 1e-14 to 1e12 and near-ties for the top class,
which makes any comparison meaningless. `build` therefore seeds the weights, sets every batch-norm's
running statistics from one seeded batch (cumulative average, so they are the batch's own), and
scales the classifier so the logits have a standard deviation of about `LOGIT_STD`. With
``--training`` the model is exported in training mode (batch norm stays a training-mode node, for
fine-tuning), otherwise in eval mode, as ``torch.onnx.export(model.eval(), x, path, dynamo=False,
opset_version=17)``.
"""

from __future__ import annotations

import argparse
import sys
import types
from typing import Any

import numpy as np

MODELS = ("resnet18", "mobilenet_v2", "squeezenet1_1", "vgg11", "densenet121", "shufflenet_v2_x1_0",
          "efficientnet_b0", "mobilenet_v3_small")
"""The architectures issue 13 checks (any torchvision classification model works the same way)."""

LOGIT_STD = 4.0


def import_torchvision() -> Any:
    """``torchvision``, imported without its C ops (a stub for the module that registers them)."""
    sys.modules.setdefault("torchvision._meta_registrations", types.ModuleType("torchvision._meta_registrations"))
    import torchvision
    return torchvision


def calibration_batch(batch: int, size: int, seed: int) -> np.ndarray:
    """A seeded float32 batch of images, (batch, 3, size, size), roughly ImageNet-normalised."""
    return np.random.default_rng(seed).standard_normal((batch, 3, size, size)).astype(np.float32)


def build(name: str, *, size: int = 224, seed: int = 0, num_classes: int = 1000) -> Any:
    """torchvision model ``name`` with seeded weights, calibrated batch-norm statistics and a scaled
    classifier (see the module docstring), in eval mode."""
    import torch
    tv = import_torchvision()
    torch.manual_seed(seed)
    model = getattr(tv.models, name)(weights=None, num_classes=num_classes)
    x = torch.from_numpy(calibration_batch(8, size, seed + 1))
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average: after one batch, that batch's statistics
    with torch.no_grad():
        model.train()
        model(x)
        model.eval()
        head = [m for m in model.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))][-1]
        std = float(model(x).std())
        if std > 0:
            head.weight.mul_(LOGIT_STD / std)
            if head.bias is not None:
                head.bias.mul_(LOGIT_STD / std)
    for m in norms:
        m.momentum = 0.1
    return model


def export(model: Any, path: str, *, batch: int = 1, size: int = 224, training: bool = False) -> None:
    """Write ``model`` as ONNX opset 17 at ``path`` for inputs (batch, 3, size, size)."""
    import torch
    x = torch.from_numpy(calibration_batch(batch, size, 99))
    mode = torch.onnx.TrainingMode.TRAINING if training else torch.onnx.TrainingMode.EVAL
    model.train(training)
    torch.onnx.export(model, (x,), path, dynamo=False, opset_version=17, input_names=["input"],
                      output_names=["logits"], training=mode, do_constant_folding=not training)
    model.eval()


def main(argv: Any = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", help=f"a torchvision classification model, e.g. {', '.join(MODELS)}")
    parser.add_argument("path")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--training", action="store_true", help="export in training mode (batch norm as a node)")
    args = parser.parse_args(argv)
    model = build(args.name, size=args.size, num_classes=args.classes)
    export(model, args.path, batch=args.batch, size=args.size, training=args.training)
    print(f"wrote {args.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
