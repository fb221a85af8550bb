"""Data-parallel training on Ray: N replicas of a model, each on its own opdispatch device (any backend,
on any node), with the gradients averaged every step through Ray's object store.

    dp = DataParallel(init_fn, loss_fn, ["numpy:0", "opencl:0"], x=x_train, y=y_train, batch_size=32,
                      optimizer=functools.partial(od.SGD, lr=0.05), seed=0)
    dp.fit(epochs=3, on_step=lambda epoch, step, steps, loss: ...)   # driver-side progress
    dp.save_checkpoint("ckpt.npz")                                   # opdispatch's checkpoint format

Every replica is a Ray actor (`Replica`) that builds the same initial parameters from the seed on its
device. Each step the driver cuts the epoch's seeded permutation into global batches of ``world *
batch_size`` examples; replica ``r`` computes the mean loss and gradients of its contiguous shard
(`shard`), returns them as host arrays scaled by its shard's size (a Ray object each), and every
replica then fetches all of them from the object store, sums them in rank order in float64,
divides by the global batch's size and steps its optimizer. So the update is the gradient of the
mean loss over the global batch, as one process with batch ``world * batch_size`` computes it (to
float rounding: the shards' partial sums differ in order), including a last, shorter batch; and
since every replica applies the same float32 update, replicas on one backend stay bit-identical
(on different backends, elementwise rounding may differ: `resync` copies rank 0's parameters to
all, which `fit` does after every epoch).

No transport is written here: the gradients are Ray objects (``ray.put`` on the worker, passed by
reference, fetched zero-copy where the nodes share memory), as are od tensors, which pickle with their
device (`Tensor.__reduce__`) and are rebuilt on it on arrival.

Batch norm: each replica normalises with its own shard's batch statistics (PyTorch DDP's default),
so with batch norm N replicas are not the one-process run with batch N*B; their running statistics
(the ``state``) are averaged across replicas when read (`state`, checkpoints). Synchronised batch
statistics would need a collective inside the forward and backward pass of every batch-norm call,
which this driver-stepped design does not have: not offered.

Timeouts: every call the driver waits on (a step, parameters, checkpoints) must answer within
``step_timeout_s`` (`DEFAULT_STEP_TIMEOUT_S`, generous: a first step may compile kernels); a replica
that does not (a hung kernel, a stalled node) raises `ReplicaTimeoutError` naming it, after the
replicas are shut down (their parameters are no longer in step: resume from a checkpoint). A replica
that fails or whose node dies raises `DistributedError` naming it.

Placement: a replica asks for ``num_cpus`` and, where some node declares it, the device's custom
resource ``opdispatch:<device>`` (1 unit, as for the fleet conformance), so two replicas never
share a device and each lands on a node that has it.

Ray is optional (``pip install opdispatch[ray]``): this module imports it inside its functions only.
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np

from .autodiff import GradientTape
from .checkpoint import load_checkpoint, save_checkpoint
from .device import Device
from .errors import InvalidArgumentError, OpDispatchError
from .files import atomic_write
from .optim import Optimizer
from .placement import device as device_scope
from .tensor import Tensor, tensor

Params = dict[str, Tensor]
InitFn = Callable[[int, str], tuple[Params, Params]]
"""``init_fn(seed, device) -> (params, state)``: the same values for the same seed on every device."""
LossFn = Callable[[Params, Params, Tensor, np.ndarray], tuple[Tensor, Params]]
"""``loss_fn(params, state, x, y) -> (mean loss over the batch, new state)``."""
OptimizerFn = Callable[[Params], Optimizer]
"""``optimizer(params) -> od.Optimizer`` (e.g. ``functools.partial(od.SGD, lr=0.05)``)."""

RESOURCE_PREFIX = "opdispatch:"
RAY_MISSING = "Ray is not installed: pip install 'opdispatch[ray]'"
DEFAULT_STEP_TIMEOUT_S = 600.0
"""How long the driver waits for the replicas' answer to one call (a step: gradients, then the update)."""


