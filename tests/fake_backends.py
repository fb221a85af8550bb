"""In-process backend plugins for tests: a second CPU-like device with few kernels, and broken ones.

(The installed, entry-point-discovered third-party plugins live in tests/plugins/.)
"""

from __future__ import annotations


import numpy as np

from opdispatch import hookimpl
from opdispatch.backend import BackendInfo, BackendUnavailable, DeviceInfo, Kernel


class Box:
    """The 'mini' backend's array type, so tests can see where data lives."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = array

    @property
    def shape(self) -> tuple:
        return self.array.shape

    @property
    def dtype(self) -> np.dtype:
        return self.array.dtype


def _relu(x):
    return Box(np.maximum(x.array, 0))


def _add(a, b):
    return Box(a.array + b.array)


def _conv_no_groups(x, w, bias=None, *, stride, padding, dilation, groups):
    raise AssertionError("never called: supports() refuses it")


def _refuse_groups(metas, attrs):
    return "groups > 1 is not implemented" if attrs["groups"] > 1 else "only as a capability probe"


def make_plugin(name: str, kernels, devices=None, to_numpy=lambda data: data,
                from_numpy=lambda array: array) -> object:
    """A plugin object for backend ``name`` with these kernels. ``devices`` is a list of DeviceInfo or a
    callable that probes (and may raise); transfers default to identity on NumPy arrays."""

    class Plugin:
        @hookimpl
        def opdispatch_backend_info(self):
            return BackendInfo(name=name, version="9.9")

        @hookimpl
        def opdispatch_devices(self):
            return devices() if callable(devices) else (devices if devices is not None else [DeviceInfo(index=0)])

        @hookimpl
        def opdispatch_kernels(self):
            return kernels() if callable(kernels) else list(kernels)

        @hookimpl
        def opdispatch_from_numpy(self, array, device):
            return from_numpy(array)

        @hookimpl
        def opdispatch_to_numpy(self, data, device):
            return to_numpy(data)

    return Plugin()


def make_mini(name: str = "mini", dtypes=("float32",), n_devices: int = 2) -> object:
    """A plugin object: ``n_devices`` devices, relu and add only, arrays boxed in `Box`."""
    return make_plugin(
        name,
        [Kernel("relu", _relu, dtypes=dtypes), Kernel("add", _add, dtypes=dtypes),
         Kernel("conv2d", _conv_no_groups, dtypes=dtypes, supports=_refuse_groups)],
        devices=[DeviceInfo(index=i, name=f"{name} device {i}", dtypes=dtypes) for i in range(n_devices)],
        to_numpy=lambda data: np.array(data.array, copy=True),
        from_numpy=lambda array: Box(np.array(array, copy=True)))


def make_unavailable() -> object:
    """A plugin whose probe says the hardware is missing."""

    def probe():
        raise BackendUnavailable("no CUDA driver found")

    return make_plugin("nogpu", [], devices=probe)


def _raising_relu(x):
    raise IndexError("kernel bug")


BROKEN_KERNELS = {
    "bad-kernel": [Kernel("conv2d", lambda x, w: x)],
    "unknown-op": [Kernel("conv3d", lambda x: x)],
    "raising-kernel": [Kernel("relu", _raising_relu)],
}


def make_broken(kind: str) -> object:
    """Plugins broken in one way each: 'probe-crash', 'bad-kernel', 'unknown-op', 'unknown-hook',
    'missing-hook', 'bad-hook-args', 'raising-kernel'."""

    def probe():
        if kind == "probe-crash":
            raise RuntimeError("driver exploded")
        return [DeviceInfo(index=0)]

    plugin = make_plugin(f"broken-{kind}", BROKEN_KERNELS.get(kind, []), devices=probe)
    cls = type(plugin)
    if kind == "unknown-hook":
        cls.opdispatch_bogus = hookimpl(lambda self: None)
    if kind == "missing-hook":
        del cls.opdispatch_to_numpy
    if kind == "bad-hook-args":
        cls.opdispatch_kernels = hookimpl(lambda self, nonsense: [])
    return plugin


PRIMITIVES = ("add", "sub", "mul", "div", "neg", "exp", "log", "sqrt", "tanh", "erf", "pow", "relu", "relu_backward",
              "sum", "max", "max_backward", "reshape", "transpose", "broadcast_to", "matmul", "pad", "slice", "concat",
              "gather", "scatter_add", "softmax_cross_entropy", "softmax_cross_entropy_backward",
              "equal", "not_equal", "greater", "greater_equal", "where", "argmax", "argmin", "dropout", "cast")
"""The small primitive set of the ``prims`` test backend: elementwise, reductions, movement (gather and
scatter_add too), matmul, the loss, comparisons, dropout (its integer mask hash has no decomposition into
float ops) and cast. Every other op
it runs is a decomposition."""


def make_primitive_backend(name: str = "prims") -> object:
    """A float32/float64 backend with the NumPy kernels of `PRIMITIVES` only, its arrays wrapped in `Box`
    (so nothing can reach the NumPy backend's kernels by accident)."""
    import opdispatch_numpy.plugin as numpy_plugin

    def boxed(fn):
        def kernel(*args, **attrs):
            out = fn(*[a.array if isinstance(a, Box) else a for a in args], **attrs)
            return tuple(Box(np.asarray(o)) for o in out) if isinstance(out, tuple) else Box(np.asarray(out))
        kernel.__name__ = getattr(fn, "__name__", "kernel")
        return kernel

    def kernels():
        return [Kernel(k.op, boxed(k.fn), dtypes=tuple(d for d in k.dtypes if np.dtype(d).name != "float16"))
                for k in numpy_plugin.opdispatch_kernels()  # not the NumPy backend's float16 kernels
                if k.op in PRIMITIVES and k.dtype_set != {np.dtype("float16")}]

    return make_plugin(name, kernels, devices=[DeviceInfo(index=0, name="primitive ops only")],
                       to_numpy=lambda data: np.array(data.array, copy=True),
                       from_numpy=lambda array: Box(np.array(array, copy=True)))


FLOAT_ONLY_OPS = ("softmax_cross_entropy", "softmax_cross_entropy_backward", "add", "mul", "sum", "reshape",
                  "broadcast_to")
"""The ops of the ``f32only`` test backend: the loss and its backward (float logits beside int labels)
and what their gradients need around them; no argmax, so an int result can only come from elsewhere."""


def make_float_only(name: str = "f32only") -> tuple[object, list[np.dtype], list[tuple[str, ...]]]:
    """A float32-only backend (no integer dtype in `DeviceInfo.dtypes`, no integer kernel) with the NumPy
    kernels of `FLOAT_ONLY_OPS`, its arrays wrapped in `Box`. Returns the plugin, the dtypes its
    ``opdispatch_from_numpy`` received (in order) and the dtypes of the arrays each kernel call received."""
    import opdispatch_numpy.plugin as numpy_plugin

    received: list[np.dtype] = []
    kernel_inputs: list[tuple[str, ...]] = []

    def boxed(fn):
        def kernel(*args, **attrs):
            assert all(isinstance(a, Box) for a in args if a is not None), "a host array reached the kernel"
            kernel_inputs.append(tuple(a.array.dtype.name for a in args if a is not None))
            out = fn(*[None if a is None else a.array for a in args], **attrs)
            return tuple(Box(np.asarray(o)) for o in out) if isinstance(out, tuple) else Box(np.asarray(out))
        return kernel

    def from_numpy(array: np.ndarray) -> Box:
        received.append(array.dtype)
        return Box(np.array(array, copy=True))

    kernels = [Kernel(k.op, boxed(k.fn), dtypes=("float32",)) for k in numpy_plugin.opdispatch_kernels()
               if k.op in FLOAT_ONLY_OPS and np.dtype("float32") in k.dtype_set]
    plugin = make_plugin(name, kernels, devices=[DeviceInfo(index=0, name="float32 only", dtypes=("float32",))],
                         to_numpy=lambda data: np.array(data.array, copy=True), from_numpy=from_numpy)
    return plugin, received, kernel_inputs
