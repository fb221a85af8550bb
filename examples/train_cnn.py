"""Train the tutorial CNN (examples/cnn.py) on scikit-learn's digits with opdispatch, on any device.

    python examples/train_cnn.py --device numpy:0 --epochs 12 --batch-size 64 [--batch-norm]
                                 [--optimizer adam|sgd] [--save ckpt.npz] [--resume ckpt.npz]

The dataset (1797 8x8 digit images) ships inside scikit-learn: nothing is downloaded. 20% of it,
stratified, is held out; each epoch prints the training loss and the held-out accuracy.
Checkpoints (``--save``) hold the parameters, batch-norm statistics, optimizer state and epoch,
without pickle; ``--resume`` continues from one, on this or any other device.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from typing import Optional, TextIO

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import opdispatch as od  # noqa: E402
from cnn import forward, init_params, train_step  # noqa: E402


def load_digits_split(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test): images scaled to [0, 1] as (N, 1, 8, 8), stratified 80/20."""
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise SystemExit("train_cnn: scikit-learn is needed for the digits dataset (pip install scikit-learn, "
                         "or pip install -e '.[examples]')") from exc
    digits = load_digits()
    x = (digits.images / 16.0).reshape(-1, 1, 8, 8)
    x_tr, x_te, y_tr, y_te = train_test_split(x, digits.target, test_size=0.2, stratify=digits.target,
                                              random_state=seed)
    return x_tr, y_tr.astype(np.int64), x_te, y_te.astype(np.int64)


class Progress:
    """A one-line progress bar on a terminal; on a pipe or file, only the finished line."""

    def __init__(self, total: int, label: str, out: TextIO = sys.stderr, width: int = 24) -> None:
        self.total, self.label, self.out, self.width = total, label, out, width
        self.live = out.isatty()
        self.start = time.perf_counter()

    def update(self, done: int, loss: float) -> None:
        if not self.live and done < self.total:
            return
        filled = self.width * done // self.total
        bar = "#" * filled + "." * (self.width - filled)
        end = "\n" if done == self.total and not self.live else ""
        self.out.write(f"\r{self.label} [{bar}] {done}/{self.total} loss {loss:.4f} "
                       f"{time.perf_counter() - self.start:5.1f}s{end}")
        self.out.flush()

    def close(self) -> None:
        if self.live:
            self.out.write("\n")
            self.out.flush()


def evaluate(params: dict, state: dict, x: np.ndarray, y: np.ndarray, dtype: str, batch: int = 256) -> float:
    """Accuracy of the model in inference mode on (x, y)."""
    correct = 0
    for i in range(0, len(x), batch):
        logits, _ = forward(params, state, od.tensor(x[i:i + batch], dtype=dtype), training=False)
        correct += (logits.argmax(axis=1) == y[i:i + batch]).sum().item()
    return correct / len(x)


def cosine(base: float, epoch: int, epochs: int) -> float:
    """The learning rate of ``epoch`` (0-based) under cosine decay over ``epochs``, floored at 5% of ``base``."""
    return base * max(0.05, 0.5 * (1 + math.cos(math.pi * epoch / max(epochs, 1))))


def make_optimizer(name: str, params: dict, lr: Optional[float]) -> od.Optimizer:
    if name == "adam":
        return od.Adam(params, lr=lr or 1e-3)
    return od.SGD(params, lr=lr or 0.05, momentum=0.9)


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default=None, help="device to train on, e.g. numpy:0, opencl:0 (default: od.get_device())")
    p.add_argument("--epochs", type=int, default=12, help="passes over the training set (default 12)")
    p.add_argument("--batch-size", type=int, default=64, help="examples per step (default 64)")
    p.add_argument("--optimizer", choices=["adam", "sgd"], default="adam", help="adam (default) or sgd with momentum")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default 1e-3 for adam, 0.05 for sgd)")
    p.add_argument("--batch-norm", action="store_true", help="the batch-norm variant (conv -> bn -> relu)")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--seed", type=int, default=0, help="seed of the split, the initialisation and the shuffling")
    p.add_argument("--save", help="write a checkpoint here after every epoch")
    p.add_argument("--resume", help="continue from this checkpoint")
    p.add_argument("--target", type=float, default=None, help="exit 1 unless the final accuracy reaches this")
    args = p.parse_args(argv)
    if args.epochs < 0 or args.batch_size < 1:
        p.error("--epochs must be >= 0 and --batch-size >= 1")
    return args


def main(argv: Optional[list[str]] = None) -> float:
    """Train, print per-epoch loss and held-out accuracy; return the final accuracy."""
    return train(parse_args(argv))


def train(args: argparse.Namespace) -> float:
    """`main` on parsed arguments."""
    start = time.perf_counter()
    x_tr, y_tr, x_te, y_te = load_digits_split(args.seed)
    rng = np.random.default_rng(args.seed)
    with od.device(args.device or od.get_device()):
        dev = od.get_device()
        first_epoch = 0
        if args.resume:
            ckpt = od.load_checkpoint(args.resume, device=dev)
            opt, state = ckpt.optimizer, ckpt.state
            if opt is None:
                raise SystemExit(f"train_cnn: {args.resume} holds no optimizer state")
            first_epoch = int(ckpt.metadata.get("epoch", 0))
            rng = np.random.default_rng([args.seed, first_epoch])
            print(f"resumed {args.resume} at epoch {first_epoch} on {dev}", file=sys.stderr)
        else:
            params, state = init_params(od.random.Generator(args.seed), image_hw=(8, 8), batch_norm=args.batch_norm,
                                        dtype=args.dtype)
            opt = make_optimizer(args.optimizer, params, args.lr)
        n_params = sum(p.size for p in opt.params.values())
        print(f"digits: {len(x_tr)} train / {len(x_te)} held out; {n_params} parameters; "
              f"{'batch-norm ' if 'conv1.gamma' in opt.params else ''}CNN on {dev} ({args.dtype}), "
              f"{type(opt).__name__}", file=sys.stderr)
        acc = evaluate(opt.params, state, x_te, y_te, args.dtype) if args.epochs == 0 else 0.0
        base_lr = opt.lr
        last = first_epoch + args.epochs
        for epoch in range(first_epoch, last):
            opt.lr = cosine(base_lr, epoch, last)
            order = rng.permutation(len(x_tr))
            steps = -(-len(x_tr) // args.batch_size)
            bar = Progress(steps, f"epoch {epoch + 1:>3}")
            losses = []
            for s in range(steps):
                idx = order[s * args.batch_size:(s + 1) * args.batch_size]
                loss, state = train_step(opt, state, od.tensor(x_tr[idx], dtype=args.dtype), y_tr[idx])
                losses.append(loss)
                bar.update(s + 1, float(np.mean(losses)))
            bar.close()
            acc = evaluate(opt.params, state, x_te, y_te, args.dtype)
            print(f"epoch {epoch + 1:>3}: train loss {np.mean(losses):.4f}  held-out accuracy {acc:.4f}  "
                  f"({time.perf_counter() - start:.1f} s)", flush=True)
            if args.save:
                od.save_checkpoint(args.save, opt.params, state=state, optimizer=opt,
                                   metadata={"epoch": epoch + 1, "accuracy": acc, "device": str(dev)})
    print(f"final held-out accuracy {acc:.4f} on {dev} in {time.perf_counter() - start:.1f} s", flush=True)
    return acc


if __name__ == "__main__":
    cli_args = parse_args()
    final = train(cli_args)
    sys.exit(1 if cli_args.target is not None and final < cli_args.target else 0)
