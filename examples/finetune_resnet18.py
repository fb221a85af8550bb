"""Fine-tune a torchvision ResNet-18, imported from ONNX, on scikit-learn's digits, on any device.

    python examples/finetune_resnet18.py --device numpy:0 [--epochs 3] [--batch-size 64] [--lr 1e-3]
                                         [--graph] [--model resnet18.onnx] [--export digits.onnx]
                                         [--target 0.9]

The network comes from torchvision and is exported with ``torch.onnx.export`` in training mode, so
every batch norm stays a training-mode BatchNormalization node; `od.onnx.load` imports it, the
1000-class classifier (the Gemm's ``fc.weight`` / ``fc.bias``) is replaced by a new seeded
10-class one, and every parameter is trained with `od.GradientTape` and `od.Adam`.

Honestly: nothing is downloaded, so there are no pretrained ImageNet weights. "Fine-tuning" here
starts from torchvision's seeded initialisation with calibrated batch-norm statistics
(examples/torchvision_export.py: ``build`` and ``export``), which this script exports into a
temporary directory unless ``--model PATH`` names an ONNX file (any model whose last node is a
Gemm classifier on a (N, 3, 32, 32) input). It needs the optional torch extra for that
(``pip install -e '.[torch]'``), and scikit-learn for the data.

The digits (1797 8x8 images; 20% held out, stratified, as in examples/train_cnn.py) are upsampled
to 32x32 (nearest), repeated to 3 channels and normalised with the training set's mean and
standard deviation. Training runs the model in training mode: batch norms normalise with the
batch statistics, and each eager call writes their new running statistics back into
``model.params``. The held-out accuracy is measured in inference mode (``model.eval()``: the
batch norms use those running statistics). With ``--graph`` the training step runs under
`od.function`; a traced call of the model does not write running statistics back, so the step
returns them (``model.apply_with_stats``) and the loop stores them. ``--export PATH`` writes the
fine-tuned model, in inference mode, as ONNX (`od.onnx.export`; traced for one image, so its input
is (1, 3, 32, 32)), for ONNX Runtime or any other runtime.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from typing import Any, Callable, Optional

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import opdispatch as od  # noqa: E402
from train_cnn import Progress, cosine, load_digits_split  # noqa: E402

SIZE = 32
CLASSES = 10


def digits_32(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test): the digits split of train_cnn, as float32 (N, 3, 32, 32)
    images normalised with the training set's mean and standard deviation."""
    x_tr, y_tr, x_te, y_te = load_digits_split(seed)
    scale = SIZE // 8

    def up(x: np.ndarray) -> np.ndarray:
        x = np.repeat(np.repeat(x, scale, axis=2), scale, axis=3)
        return np.repeat(x, 3, axis=1)

    mean, std = float(x_tr.mean()), float(x_tr.std())
    return ((up(x_tr) - mean) / std).astype(np.float32), y_tr, ((up(x_te) - mean) / std).astype(np.float32), y_te


def export_resnet18(path: str, seed: int = 0) -> None:
    """Write torchvision's seeded ResNet-18 (calibrated batch norms, 1000 classes) at ``path`` as
    ONNX opset 17 in training mode, for (N, 3, 32, 32) inputs."""
    import warnings

    try:
        import torchvision_export as tve
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's notes on num_batches_tracked
            model = tve.build("resnet18", size=SIZE, seed=seed, num_classes=1000)
            tve.export(model, path, batch=2, size=SIZE, training=True)  # training export needs batch >= 2
    except ImportError as exc:
        raise SystemExit(f"finetune_resnet18: exporting the model needs torch and torchvision ({exc}); install "
                         f"the torch extra (pip install -e '.[torch]') or pass --model PATH") from exc


def load_model(path: str, device: od.Device) -> tuple[Any, str, str]:
    """The model at ``path`` with a symbolic batch dimension, on ``device``, and the names of its
    classifier's weight and bias (the inputs B and C of the Gemm that computes the output)."""
    try:
        import onnx
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise SystemExit("finetune_resnet18: the onnx package is needed (pip install -e '.[onnx]')") from exc
    proto = onnx.load(path)
    graph = proto.graph
    # torch.onnx.export fixes the batch size of the example input; make it symbolic.
    for vi in list(graph.input[:1]) + list(graph.output):
        dims = vi.type.tensor_type.shape.dim
        if dims:
            dims[0].ClearField("dim_value")
            dims[0].dim_param = "N"
    del graph.value_info[:]
    last = graph.node[-1] if graph.node else None
    if last is None or last.op_type != "Gemm" or len(last.input) < 3:
        raise SystemExit(f"finetune_resnet18: {path}: the last node is not a Gemm classifier with a bias")
    return od.onnx.load(proto, device=device), last.input[1], last.input[2]


