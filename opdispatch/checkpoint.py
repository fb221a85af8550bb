"""Checkpoints: named tensors, optimizer state and metadata in one ``.npz`` file, without pickle.

The file is a plain NumPy ``.npz`` archive: every array is stored under ``params/<name>``,
``state/<name>`` (non-trained tensors such as batch-norm running statistics) or
``optimizer/<slot>/<param>``, and one ``meta.json`` entry (UTF-8 bytes) records the format
version, the names, shapes and dtypes, the optimizer's settings and user metadata. Loading uses
``allow_pickle=False`` and checks everything against ``meta.json`` before building a tensor, so
a tampered or truncated file is a `CheckpointError`, never code execution. Arrays are loaded
onto any device: a checkpoint written on one device loads on another.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Union

import numpy as np

from .device import Device
from .errors import OpDispatchError
from .optim import OPTIMIZERS, Optimizer
from .tensor import Tensor, tensor

FORMAT = "opdispatch-checkpoint"
VERSION = 1
_META = "meta.json"
_GROUPS = ("params", "state")
_FLOATS = ("float16", "float32", "float64")

PathLike = Union[str, "os.PathLike[str]"]


class CheckpointError(OpDispatchError, ValueError):
    """A checkpoint file that cannot be read: missing, malformed, tampered or of another version."""


@dataclass
class Checkpoint:
    """What `load_checkpoint` returns. ``optimizer`` is None when none was saved."""

    params: dict[str, Tensor]
    state: dict[str, Tensor] = field(default_factory=dict)
    optimizer: Optional[Optimizer] = None
    metadata: dict[str, Any] = field(default_factory=dict)


def _describe(arrays: Mapping[str, np.ndarray]) -> dict[str, dict]:
    return {k: {"shape": list(a.shape), "dtype": a.dtype.name} for k, a in arrays.items()}


def save_checkpoint(path: PathLike, params: Mapping[str, Tensor], *, state: Optional[Mapping[str, Tensor]] = None,
                    optimizer: Optional[Optimizer] = None, metadata: Optional[Mapping[str, Any]] = None) -> None:
    """Write ``params`` (and ``state``, ``optimizer``'s state, JSON-able ``metadata``) to ``path``.

    The file is written to a temporary name and renamed, so an interrupted save leaves the old
    checkpoint intact.
    """
    arrays: dict[str, np.ndarray] = {}
    for group, tensors in (("params", params), ("state", state or {})):
        for name, t in tensors.items():
            if not isinstance(t, Tensor):
                raise CheckpointError(f"save_checkpoint: {group} entry {name!r} is {type(t).__name__}; "
                                      f"allowed: od tensors")
            arrays[f"{group}/{name}"] = np.ascontiguousarray(t.numpy())
    opt_meta = None
    if optimizer is not None:
        opt_meta, slots = optimizer.state_dict()
        arrays.update({f"optimizer/{k}": np.ascontiguousarray(a) for k, a in slots.items()})
    try:
        meta_text = json.dumps({"format": FORMAT, "version": VERSION, "arrays": _describe(arrays),
                                "optimizer": opt_meta, "metadata": dict(metadata or {})}, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"save_checkpoint: argument 'metadata' is not JSON-able ({exc}); "
                              f"allowed: dicts, lists, strings, numbers, booleans and None") from exc
    path = os.fspath(path)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as fh:
        np.savez(fh, **{_META: np.frombuffer(meta_text.encode("utf-8"), dtype=np.uint8)}, **arrays)
    os.replace(tmp, path)


def _read(path: str) -> tuple[dict, dict[str, np.ndarray]]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            if _META not in npz.files:
                raise CheckpointError(f"load_checkpoint: {path} has no {_META}; allowed: files written by "
                                      f"od.save_checkpoint")
            raw = npz[_META]
            arrays = {k: npz[k] for k in npz.files if k != _META}
    except CheckpointError:
        raise
    except FileNotFoundError as exc:
        raise CheckpointError(f"load_checkpoint: no file {path}") from exc
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as exc:
        raise CheckpointError(f"load_checkpoint: {path} is not a readable checkpoint: {type(exc).__name__}: {exc}"
                              ) from exc
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise CheckpointError(f"load_checkpoint: {path}: {_META} is {raw.dtype} {raw.shape}; allowed: UTF-8 bytes")
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"load_checkpoint: {path}: {_META} is not valid JSON: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"load_checkpoint: {path} is not an opdispatch checkpoint (format "
                              f"{meta.get('format') if isinstance(meta, dict) else None!r})")
    if meta.get("version") != VERSION:
        raise CheckpointError(f"load_checkpoint: {path} has version {meta.get('version')!r}; allowed: {VERSION}")
    return meta, arrays


def _check_arrays(path: str, meta: dict, arrays: dict[str, np.ndarray]) -> None:
    declared = meta.get("arrays")
    if not isinstance(declared, dict) or set(declared) != set(arrays):
        extra = sorted(set(arrays) - set(declared or {}))
        missing = sorted(set(declared or {}) - set(arrays))
        raise CheckpointError(f"load_checkpoint: {path}: arrays do not match {_META} (unexpected {extra}, "
                              f"missing {missing})")
    for key, arr in arrays.items():
        want = declared[key]
        if not isinstance(want, dict) or list(arr.shape) != want.get("shape") or arr.dtype.name != want.get("dtype"):
            raise CheckpointError(f"load_checkpoint: {path}: {key!r} is {arr.dtype.name} {list(arr.shape)}, "
                                  f"{_META} says {want}")
        if arr.dtype.name not in _FLOATS:
            raise CheckpointError(f"load_checkpoint: {path}: {key!r} has dtype {arr.dtype.name}; allowed: {_FLOATS}")
        group = key.split("/", 1)[0]
        if group not in _GROUPS + ("optimizer",) or "/" not in key:
            raise CheckpointError(f"load_checkpoint: {path}: unknown entry {key!r}; allowed: params/<name>, "
                                  f"state/<name>, optimizer/<slot>/<param>")


def load_checkpoint(path: PathLike, device: Union[str, Device, None] = None) -> Checkpoint:
    """Read a checkpoint written by `save_checkpoint`, its tensors on ``device`` (default: the
    current device). The optimizer, when one was saved, is rebuilt with its settings and state
    over the loaded parameters."""
    path = os.fspath(path)
    meta, arrays = _read(path)
    _check_arrays(path, meta, arrays)
    dev = None if device is None else Device(device)
    groups: dict[str, dict[str, Tensor]] = {g: {} for g in _GROUPS}
    for key, arr in arrays.items():
        group, name = key.split("/", 1)
        if group in groups:
            groups[group][name] = tensor(arr, device=dev)
    optimizer = None
    opt_meta = meta.get("optimizer")
    if opt_meta is not None:
        cls = OPTIMIZERS.get(opt_meta.get("kind")) if isinstance(opt_meta, dict) else None
        settings = opt_meta.get("settings") if isinstance(opt_meta, dict) else None
        if cls is None or not isinstance(settings, dict):
            raise CheckpointError(f"load_checkpoint: {path}: optimizer state {opt_meta!r} is not understood; "
                                  f"allowed kinds: {sorted(OPTIMIZERS)}")
        try:
            optimizer = cls(groups["params"], **settings)
            optimizer.load_state_dict(opt_meta, {k.split("/", 1)[1]: a for k, a in arrays.items()
                                                 if k.startswith("optimizer/")})
        except (TypeError, OpDispatchError) as exc:
            raise CheckpointError(f"load_checkpoint: {path}: optimizer state does not fit: {exc}") from exc
    metadata = meta.get("metadata")
    return Checkpoint(params=groups["params"], state=groups["state"], optimizer=optimizer,
                      metadata=metadata if isinstance(metadata, dict) else {})