class DistributedError(OpDispatchError):
    """Data-parallel training that cannot run: Ray missing, bad arguments, a replica lost."""


class ReplicaTimeoutError(DistributedError):
    """A replica did not answer within ``step_timeout_s`` (a hung kernel or node); the message names it."""


def device_resource(device: "str | Device") -> str:
    """The custom Ray resource (1 unit) a node declares for one of its opdispatch devices."""
    return f"{RESOURCE_PREFIX}{Device(device)}"


def shard(batch: np.ndarray, rank: int, world: int) -> np.ndarray:
    """Replica ``rank``'s contiguous part of a global batch of indices: ``world`` parts whose sizes
    differ by at most one (the first ones larger), in order, covering the batch."""
    if not 0 <= rank < world:
        raise InvalidArgumentError(f"shard: argument 'rank' got {rank}; allowed: 0 <= rank < world ({world})")
    base, extra = divmod(len(batch), world)
    start = rank * base + min(rank, extra)
    return batch[start:start + base + (rank < extra)]


def epoch_batches(rng: np.random.Generator, n: int, global_batch: int) -> list[np.ndarray]:
    """One epoch's global batches: a permutation of ``n`` drawn from ``rng``, cut into ``global_batch``
    sized pieces (the last may be shorter), as ``examples/train_cnn.py`` draws them."""
    order = rng.permutation(n)
    return [order[i:i + global_batch] for i in range(0, n, global_batch)]


def average(contributions: Sequence[tuple[int, Mapping[str, np.ndarray]]]) -> dict[str, np.ndarray]:
    """The mean gradient of a global batch from each replica's (examples, gradients summed over them),
    summed in the order given, in float64, cast back to each gradient's dtype."""
    total = sum(n for n, _ in contributions)
    if total == 0:
        raise InvalidArgumentError("average: argument 'contributions' holds no example")
    names = list(contributions[0][1])
    out = {}
    for name in names:
        acc = np.zeros(np.shape(contributions[0][1][name]), dtype=np.float64)
        for _, grads in contributions:
            acc += grads[name]
        out[name] = (acc / total).astype(np.asarray(contributions[0][1][name]).dtype)
    return out