def new_classifier(model: Any, weight: str, bias: str, seed: int, device: od.Device) -> Any:
    """``model`` with a seeded ``CLASSES``-way classifier in place of its own (PyTorch's Linear init:
    uniform in +-1/sqrt(fan_in), drawn with ``od.random.Generator(seed)``: the same numbers on every
    device); the Gemm multiplies by the weight's transpose (transB=1)."""
    fan_in = model.params[weight].shape[1]
    bound = 1.0 / fan_in ** 0.5
    g = od.random.Generator(seed)
    w = g.uniform((CLASSES, fan_in), low=-bound, high=bound, device=device)
    b = g.uniform((CLASSES,), low=-bound, high=bound, device=device)
    return model.with_params({weight: w, bias: b})


def evaluate(model: Any, x: np.ndarray, y: np.ndarray, run: Callable[[Any], Any], batch: int = 256) -> float:
    """Held-out accuracy in inference mode (batch norms with their running statistics)."""
    model.eval()
    correct = 0
    for i in range(0, len(x), batch):
        logits = run(od.tensor(x[i:i + batch]))
        correct += (logits.argmax(axis=1) == y[i:i + batch]).sum().item()
    return correct / len(x)


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default=None,
                   help="device to train on, e.g. numpy:0, opencl:0 (default: od.get_device())")
    p.add_argument("--epochs", type=int, default=3, help="passes over the training set (default 3)")
    p.add_argument("--batch-size", type=int, default=64, help="examples per step, at least 2 (default 64)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate, cosine-decayed (default 1e-3)")
    p.add_argument("--seed", type=int, default=0, help="seed of the split, the classifier and the shuffling")
    p.add_argument("--graph", action="store_true", help="run the training step (and evaluation) under od.function")
    p.add_argument("--model", help="an ONNX file to fine-tune (default: export torchvision's ResNet-18 to a temp dir)")
    p.add_argument("--export", metavar="PATH", help="write the fine-tuned model (inference mode) as ONNX here")
    p.add_argument("--target", type=float, default=None, help="exit 1 unless the final accuracy reaches this")
    args = p.parse_args(argv)
    if args.epochs < 0 or args.batch_size < 2:
        p.error("--epochs must be >= 0 and --batch-size >= 2 (training-mode batch norm needs 2 examples)")
    return args


def main(argv: Optional[list[str]] = None) -> float:
    """Fine-tune, print per-epoch loss and held-out accuracy; return the final accuracy."""
    return train(parse_args(argv))


def train(args: argparse.Namespace) -> float:
    """`main` on parsed arguments."""
    if args.model:
        return _train(args, args.model)
    with tempfile.TemporaryDirectory(prefix="od-finetune-") as tmp:
        path = os.path.join(tmp, "resnet18.onnx")
        t0 = time.perf_counter()
        export_resnet18(path, args.seed)
        print(f"exported torchvision resnet18 (seeded, training mode) in {time.perf_counter() - t0:.1f} s",
              file=sys.stderr)
        return _train(args, path)


