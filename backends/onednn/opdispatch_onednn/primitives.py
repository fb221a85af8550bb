"""oneDNN primitives over NumPy arrays: memory descriptors, a `Primitive` that runs on plain
(C-contiguous float32) arrays whatever layout its implementation prefers, and the per-signature cache.

A primitive descriptor is created with the layouts left to oneDNN (``format_tag_any``) where it allows
that; each argument whose chosen layout differs from the caller's plain one gets a reorder into (or out
of) a buffer of this thread's pool. Primitives are shared by all threads (oneDNN allows concurrent
execution; the scratchpad is user-managed, one per thread); memory objects, buffers and streams are
per thread.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections import OrderedDict
from ctypes import byref, c_char_p, c_void_p
from typing import Any, Callable, Hashable, Mapping, Optional, Sequence

import numpy as np
from opdispatch.backend import CHANNELS_LAST
from opdispatch_numpy import scratch

from . import library as L

CACHE_LIMIT = 512
"""Primitives remembered (per signature) before the least recently used is dropped."""


def dims(values: Sequence[int]) -> Any:
    """A dnnl_dims_t holding ``values``."""
    return L.Dims(*values)


class MemoryDesc:
    """A memory descriptor this process created (destroyed with the object)."""

    def __init__(self, lib: L.Library, handle: c_void_p) -> None:
        self.lib, self.handle = lib, handle

    def __del__(self) -> None:
        try:
            self.lib.dnnl_memory_desc_destroy(self.handle)
        except Exception:  # noqa: BLE001 -- interpreter shutdown: the library may be gone
            pass


def plain(lib: L.Library, shape: Sequence[int]) -> MemoryDesc:
    """The f32 descriptor of a C-contiguous array of ``shape``."""
    strides, step = [], 1
    for d in reversed(shape):
        strides.append(step)
        step *= d
    md = c_void_p()
    L.check(lib.dnnl_memory_desc_create_with_strides(byref(md), len(shape), dims(shape), L.F32,
                                                     dims(list(reversed(strides)))), "dnnl_memory_desc_create")
    return MemoryDesc(lib, md)


def strided(lib: L.Library, shape: Sequence[int], strides: Sequence[int]) -> MemoryDesc:
    """The f32 descriptor of an array of ``shape`` with ``strides`` counted in elements."""
    md = c_void_p()
    L.check(lib.dnnl_memory_desc_create_with_strides(byref(md), len(shape), dims(shape), L.F32, dims(strides)),
            "dnnl_memory_desc_create")
    return MemoryDesc(lib, md)


def any_layout(lib: L.Library, shape: Sequence[int]) -> MemoryDesc:
    """An f32 descriptor of ``shape`` whose layout the primitive chooses."""
    md = c_void_p()
    L.check(lib.dnnl_memory_desc_create_with_tag(byref(md), len(shape), dims(shape), L.F32, L.FORMAT_ANY),
            "dnnl_memory_desc_create")
    return MemoryDesc(lib, md)


class Attr:
    """A primitive attribute: user-managed scratchpad, optionally an eltwise post-op ``(alg, alpha, beta)``
    applied to the result inside the primitive."""

    def __init__(self, lib: L.Library, eltwise: Optional[tuple[int, float, float]] = None) -> None:
        self.lib = lib
        self.handle = c_void_p()
        L.check(lib.dnnl_primitive_attr_create(byref(self.handle)), "dnnl_primitive_attr_create")
        L.check(lib.dnnl_primitive_attr_set_scratchpad_mode(self.handle, L.SCRATCHPAD_USER), "set_scratchpad_mode")
        if eltwise is not None:
            po = c_void_p()
            L.check(lib.dnnl_post_ops_create(byref(po)), "dnnl_post_ops_create")
            try:
                L.check(lib.dnnl_post_ops_append_eltwise(po, *eltwise), "append_eltwise")
                L.check(lib.dnnl_primitive_attr_set_post_ops(self.handle, po), "set_post_ops")
            finally:
                lib.dnnl_post_ops_destroy(po)

    def __del__(self) -> None:
        try:
            self.lib.dnnl_primitive_attr_destroy(self.handle)
        except Exception:  # noqa: BLE001
            pass


class PrimitiveDesc:
    """A primitive descriptor this process created (destroyed with the object)."""

    def __init__(self, lib: L.Library, create: Callable[[Any], int], what: str) -> None:
        self.lib = lib
        self.handle = c_void_p()
        L.check(create(byref(self.handle)), what)

    def md(self, arg: int) -> c_void_p:
        """The descriptor the primitive wants for execution argument ``arg`` (a zero descriptor when it
        takes none)."""
        return c_void_p(self.lib.dnnl_primitive_desc_query_md(self.handle, L.QUERY_EXEC_ARG_MD, arg))

    def impl(self) -> str:
        """The implementation oneDNN chose (``jit:avx512_core``, ``gemm:jit``...)."""
        out = c_char_p()
        L.check(self.lib.dnnl_primitive_desc_query(self.handle, L.QUERY_IMPL_INFO_STR, 0, byref(out)),
                "dnnl_primitive_desc_query")
        return (out.value or b"").decode()

    def __del__(self) -> None:
        try:
            self.lib.dnnl_primitive_desc_destroy(self.handle)
        except Exception:  # noqa: BLE001
            pass


def _create_primitive(lib: L.Library, pd: c_void_p) -> c_void_p:
    prim = c_void_p()
    L.check(lib.dnnl_primitive_create(byref(prim), pd), "dnnl_primitive_create")
    return prim


class _Reorder:
    """A reorder primitive from one descriptor to another."""

    def __init__(self, lib: L.Library, src: c_void_p, dst: c_void_p) -> None:
        self.lib = lib
        self.pd = PrimitiveDesc(lib, lambda out: lib.dnnl_reorder_primitive_desc_create(
            out, src, lib.engine, dst, lib.engine, None), "dnnl_reorder_primitive_desc_create")
        self.prim = _create_primitive(lib, self.pd.handle)

    def __del__(self) -> None:
        try:
            self.lib.dnnl_primitive_destroy(self.prim)
        except Exception:  # noqa: BLE001
            pass


class _Pool(threading.local):
    """This thread's reusable buffers, one per role (an execution argument's index), grown as needed."""

    def __init__(self) -> None:
        self.buffers: dict[int, tuple[np.ndarray, int]] = {}  # role -> (buffer, its aligned address)

    def new_bytes(self, role: int, nbytes: int) -> int:
        """What `get` would allocate for ``role`` (0 when its buffer is large enough)."""
        hit = self.buffers.get(role)
        return 0 if hit is not None and hit[0].nbytes >= nbytes + 64 else nbytes + 64

    def get(self, role: int, nbytes: int) -> int:
        """The 64-byte aligned address of at least ``nbytes`` bytes for ``role``."""
        hit = self.buffers.get(role)
        if hit is None or hit[0].nbytes < nbytes + 64:
            buf = np.empty(nbytes + 64, np.uint8)
            hit = self.buffers[role] = (buf, _aligned(buf))
        return hit[1]


def _aligned(buf: np.ndarray) -> int:
    """The first 64-byte aligned address in ``buf``."""
    addr = buf.ctypes.data
    return addr + (-addr % 64)


_POOL = _Pool()


class _Memory:
    """A memory object (no buffer of its own: its handle is set before each execution)."""

    def __init__(self, lib: L.Library, md: c_void_p) -> None:
        self.lib = lib
        self.handle = c_void_p()
        L.check(lib.dnnl_memory_create(byref(self.handle), md, lib.engine, None), "dnnl_memory_create")

    def __del__(self) -> None:
        try:
            self.lib.dnnl_memory_destroy(self.handle)
        except Exception:  # noqa: BLE001
            pass


def _exec_args(pairs: Sequence[tuple[int, c_void_p]]) -> Any:
    arr = (L.ExecArg * len(pairs))()
    for i, (arg, mem) in enumerate(pairs):
        arr[i].arg, arr[i].memory = arg, mem
    return arr


class _Bound:
    """One thread's memory objects and argument arrays for a `Primitive`, with the address each memory
    object was last given (a handle is set only when it changes: the pool's buffers, a weight's reordered
    copy and often a new output array have the address of the call before)."""

    def __init__(self, p: "Primitive") -> None:
        lib = p.lib
        self.user = {arg: _Memory(lib, md.handle) for arg, md in p.user_mds.items()}
        self.inner = {arg: _Memory(lib, p.pd.md(arg)) for arg in p.reordered}
        self.scratch = _Memory(lib, p.pd.md(L.ARG_SCRATCHPAD)) if p.scratch_bytes else None
        self.extra = {arg: _Memory(lib, p.pd.md(arg)) for arg in p.extra_bytes}
        main = [(arg, (self.inner.get(arg) or self.user[arg]).handle) for arg in p.user_mds]
        main += [(arg, m.handle) for arg, m in self.extra.items()]
        if self.scratch is not None:
            main.append((L.ARG_SCRATCHPAD, self.scratch.handle))
        self.args = _exec_args(main)
        self.nargs = len(main)
        self.reorders = {arg: _exec_args([(L.ARG_SRC, self.user[arg].handle), (L.ARG_DST, self.inner[arg].handle)])
                         if arg in p.inputs else
                         _exec_args([(L.ARG_SRC, self.inner[arg].handle), (L.ARG_DST, self.user[arg].handle)])
                         for arg in p.reordered}
        # what run() sets per call: the caller's arrays (a constant input's own memory is set by its
        # reorder only), the reordered constants' copies, and this thread's buffers (role, memory, size)
        self.per_call = [(arg, mem) for arg, mem in self.user.items() if arg not in p.constant]
        self.constants = [(arg, self.inner[arg]) for arg in p.constant]
        self.buffers = [(arg, mem, p.inner_bytes[arg]) for arg, mem in self.inner.items() if arg not in p.constant]
        self.buffers += [(arg + 0x10000, mem, p.extra_bytes[arg]) for arg, mem in self.extra.items()]
        if self.scratch is not None:
            self.buffers.append((L.ARG_SCRATCHPAD, self.scratch, p.scratch_bytes))
        self.addr: dict[int, int] = {}  # id(memory object) -> the address its handle holds
        # the reorders of each call: into the primitive's layout before it (inputs other than the
        # constants, whose copies are kept), out of it after (outputs)
        self.before = [(r.prim, self.reorders[arg]) for arg, r in p.reordered.items()
                       if arg in p.inputs and arg not in p.constant]
        self.after = [(r.prim, self.reorders[arg]) for arg, r in p.reordered.items() if arg not in p.inputs]


class Primitive:
    """A primitive for one call signature, run on plain float32 arrays.

    ``user_mds``: the plain descriptor of each argument the caller passes (inputs and outputs);
    ``inputs``: which of them it reads. Arguments the primitive wants in another layout are reordered
    through this thread's buffers; ``extra`` arguments (a pooling workspace) live in such buffers only.
    ``constant`` inputs (weights) are reordered once per source array: the copy is kept while that array
    lives (opdispatch's arrays are immutable; a tensor's data is never written after it is made).
    """

    def __init__(self, lib: L.Library, pd: PrimitiveDesc, user_mds: Mapping[int, MemoryDesc],
                 inputs: Sequence[int], extra: Sequence[int] = (), constant: Sequence[int] = ()) -> None:
        self.lib, self.pd, self.user_mds, self.inputs = lib, pd, dict(user_mds), frozenset(inputs)
        self.prim = _create_primitive(lib, pd.handle)
        self.reordered: dict[int, _Reorder] = {}
        self.inner_bytes: dict[int, int] = {}
        for arg, md in self.user_mds.items():
            want = pd.md(arg)
            if not lib.dnnl_memory_desc_equal(want, md.handle):
                self.reordered[arg] = (_Reorder(lib, md.handle, want) if arg in self.inputs
                                       else _Reorder(lib, want, md.handle))
                self.inner_bytes[arg] = lib.dnnl_memory_desc_get_size(want)
        self.extra_bytes = {arg: lib.dnnl_memory_desc_get_size(pd.md(arg)) for arg in extra}
        self.scratch_bytes = lib.dnnl_memory_desc_get_size(pd.md(L.ARG_SCRATCHPAD))
        self.impl = pd.impl()
        self._local = threading.local()
        self.constant = frozenset(a for a in constant if a in self.reordered and a in self.inputs)
        self._copies: dict[tuple[int, int], tuple[np.ndarray, int]] = {}  # (arg, id(source)) -> (the copy,
        # its aligned address)
        self.copies_made = 0  # reorders of constant inputs (a cache miss each)
        self.most_new_bytes = (sum(n + 64 for a, n in self.inner_bytes.items() if a not in self.constant)
                               + sum(n + 64 for n in self.extra_bytes.values()) + self.scratch_bytes + 64)
        # the most that this thread's buffers can add to a call's output (check_fits' common case)

    def check_fits(self, op: str, output_bytes: int) -> None:
        """Raise `NumPyOutOfMemoryError` (the NumPy backend's, honouring its limits) before anything is
        allocated when the outputs (``output_bytes``) and this thread's new buffers would not fit."""
        if output_bytes + self.most_new_bytes <= scratch.CHECK_BYTES:  # the common case, without the sums
            return
        parts = {"output": output_bytes,
                 "reordered copies": sum(_POOL.new_bytes(a, n) for a, n in self.inner_bytes.items()
                                         if a not in self.constant),
                 "workspace": sum(_POOL.new_bytes(a + 0x10000, n) for a, n in self.extra_bytes.items()),
                 "scratchpad": _POOL.new_bytes(L.ARG_SCRATCHPAD, self.scratch_bytes) if self.scratch_bytes else 0}
        needed = sum(parts.values())
        if needed <= scratch.CHECK_BYTES:
            return
        room = scratch.available_bytes()
        if room is not None and needed > room:
            what = ", ".join(f"{name} {size / 2**30:.2f} GiB" for name, size in parts.items() if size)
            raise scratch.NumPyOutOfMemoryError(
                f"{op}: the oneDNN kernel needs {needed / 2**30:.2f} GiB ({what}) but {room / 2**30:.2f} GiB of "
                f"memory is available; allowed: calls that fit (a smaller batch or image)")

    def _bound(self) -> _Bound:
        b = getattr(self._local, "bound", None)
        if b is None:
            b = self._local.bound = _Bound(self)
        return b

    def _constant_copy(self, arg: int, source: np.ndarray, b: _Bound, stream: c_void_p) -> int:
        """The address of ``source`` reordered for ``arg``: made (and waited for) on first use, then kept
        until ``source`` is garbage collected (its entry goes with it, so a live entry's id is that
        array's, whose data never moves)."""
        key = (arg, id(source))
        hit = self._copies.get(key)
        if hit is not None:
            return hit[1]
        copy = np.empty(self.inner_bytes[arg] + 64, np.uint8)
        lib = self.lib
        lib.dnnl_memory_set_data_handle(b.user[arg].handle, source.ctypes.data)
        lib.dnnl_memory_set_data_handle(b.inner[arg].handle, _aligned(copy))
        b.addr[id(b.inner[arg])] = _aligned(copy)
        L.check(lib.dnnl_primitive_execute(self.reordered[arg].prim, stream, 2, b.reorders[arg]), "reorder")
        L.check(lib.dnnl_stream_wait(stream), "dnnl_stream_wait")
        weakref.finalize(source, self._copies.pop, key, None)  # forget its copy with it
        self._copies[key] = (copy, _aligned(copy))
        self.copies_made += 1
        return _aligned(copy)

    def run(self, arrays: Mapping[int, np.ndarray]) -> None:
        """Execute with ``arrays`` (C-contiguous float32, one per argument of ``user_mds``; outputs are
        written in place) and wait for the result."""
        lib, b = self.lib, self._bound()
        set_handle, execute, addr = lib.dnnl_memory_set_data_handle, lib.dnnl_primitive_execute, b.addr
        stream = lib.stream()
        targets = [(mem, arrays[arg].ctypes.data) for arg, mem in b.per_call]
        targets += [(mem, self._constant_copy(arg, arrays[arg], b, stream)) for arg, mem in b.constants]
        targets += [(mem, _POOL.get(role, nbytes)) for role, mem, nbytes in b.buffers]
        for mem, a in targets:
            if addr.get(id(mem)) != a:
                set_handle(mem.handle, a)
                addr[id(mem)] = a
        for prim, args in b.before:
            L.check(execute(prim, stream, 2, args), "reorder")
        L.check(execute(self.prim, stream, b.nargs, b.args), "dnnl_primitive_execute")
        for prim, args in b.after:
            L.check(execute(prim, stream, 2, args), "reorder")
        L.check(lib.dnnl_stream_wait(stream), "dnnl_stream_wait")

    def __del__(self) -> None:
        try:
            self.lib.dnnl_primitive_destroy(self.prim)
        except Exception:  # noqa: BLE001
            pass


class Cache:
    """Primitives by call signature (thread-safe, least recently used dropped past `CACHE_LIMIT`).
    A signature oneDNN cannot implement is remembered with its reason."""

    def __init__(self, limit: int = CACHE_LIMIT) -> None:
        self.limit = limit
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.built = 0  # primitives created (a cache miss each)

    def get(self, key: Hashable, build: Callable[[], Any]) -> Any:
        """The primitive of ``key`` (built by ``build()`` on first use); `L.OneDNNError` when oneDNN
        cannot create it."""
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
        if hit is None:
            try:
                hit = build()
            except L.OneDNNError as exc:
                hit = exc
            with self._lock:
                self.built += 1
                self._items[key] = hit
                while len(self._items) > self.limit:
                    self._items.popitem(last=False)
        if isinstance(hit, L.OneDNNError):
            raise hit
        return hit

    def reason(self, key: Hashable, build: Callable[[], Any]) -> Optional[str]:
        """None when the primitive of ``key`` can be created, else why not (for ``supports()``)."""
        try:
            self.get(key, build)
        except L.OneDNNError as exc:
            return str(exc)
        return None

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


CACHE = Cache()


def contiguous(a: np.ndarray) -> np.ndarray:
    """``a`` as a C-contiguous float32 array (itself when it already is one)."""
    return a if a.flags.c_contiguous and a.dtype == np.float32 else np.ascontiguousarray(a, np.float32)


class Bounds:
    """Known bounds of arrays this provider made: ``record(a, m)`` says every value of ``a`` is finite with
    ``|value| <= m`` (a clip's result), ``of(a)`` returns that, else measures it (``max(a.max(), -a.min())``:
    NaN or inf when ``a`` holds one). Entries go with their arrays (thread-safe)."""

    def __init__(self) -> None:
        self._known: dict[int, tuple[float, Any]] = {}  # id(array) -> (bound, a weak reference to it)
        self._lock = threading.Lock()

    def record(self, a: np.ndarray, bound: float) -> None:
        key = id(a)
        # a weak reference whose callback forgets the entry when ``a`` goes (a replaced entry's reference
        # goes with it and never calls back); cheaper than weakref.finalize on every call
        with self._lock:
            self._known[key] = (bound, weakref.ref(a, functools.partial(self._forget, key)))

    def _forget(self, key: int, ref: Any = None) -> None:
        with self._lock:
            hit = self._known.get(key)
            if hit is not None and hit[1] is ref:
                del self._known[key]

    def of(self, a: np.ndarray) -> float:
        hit = self._known.get(id(a))
        if hit is not None:
            return hit[0]
        if a.size == 0:
            return 0.0
        with np.errstate(invalid="ignore"):
            return max(float(a.max()), -float(a.min()))


BOUNDS = Bounds()


PLAIN = "plain"
"""The layouts a primitive's user arrays come in: C-contiguous, or 4-D (N, C, H, W) stored as (N, H, W, C)."""


def layout_of(a: np.ndarray) -> Optional[str]:
    """`PLAIN` or `CHANNELS_LAST` for a float32 array stored that way (C-contiguous wins when it is
    both, as with one channel), else None (copy it first)."""
    if a.dtype != np.float32:
        return None
    if a.flags.c_contiguous:
        return PLAIN
    if a.ndim == 4 and a.transpose(0, 2, 3, 1).flags.c_contiguous:
        return CHANNELS_LAST
    return None


def accepted(a: np.ndarray) -> tuple[np.ndarray, str]:
    """``a`` and its layout when a primitive can read it as it is, else a C-contiguous copy and `PLAIN`."""
    layout = layout_of(a)
    return (a, layout) if layout is not None else (np.ascontiguousarray(a, np.float32), PLAIN)


def described(lib: L.Library, shape: Sequence[int], layout: str) -> MemoryDesc:
    """The f32 descriptor of an array of ``shape`` in ``layout``."""
    if layout == CHANNELS_LAST:
        n, c, h, w = shape
        return strided(lib, shape, (h * w * c, 1, w * c, c))
    return plain(lib, shape)


def empty(shape: Sequence[int], layout: str) -> np.ndarray:
    """A new float32 array of ``shape`` stored in ``layout``."""
    if layout == CHANNELS_LAST:
        n, c, h, w = shape
        return np.empty((n, h, w, c), np.float32).transpose(0, 3, 1, 2)
    return np.empty(tuple(shape), np.float32)
