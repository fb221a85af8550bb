"""Checkpoints: named tensors, optimizer state and metadata in one ``.npz`` file, without pickle.

The file is a plain NumPy ``.npz`` archive: every array is stored under ``params/<name>``,
``state/<name>`` (non-trained tensors such as batch-norm running statistics) or
``optimizer/<slot>/<param>``, and one ``meta.json`` entry (UTF-8 bytes) records the format
version, the names, shapes and dtypes, the optimizer's settings and user metadata. Loading never
unpickles and checks the file before reading it: only a regular file of at most `MAX_BYTES`
(``load_checkpoint(..., max_bytes=N)`` raises the limit), the zip directory against the file's
size, every ``.npy`` header against ``meta.json`` and its member's size, so a tampered,
truncated or hostile file is a `CheckpointError` naming the file and the part at fault, raised
before anything large is allocated (memory stays within about what the file holds), never code
execution. Arrays are loaded onto any device: a checkpoint written on one device loads on
another.

Saving is atomic (`opdispatch.files.atomic_write`): the file at ``path`` is the old checkpoint
or the new one, whole, even when the save is interrupted or several processes save at once.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Union

import numpy as np

from .device import Device
from .errors import OpDispatchError
from .files import (FileFault, Missing, SafeNpz, atomic_write, bad_member_name, check_json_size, check_shape,
                    loads_json, open_regular, short, size_limit)
from .optim import OPTIMIZERS, Optimizer
from .placement import current_placement
from .registry import registry
from .tensor import Tensor, tensor

FORMAT = "opdispatch-checkpoint"
VERSION = 1
MAX_BYTES = 8 * 2**30
"""The largest checkpoint file `load_checkpoint` reads (8 GiB) unless given ``max_bytes``;
assign to raise it for every call."""

MAX_STEPS = 2**63 - 1
"""The largest optimizer step count a checkpoint may hold (Adam raises its betas to it as floats)."""

_META = "meta.json"
_GROUPS = ("params", "state")
_FLOATS = ("float16", "float32", "float64")
_META_KEYS = {"format", "version", "arrays", "optimizer", "metadata"}
_OPT_KEYS = {"kind", "settings", "steps"}

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


def _entry(group: str, name: Any, t: Any) -> str:
    if not isinstance(name, str):
        raise CheckpointError(f"save_checkpoint: {group} name {name!r} is {type(name).__name__}; allowed: strings")
    key = f"{group}/{name}"
    problem = bad_member_name(key + ".npy")
    if problem:
        raise CheckpointError(f"save_checkpoint: {group} name {name!r} cannot be stored; {problem}")
    if not isinstance(t, Tensor):
        raise CheckpointError(f"save_checkpoint: {group} entry {name!r} is {type(t).__name__}; allowed: od tensors")
    if t.dtype.name not in _FLOATS:
        raise CheckpointError(f"save_checkpoint: {group} entry {name!r} has dtype {t.dtype.name}; "
                              f"allowed: {', '.join(_FLOATS)}")
    return key


def save_checkpoint(path: PathLike, params: Mapping[str, Tensor], *, state: Optional[Mapping[str, Tensor]] = None,
                    optimizer: Optional[Optimizer] = None, metadata: Optional[Mapping[str, Any]] = None) -> None:
    """Write ``params`` (and ``state``, ``optimizer``'s state, JSON-able ``metadata``) to ``path``.

    The file is written to a unique temporary name beside ``path``, fsynced and renamed over it,
    so ``path`` holds the old checkpoint or the new one, whole: an interrupted save (an
    exception, ``KeyboardInterrupt``) leaves the old file intact and no temporary behind, and of
    concurrent saves to one path the last to finish wins.
    """
    arrays: dict[str, np.ndarray] = {}
    for group, tensors in (("params", params), ("state", state or {})):
        if not isinstance(tensors, Mapping):
            raise CheckpointError(f"save_checkpoint: argument {group!r} is {type(tensors).__name__}; "
                                  f"allowed: a dict name -> tensor")
        for name, t in tensors.items():
            arrays[_entry(group, name, t)] = np.ascontiguousarray(t.numpy())
    opt_meta = None
    if optimizer is not None:
        if not isinstance(optimizer, Optimizer):
            raise CheckpointError(f"save_checkpoint: argument 'optimizer' is {type(optimizer).__name__}; "
                                  f"allowed: an od optimizer (od.SGD, od.Adam) or None")
        opt_meta, slots = optimizer.state_dict()
        arrays.update({f"optimizer/{k}": np.ascontiguousarray(a) for k, a in slots.items()})
    if metadata is not None and not isinstance(metadata, Mapping):
        raise CheckpointError(f"save_checkpoint: argument 'metadata' is {type(metadata).__name__}; "
                              f"allowed: a dict")
    try:
        meta_text = json.dumps({"format": FORMAT, "version": VERSION, "arrays": _describe(arrays),
                                "optimizer": opt_meta, "metadata": dict(metadata or {})}, sort_keys=True)
    except (TypeError, ValueError, RecursionError) as exc:
        raise CheckpointError(f"save_checkpoint: argument 'metadata' is not JSON-able ({exc}); "
                              f"allowed: dicts, lists, strings, numbers, booleans and None") from None
    meta_raw = meta_text.encode("utf-8")
    try:  # what could not be loaded back (too big, too deeply nested, too many values) is not written
        check_json_size(len(meta_raw), _META)
        loads_json(meta_text, _META)
    except FileFault as fault:
        raise CheckpointError(f"save_checkpoint: argument 'metadata' cannot be stored: {fault}; allowed: metadata "
                              f"within the limits load_checkpoint reads") from None
    meta_bytes = np.frombuffer(meta_raw, dtype=np.uint8)
    # every key holds a '/' (params/..., state/..., optimizer/...), so none is savez's allow_pickle
    atomic_write(os.fspath(path), lambda fh: np.savez(fh, **{_META: meta_bytes}, **arrays))  # type: ignore[arg-type]


def _key_problem(key: Any) -> Optional[str]:
    if not isinstance(key, str):
        return "allowed: string names"
    group, _, rest = key.partition("/")
    if group in _GROUPS and rest:
        return None
    if group == "optimizer" and "/" in rest and all(rest.split("/", 1)):
        return None
    return "allowed: params/<name>, state/<name>, optimizer/<slot>/<param>"


def _check_meta(meta: Any) -> None:
    """Every field of ``meta.json``, at every level, before any array is read."""
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        got = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise FileFault("file", f"is not an opdispatch checkpoint (format {short(got)} in {_META}; "
                                f"allowed: {FORMAT!r})")
    if meta.get("version") != VERSION or isinstance(meta.get("version"), bool):
        raise FileFault("file", f"has version {short(meta.get('version'))}; allowed: {VERSION}")
    if set(meta) != _META_KEYS:
        raise FileFault(_META, f"has keys {sorted(meta)[:20]}; allowed: {sorted(_META_KEYS)}")
    declared = meta["arrays"]
    if not isinstance(declared, dict):
        raise FileFault(f"{_META} 'arrays'", f"is {type(declared).__name__}; allowed: an object")
    for key, want in declared.items():
        where = f"{_META} 'arrays' entry {short(key)}"
        problem = _key_problem(key) or bad_member_name(key + ".npy")
        if problem:
            raise FileFault(where, f"unknown entry; {problem}")
        if not isinstance(want, dict) or set(want) != {"shape", "dtype"}:
            raise FileFault(where, f"is {short(want)}; allowed: an object with 'shape' and 'dtype'")
        check_shape(want["shape"], where)
        if want["dtype"] not in _FLOATS:
            raise FileFault(where, f"dtype {short(want['dtype'])}; allowed: {', '.join(_FLOATS)}")
    opt = meta["optimizer"]
    if opt is not None:
        where = f"{_META} 'optimizer'"
        if not isinstance(opt, dict) or set(opt) != _OPT_KEYS:
            raise FileFault(where, f"optimizer state {short(opt)} is not understood; allowed: null or an "
                                   f"object with {sorted(_OPT_KEYS)}")
        if not isinstance(opt["kind"], str) or opt["kind"] not in OPTIMIZERS:
            raise FileFault(where, f"optimizer state kind {short(opt['kind'])} is not understood; "
                                   f"allowed kinds: {sorted(OPTIMIZERS)}")
        settings = opt["settings"]
        if not isinstance(settings, dict) or not all(
                isinstance(v, (int, float)) and (v is not None) for v in settings.values()):
            raise FileFault(where, f"settings {short(settings)}; allowed: an object of numbers and booleans")
        steps = opt["steps"]
        if not isinstance(steps, int) or isinstance(steps, bool) or not 0 <= steps <= MAX_STEPS:
            raise FileFault(where, f"steps {short(steps)}; allowed: an int in [0, {MAX_STEPS}] "
                                   f"(opdispatch.checkpoint.MAX_STEPS)")
    if not isinstance(meta["metadata"], dict):
        raise FileFault(f"{_META} 'metadata'", f"is {type(meta['metadata']).__name__}; allowed: an object")


def _read(path: str, max_bytes: int) -> tuple[dict, dict[str, np.ndarray]]:
    fh, size = open_regular(path, max_bytes)
    with fh, SafeNpz(fh, size) as npz:
        keys = npz.keys()
        if _META not in keys:
            raise FileFault("file", f"has no {_META}; allowed: files written by od.save_checkpoint")

        def one_line(dtype: np.dtype, shape: tuple) -> None:
            if len(shape) != 1:
                raise FileFault(_META, f"is {dtype.name} {list(shape)}; allowed: UTF-8 bytes")
            check_json_size(shape[0], _META)  # before a byte of it is read

        raw = npz.array(_META, ("uint8",), one_line)
        try:
            text = raw.tobytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FileFault(_META, f"is not valid JSON: not UTF-8 ({exc})") from None
        meta = loads_json(text, _META)
        _check_meta(meta)
        declared = meta["arrays"]
        stored = [k for k in keys if k != _META]
        if set(declared) != set(stored):
            extra = sorted(set(stored) - set(declared))[:20]
            missing = sorted(set(declared) - set(stored))[:20]
            raise FileFault("file", f"arrays do not match {_META} (unexpected {extra}, missing {missing})")
        arrays = {}
        for key in stored:
            want = declared[key]

            def same(dtype: np.dtype, shape: tuple, key: str = key, want: dict = want) -> None:
                if list(shape) != want["shape"] or dtype.name != want["dtype"]:
                    raise FileFault(f"array {short(key)}", f"is {dtype.name} {list(shape)}, {_META} says {want}")

            arrays[key] = npz.array(key, _FLOATS, same)
    return meta, arrays


def _check_dtypes(path: str, arrays: Mapping[str, np.ndarray], device: Device) -> None:
    """Refuse, before any tensor is made, parameters and state in a dtype ``device`` does not
    compute in (optimizer slots take their parameter's dtype)."""
    allowed = registry().runtime(device).info.dtype_set
    bad = [f"{short(k)} ({a.dtype.name})" for k, a in arrays.items()
           if k.split("/", 1)[0] in _GROUPS and a.dtype not in allowed]
    if bad:
        names = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise CheckpointError(f"load_checkpoint: {path}: array{'s' if len(bad) > 1 else ''} {names}: dtype not "
                              f"supported on device {device}; allowed there: "
                              f"{', '.join(sorted(d.name for d in allowed))} (load onto another device with "
                              f"device=...); nothing was loaded")


def load_checkpoint(path: PathLike, device: Union[str, Device, None] = None, *,
                    max_bytes: Optional[int] = None) -> Checkpoint:
    """Read a checkpoint written by `save_checkpoint`, its tensors on ``device`` (default: the
    current device). The optimizer, when one was saved, is rebuilt with its settings and state
    over the loaded parameters.

    Files over ``max_bytes`` (default `MAX_BYTES`, 8 GiB) are refused unread; anything that is
    not such a checkpoint -- not a regular file, truncated, tampered, hostile -- is a
    `CheckpointError` naming the file and the part at fault. So are parameters or state in a dtype
    ``device`` does not compute in (float16 on a float32/float64-only device), before any tensor is made.
    """
    path = os.fspath(path)
    dev = None if device is None else Device(device)
    limit = size_limit(max_bytes, MAX_BYTES, "load_checkpoint", CheckpointError)
    try:
        meta, arrays = _read(path, limit)
    except Missing:
        raise CheckpointError(f"load_checkpoint: no file {path}") from None
    except FileFault as fault:
        where = f"{path}" if fault.part == "file" else f"{path}: {fault.part}:"
        raise CheckpointError(f"load_checkpoint: {where} {fault.what}") from None
    _check_dtypes(path, arrays, current_placement().device if dev is None else dev)
    groups: dict[str, dict[str, Tensor]] = {g: {} for g in _GROUPS}
    for key, arr in arrays.items():
        group, name = key.split("/", 1)
        if group in groups:
            groups[group][name] = tensor(arr, device=dev)
    optimizer = None
    opt_meta = meta["optimizer"]
    if opt_meta is not None:
        cls = OPTIMIZERS[opt_meta["kind"]]
        try:
            optimizer = cls(groups["params"], **opt_meta["settings"])
            optimizer.load_state_dict(opt_meta, {k.split("/", 1)[1]: a for k, a in arrays.items()
                                                 if k.startswith("optimizer/")})
        except (TypeError, ValueError, OverflowError, OpDispatchError) as exc:  # OverflowError: float(10**400)
            raise CheckpointError(f"load_checkpoint: {path}: {_META} 'optimizer': optimizer state does not fit: "
                                  f"{str(exc)[:300]}") from None
    return Checkpoint(params=groups["params"], state=groups["state"], optimizer=optimizer,
                      metadata=meta["metadata"])