def _train(args: argparse.Namespace, path: str) -> float:
    start = time.perf_counter()
    x_tr, y_tr, x_te, y_te = digits_32(args.seed)
    rng = np.random.default_rng(args.seed)  # the shuffling order of the host data
    with od.device(args.device or od.get_device()):
        dev = od.get_device()
        model, weight, bias = load_model(path, dev)
        model = new_classifier(model, weight, bias, args.seed, dev)
        opt = od.Adam(model.trainable, lr=args.lr)  # the running statistics are not trained
        model.params = {**model.params, **opt.params}
        before = {k: model.params[k] for k in model.buffers}  # tensors are immutable: these stay as they are
        n_params = sum(t.size for t in opt.params.values())
        print(f"digits 32x32: {len(x_tr)} train / {len(x_te)} held out; {model.name} from {os.path.basename(path)}: "
              f"{len(model.buffers)} batch-norm statistics, {n_params} trainable parameters; Adam on {dev}"
              f"{' (od.function)' if args.graph else ''}", file=sys.stderr)
        step = _graph_step(model) if args.graph else _eager_step(model)
        infer = od.function(model) if args.graph else model
        acc = evaluate(model, x_te, y_te, infer) if args.epochs == 0 else 0.0
        base_lr = opt.lr
        for epoch in range(args.epochs):
            t_epoch = time.perf_counter()
            opt.lr = cosine(base_lr, epoch, args.epochs)
            order = rng.permutation(len(x_tr))
            steps = -(-len(x_tr) // args.batch_size)
            if len(x_tr) - (steps - 1) * args.batch_size < 2:
                steps -= 1  # a last batch of one example has no batch variance: skip it
            bar = Progress(steps, f"epoch {epoch + 1:>3}")
            losses = []
            model.train()
            for s in range(steps):
                idx = order[s * args.batch_size:(s + 1) * args.batch_size]
                losses.append(step(opt, od.tensor(x_tr[idx]), y_tr[idx]))
                bar.update(s + 1, float(np.mean(losses)))
            bar.close()
            acc = evaluate(model, x_te, y_te, infer)
            print(f"epoch {epoch + 1:>3}: train loss {np.mean(losses):.4f}  held-out accuracy {acc:.4f}  "
                  f"({time.perf_counter() - t_epoch:.1f} s)", flush=True)
        if args.epochs and before:
            moved = max(abs(model.params[k] - v).max().item() for k, v in before.items())
            if not moved > 0:
                raise SystemExit("finetune_resnet18: the batch-norm running statistics were not updated")
            print(f"batch-norm running statistics updated (largest change {moved:.3g})", file=sys.stderr)
        if args.export:
            model.eval()
            od.onnx.export(model, (od.tensor(x_te[:1]),), args.export, input_names=["input"], output_names=["logits"])
            print(f"wrote {args.export} (inference mode, opset 17, input (1, 3, {SIZE}, {SIZE}))", file=sys.stderr)
    print(f"final held-out accuracy {acc:.4f} on {dev} in {time.perf_counter() - start:.1f} s", flush=True)
    return acc


def _eager_step(model: Any) -> Callable[[od.Optimizer, od.Tensor, np.ndarray], float]:
    """One eager forward, backward and Adam update. Calling the model eagerly in training mode
    writes its batch norms' new running statistics into ``model.params``."""
    def step(opt: od.Optimizer, x: od.Tensor, labels: np.ndarray) -> float:
        names = list(opt.params)
        with od.GradientTape() as tape:
            tape.watch([opt.params[n] for n in names])
            loss = od.softmax_cross_entropy(model(x), labels)
        grads = tape.gradient(loss, [opt.params[n] for n in names])
        opt.step(dict(zip(names, grads)))
        model.params = {**model.params, **opt.params}  # the updated weights, beside the new statistics
        return loss.item()
    return step


def _graph_step(model: Any) -> Callable[[od.Optimizer, od.Tensor, np.ndarray], float]:
    """The same step with the forward and backward traced by `od.function`: the parameters are
    inputs, the loss, gradients and new running statistics outputs; the update runs outside."""
    def forward_backward(trainable: dict, buffers: dict, x: od.Tensor, labels: Any) -> tuple:
        names = list(trainable)
        with od.GradientTape() as tape:
            tape.watch([trainable[n] for n in names])
            logits, stats = model.apply_with_stats({**buffers, **trainable}, x)
            loss = od.softmax_cross_entropy(logits, labels)
        grads = tape.gradient(loss, [trainable[n] for n in names])
        return loss, dict(zip(names, grads)), stats

    traced = od.function(forward_backward)

    def step(opt: od.Optimizer, x: od.Tensor, labels: np.ndarray) -> float:
        buffers = {k: model.params[k] for k in model.buffers}
        loss, grads, stats = traced(dict(opt.params), buffers, x, labels)
        opt.step(grads)
        model.params = {**model.params, **opt.params, **stats}
        return loss.item()
    return step


if __name__ == "__main__":
    cli_args = parse_args()
    final = train(cli_args)
    sys.exit(1 if cli_args.target is not None and final < cli_args.target else 0)
