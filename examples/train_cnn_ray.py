"""Data-parallel training of the tutorial CNN (examples/cnn.py) on scikit-learn's digits over Ray:
one replica per device, gradients averaged every step (opdispatch.distributed.DataParallel).

    python examples/train_cnn_ray.py --devices numpy:0,opencl:0 --epochs 3 --batch-size 32 \\
                                     [--ray ADDRESS] [--batch-norm] [--save ckpt.npz] [--resume ckpt.npz]
    python examples/train_cnn_ray.py --devices numpy:0,numpy:0,numpy:0 --time-steps 10   # seconds per step

``--batch-size`` is each replica's share: a step uses ``len(devices) * batch-size`` examples, the
same update as ``train_cnn.py --batch-size <that>`` in one process (without batch norm, whose batch
statistics are per replica). Without ``--ray`` a local Ray instance is started, with one logical CPU
per replica. Checkpoints are opdispatch checkpoints: ``train_cnn.py --resume`` reads them too.
Needs ``pip install 'opdispatch[ray,examples]'``.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time
from typing import Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import opdispatch as od  # noqa: E402
from cnn import init_params, loss_fn  # noqa: E402
from opdispatch.distributed import DataParallel  # noqa: E402
from train_cnn import Progress, cosine, evaluate, load_digits_split  # noqa: E402


def init_digits_cnn(seed: int, device: str, *, batch_norm: bool = False, dtype: str = "float32"):
    """The CNN's parameters for 8x8 digits from ``seed`` on ``device`` (`DataParallel`'s ``init_fn``)."""
    return init_params(od.random.Generator(seed), image_hw=(8, 8), batch_norm=batch_norm, dtype=dtype, device=device)


def make_optimizer(name: str, lr: Optional[float]):
    """A picklable optimizer factory, as train_cnn.py builds them."""
    if name == "adam":
        return functools.partial(od.Adam, lr=lr or 1e-3)
    return functools.partial(od.SGD, lr=lr or 0.05, momentum=0.9)


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--devices", default="numpy:0,numpy:0", help="one device per replica, comma-separated")
    p.add_argument("--ray", default=None, metavar="ADDRESS", help="Ray cluster address (default: start a local one)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=32, help="examples per replica per step (default 32)")
    p.add_argument("--optimizer", choices=["adam", "sgd"], default="adam")
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--batch-norm", action="store_true", help="the batch-norm variant (per-replica batch statistics)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save", help="write a checkpoint here after every epoch")
    p.add_argument("--resume", help="continue from this checkpoint")
    p.add_argument("--time-steps", type=int, default=0, metavar="K",
                   help="instead of training, print the mean seconds per step over K steps")
    return p.parse_args(argv)


def main(argv: Optional[list[str]] = None) -> float:
    """Train; print per-epoch loss and held-out accuracy (rank 0's parameters); return the accuracy
    (with --time-steps: the seconds per step)."""
    import ray

    args = parse_args(argv)
    devices = [d.strip() for d in args.devices.split(",") if d.strip()]
    opened = not ray.is_initialized()
    if opened:
        ray.init(address=args.ray, num_cpus=None if args.ray else len(devices), include_dashboard=False,
                 log_to_driver=False)
    ray.cloudpickle.register_pickle_by_value(sys.modules["cnn"])  # the replicas need not find examples/
    if __name__ != "__main__":  # (the script itself is pickled by value anyway)
        ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        x_tr, y_tr, x_te, y_te = load_digits_split(args.seed)
        dp = DataParallel(functools.partial(init_digits_cnn, batch_norm=args.batch_norm), loss_fn, devices,
                          x=x_tr, y=y_tr, batch_size=args.batch_size, optimizer=make_optimizer(args.optimizer, args.lr),
                          seed=args.seed)
        if args.time_steps:
            per_step = dp.timed_steps(args.time_steps)
            print(f"{len(devices)} replica(s) on {', '.join(devices)}, batch {args.batch_size} each: "
                  f"{per_step * 1e3:.1f} ms per step")
            return per_step
        if args.resume:
            meta = dp.load_checkpoint(args.resume)
            print(f"resumed {args.resume} at epoch {meta.get('epoch', 0)}", file=sys.stderr)
        print(f"digits: {len(x_tr)} train / {len(x_te)} held out; {len(devices)} replicas on {', '.join(devices)}, "
              f"global batch {len(devices) * args.batch_size}", file=sys.stderr)
        start, acc = time.perf_counter(), 0.0
        base_lr = (args.lr or (1e-3 if args.optimizer == "adam" else 0.05))
        last = dp.epoch + args.epochs
        bars: dict[int, Progress] = {}  # the driver's progress bar, one per epoch

        def on_step(epoch: int, step: int, steps: int, loss: float) -> None:
            if epoch not in bars:
                bars[epoch] = Progress(steps, f"epoch {epoch + 1:>3}")
            bars[epoch].update(step, loss)

        for _ in range(args.epochs):
            (loss,) = dp.fit(1, lr_schedule=lambda e: cosine(base_lr, e, last), on_step=on_step)
            bars[dp.epoch - 1].close()
            params = {n: od.tensor(a) for n, a in dp.params().items()}
            state = {n: od.tensor(a) for n, a in dp.state().items()}
            acc = evaluate(params, state, x_te, y_te, "float32")
            print(f"epoch {dp.epoch:>3}: train loss {loss:.4f}  held-out accuracy {acc:.4f}  "
                  f"({time.perf_counter() - start:.1f} s)", flush=True)
            if args.save:
                dp.save_checkpoint(args.save, {"accuracy": acc})
        dp.shutdown()
        return acc
    finally:
        if opened:
            ray.shutdown()


if __name__ == "__main__":
    main()