class Replica:
    """One data-parallel worker (the body of a Ray actor): the model and optimizer on its device."""

    def __init__(self, rank: int, world: int, device: str, init_fn: InitFn, loss_fn: LossFn,
                 optimizer: OptimizerFn, seed: int, x: np.ndarray, y: np.ndarray, dtype: str = "float32") -> None:
        self.rank, self.world, self.device, self.dtype = rank, world, str(Device(device)), dtype
        self.loss_fn = loss_fn
        self.x, self.y = x, y
        with device_scope(self.device):
            params, self.state = init_fn(seed, self.device)
            self.opt = optimizer(params)

    def grads(self, batch: np.ndarray) -> tuple[tuple[int, float], dict[str, np.ndarray]]:
        """((examples, loss summed over them), gradients summed over them) of this replica's shard (two
        Ray objects: the driver fetches the first only)."""
        idx = shard(batch, self.rank, self.world)
        if len(idx) == 0:
            return (0, 0.0), {n: np.zeros(p.shape, p.dtype) for n, p in self.opt.params.items()}
        names = list(self.opt.params)
        with device_scope(self.device):
            with GradientTape() as tape:
                tape.watch([self.opt.params[n] for n in names])
                loss, self.state = self.loss_fn(self.opt.params, self.state,
                                                tensor(self.x[idx], dtype=self.dtype), self.y[idx])
            grads = tape.gradient(loss, [self.opt.params[n] for n in names])
        k = len(idx)
        return (k, float(loss.item()) * k), {n: g.numpy() * g.dtype.type(k) for n, g in zip(names, grads)}

    def apply(self, counts: Sequence[Any], grads: Sequence[Any], lr: Optional[float] = None) -> None:
        """Fetch every replica's contribution (Ray objects, in rank order), average and step."""
        import ray

        mean = average([(k, g) for (k, _), g in zip(ray.get(list(counts)), ray.get(list(grads)))])
        if lr is not None:
            self.opt.lr = lr
        with device_scope(self.device):
            self.opt.step({n: tensor(g, device=self.device) for n, g in mean.items()})

    def params(self) -> dict[str, np.ndarray]:
        return {n: p.numpy() for n, p in self.opt.params.items()}

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {n: t.numpy() for n, t in self.state.items()}

    def set_params(self, params: Mapping[str, np.ndarray]) -> None:
        """Replace the parameter values (keeping the optimizer's slots)."""
        self.opt.params.update({n: tensor(a, device=self.device) for n, a in params.items()})

    def set_state(self, state: Mapping[str, np.ndarray]) -> None:
        self.state = {n: tensor(a, device=self.device) for n, a in state.items()}

    def checkpoint_bytes(self, state: Mapping[str, np.ndarray], metadata: Mapping[str, Any]) -> bytes:
        """This replica's parameters and optimizer, with ``state``, as a checkpoint file's bytes."""
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "ckpt.npz")
            save_checkpoint(path, self.opt.params, state={n: tensor(a, device=self.device) for n, a in state.items()},
                            optimizer=self.opt, metadata=metadata)
            with open(path, "rb") as fh:
                return fh.read()

    def load_checkpoint_bytes(self, data: bytes) -> dict[str, Any]:
        """Continue from a checkpoint file's bytes, on this replica's device; returns its metadata."""
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "ckpt.npz")
            with open(path, "wb") as fh:
                fh.write(data)
            ckpt = load_checkpoint(path, device=self.device)
        if ckpt.optimizer is None:
            raise DistributedError("resume: the checkpoint holds no optimizer state")
        self.opt, self.state = ckpt.optimizer, dict(ckpt.state)
        return dict(ckpt.metadata)


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise DistributedError(f"DataParallel: {RAY_MISSING}") from None
    if not ray.is_initialized():
        raise DistributedError("DataParallel: Ray is not connected; call ray.init(address=...) first (none: a "
                               "local cluster)")
    return ray


class DataParallel:
    """``devices`` replicas of a model trained as one: see the module's docstring.

    ``x`` (N, ...) and ``y`` (N,) are NumPy arrays put once in Ray's object store; ``batch_size`` is
    each replica's share of a global batch of ``len(devices) * batch_size``; ``seed`` seeds the
    parameters (``init_fn``) and the shuffling (one ``np.random.default_rng(seed)`` drawing a
    permutation per epoch, as ``examples/train_cnn.py`` does). ``num_cpus`` is what each replica asks
    Ray for; replicas that cannot be placed within ``ready_timeout_s`` raise `DistributedError`; a
    replica that does not answer a step (or any other call) within ``step_timeout_s`` raises
    `ReplicaTimeoutError` naming it, and every replica is shut down.
    """

    def __init__(self, init_fn: InitFn, loss_fn: LossFn, devices: Sequence[str], *, x: np.ndarray, y: np.ndarray,
                 batch_size: int, optimizer: OptimizerFn, seed: int = 0, dtype: str = "float32",
                 num_cpus: float = 1.0, ready_timeout_s: float = 300.0,
                 step_timeout_s: float = DEFAULT_STEP_TIMEOUT_S) -> None:
        if not step_timeout_s > 0:  # NaN too
            raise InvalidArgumentError(f"DataParallel: argument 'step_timeout_s' got {step_timeout_s!r}; "
                                       f"allowed: seconds > 0")
        ray = _ray()
        self.step_timeout_s = float(step_timeout_s)
        if not devices:
            raise InvalidArgumentError("DataParallel: argument 'devices' is empty; allowed: one device per replica")
        if batch_size < 1:
            raise InvalidArgumentError(f"DataParallel: argument 'batch_size' got {batch_size}; allowed: >= 1")
        if len(x) != len(y) or len(x) == 0:
            raise InvalidArgumentError(f"DataParallel: arguments 'x' and 'y' hold {len(x)} and {len(y)} examples; "
                                       f"allowed: the same number, at least one")
        self.devices = [str(Device(d)) for d in devices]
        self.world, self.batch_size, self.seed = len(self.devices), batch_size, seed
        self.n = len(x)
        self.rng = np.random.default_rng(seed)
        self.epoch = 0
        declared = {k for node in ray.nodes() if node.get("Alive") for k in node.get("Resources", {})}
        actor = ray.remote(Replica)
        x_ref, y_ref = ray.put(np.asarray(x)), ray.put(np.asarray(y))
        self.replicas = []
        for rank, dev in enumerate(self.devices):
            res = device_resource(dev)
            opts: dict[str, Any] = {"num_cpus": num_cpus, "max_restarts": 0}
            if res in declared:
                opts["resources"] = {res: 1}
            self.replicas.append(actor.options(**opts).remote(rank, self.world, dev, init_fn, loss_fn, optimizer,
                                                              seed, x_ref, y_ref, dtype))
        self._ray = ray
        try:  # a replica Ray cannot place (too few CPUs, no node with the device) fails here, not in a step
            ray.get([r.__ray_ready__.remote() for r in self.replicas], timeout=ready_timeout_s)
        except ray.exceptions.GetTimeoutError:
            self.shutdown()
            raise DistributedError(f"DataParallel: the {self.world} replicas ({', '.join(self.devices)}) did not start "
                                   f"within {ready_timeout_s:.0f} s: the cluster lacks the resources (each asks "
                                   f"{num_cpus} CPU and its device's resource where a node declares it: "
                                   f"{ray.available_resources()} available)") from None
        except ray.exceptions.RayError as exc:
            self.shutdown()
            raise DistributedError(f"DataParallel: a replica failed to start: {exc}") from exc

    def _collect(self, refs: Sequence[Any], ranks: Sequence[int], what: str,
                 deadline: Optional[float] = None) -> list[Any]:
        """The values of ``refs`` (``refs[i]`` answered by replica ``ranks[i]``), waiting until ``deadline``
        (`time.monotonic`; default ``step_timeout_s`` from now). A replica that has not answered by then
        raises `ReplicaTimeoutError` naming it (every replica is shut down first); one that failed,
        `DistributedError` naming it. ``what`` says what the replicas were doing, for the message."""
        ray = self._ray
        if deadline is None:
            deadline = time.monotonic() + self.step_timeout_s
        _, late = ray.wait(list(refs), num_returns=len(refs), timeout=max(0.0, deadline - time.monotonic()))
        if late:
            stuck = ", ".join(f"replica {rank} ({self.devices[rank]})" for rank, ref in zip(ranks, refs) if ref in late)
            self.shutdown()
            raise ReplicaTimeoutError(f"DataParallel: {stuck} did not finish {what} within {self.step_timeout_s:g} s "
                                      f"(step_timeout_s); every replica was shut down, their parameters no longer "
                                      f"in step: start a new DataParallel and resume from the last checkpoint")
        values = []
        for rank, ref in zip(ranks, refs):
            try:
                values.append(ray.get(ref))
            except ray.exceptions.RayError as exc:
                raise DistributedError(f"DataParallel: replica {rank} ({self.devices[rank]}) failed {what} or its "
                                       f"node was lost: {exc}") from exc
        return values

    def _all(self, refs: Sequence[Any], what: str) -> list[Any]:
        """`_collect` of one answer per replica, in rank order."""
        return self._collect(refs, range(len(refs)), what)

    def step(self, batch: np.ndarray, lr: Optional[float] = None) -> float:
        """One update from the global batch of example indices ``batch``; returns its mean loss."""
        deadline = time.monotonic() + self.step_timeout_s
        parts = [r.grads.options(num_returns=2).remote(batch) for r in self.replicas]
        counts, grads = [c for c, _ in parts], [g for _, g in parts]
        applied = [r.apply.remote(counts, grads, lr) for r in self.replicas]
        ranks = range(self.world)
        done = self._collect(counts, ranks, "computing its gradients", deadline)  # names a replica stuck there
        self._collect(applied, ranks, "applying the averaged gradients", deadline)
        return sum(loss for _, loss in done) / max(sum(k for k, _ in done), 1)

    def fit(self, epochs: int, *, lr_schedule: Optional[Callable[[int], float]] = None,
            on_step: Optional[Callable[[int, int, int, float], None]] = None) -> list[float]:
        """Train ``epochs`` epochs (``lr_schedule(epoch)`` sets the learning rate); ``on_step(epoch, step,
        steps, mean loss so far)`` after each step (the driver's progress bar). Returns each epoch's
        mean training loss. Replicas are resynchronised to rank 0 after each epoch."""
        means = []
        for _ in range(epochs):
            lr = lr_schedule(self.epoch) if lr_schedule else None
            batches = epoch_batches(self.rng, self.n, self.world * self.batch_size)
            losses, seen = 0.0, 0
            for s, batch in enumerate(batches, 1):
                loss = self.step(batch, lr)
                losses += loss * len(batch)
                seen += len(batch)
                if on_step is not None:
                    on_step(self.epoch, s, len(batches), losses / seen)
            self.epoch += 1
            if self.world > 1:
                self.resync()
            means.append(losses / seen)
        return means

    def params(self, rank: int = 0) -> dict[str, np.ndarray]:
        """Replica ``rank``'s parameters as host arrays."""
        return self._collect([self.replicas[rank].params.remote()], [rank], "returning its parameters")[0]

    def all_params(self) -> list[dict[str, np.ndarray]]:
        return self._all([r.params.remote() for r in self.replicas], "returning its parameters")

    def state(self) -> dict[str, np.ndarray]:
        """The non-trained state (batch-norm running statistics), averaged over the replicas."""
        states = self._all([r.state_arrays.remote() for r in self.replicas], "returning its state")
        return {n: np.mean([s[n] for s in states], axis=0).astype(states[0][n].dtype) for n in states[0]}

    def resync(self) -> None:
        """Copy rank 0's parameters, and the replicas' averaged state, to every replica."""
        params, state = self.params(0), self.state()
        refs = [r.set_params.remote(params) for r in self.replicas[1:]] + [r.set_state.remote(state)
                                                                            for r in self.replicas]
        self._collect(refs, [*range(1, self.world), *range(self.world)], "taking rank 0's parameters")

    def save_checkpoint(self, path: str, metadata: Optional[Mapping[str, Any]] = None) -> None:
        """Rank 0's parameters and optimizer with the averaged state, in opdispatch's checkpoint format
        (`opdispatch.save_checkpoint`), written atomically at ``path`` on the driver's machine."""
        meta = {"epoch": self.epoch, "devices": self.devices, "batch_size": self.batch_size, "seed": self.seed,
                **dict(metadata or {})}
        data = self._collect([self.replicas[0].checkpoint_bytes.remote(self.state(), meta)], [0],
                             "writing the checkpoint")[0]
        atomic_write(path, lambda fh: fh.write(data))

    def load_checkpoint(self, path: str) -> dict[str, Any]:
        """Continue every replica from the checkpoint at ``path`` (on the driver's machine): parameters,
        optimizer and state on each replica's device; the epoch counter and shuffling follow its
        ``epoch`` (``np.random.default_rng([seed, epoch])``, as ``train_cnn.py --resume``)."""
        with open(path, "rb") as fh:
            data = fh.read()
        metas = self._all([r.load_checkpoint_bytes.remote(data) for r in self.replicas], "loading the checkpoint")
        self.epoch = int(metas[0].get("epoch", 0))
        self.rng = np.random.default_rng([self.seed, self.epoch])
        return metas[0]

    def timed_steps(self, steps: int) -> float:
        """Seconds per step, the mean of ``steps`` steps from the current epoch's first batches."""
        batches = epoch_batches(np.random.default_rng(self.seed), self.n, self.world * self.batch_size)
        start = time.perf_counter()
        for i in range(steps):
            self.step(batches[i % len(batches)])
        return (time.perf_counter() - start) / steps

    def shutdown(self) -> None:
        """End the replicas' actors."""
        for r in self.replicas:
            self._ray.kill(r)
        self.replicas = []
