"""Whole-model conformance: ONNX models run per device (eager and graph) against the float64 reference.

``opdispatch conformance --models [PATH ...]`` (`run_models`). The default set is the nine light
CNNs that ship in the onnx wheel (``onnx/backend/test/data/light/light_*.onnx``: AlexNet,
DenseNet-121, Inception v1 and v2, ResNet-50, ShuffleNet, SqueezeNet, VGG-19, ZFNet-512). Their
weights are ConstantOfShape nodes (every weight 0.02) plus a few stray trained tensors, which
would make every class tie; `seed_weights` replaces each float weight with seeded deterministic
values scaled by its role, so activations stay O(1) through any depth:

* convolution and Gemm/MatMul weights: He normal, std sqrt(2 / fan_in) (fan_in = C_in/groups *
  KH * KW, or the Gemm's inner dimension): a ReLU network keeps its activations' second moment;
* biases: N(0, 0.01^2); batch-norm scale and running variance U(0.8, 1.2), shift and running mean
  N(0, 0.05^2) (an affine map close to the identity); other float tensors N(0, 0.05^2);
* then the classifier's last linear layer is scaled so the logits have standard deviation 3 on the
  seeded input (`calibrate_logits`): residual sums grow the activations with depth, and a
  saturated softmax (top probability exactly 1.0 on every device) would check nothing.

The reference is the model converted to float64 (`OnnxModel.astype`) on the hidden ``reference:0``
device (every op's float64 reference kernel). Each device runs the float32 model eagerly and under
``od.function``.

Tolerance. One op in float32 with reduction length K is within ``SAFETY * eps * sqrt(K + 1)`` of its
float64 value, relative to its output's magnitude (the per-op bound of `tolerance`). A network of
n op calls accumulates at most the sum of these bounds when each layer passes a relative
perturbation of its input on with a gain near 1, which the scaling above arranges (He init keeps
the norms of the activations, batch norm is near the identity). So, with K_i taken from each op's
schema on the traced graph::

    rtol = SAFETY * eps(float32) * sum_i sqrt(K_i + 1)        atol = rtol * max |reference output|

and the comparison is ``|y - ref| <= atol + rtol * |ref|`` elementwise. Top-1 must agree too: the
report gives the reference's margin between its two largest outputs next to atol, so a near tie
(margin under 2 atol, where top-1 may rightly differ) is visible, not a silent pass or failure.
"""

from __future__ import annotations

import glob
import math
import os
import time
from dataclasses import asdict, dataclass
from typing import Any, Optional, Sequence, TextIO

import numpy as np
import opdispatch as od
from opdispatch.ops import OPS

from .tolerance import SAFETY

PASSED, FAILED, ERROR = "passed", "failed", "error"


def light_models() -> list[str]:
    """The paths of the light models shipped in the onnx wheel, sorted (empty without onnx)."""
    try:
        import onnx
    except ImportError:
        return []
    root = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
    return sorted(glob.glob(os.path.join(root, "light_*.onnx")))


def model_name(path: str) -> str:
    base = os.path.basename(path)
    base = base[:-5] if base.endswith(".onnx") else base
    return base[6:] if base.startswith("light_") else base


# --------------------------------------------------------------------------------------------
# Seeded weights
# --------------------------------------------------------------------------------------------

_PASS_THROUGH = ("Unsqueeze", "Reshape", "Identity", "Cast", "Squeeze", "Transpose")


def _role(name: str, consumers: dict, nodes_out: dict) -> tuple[str, Any, int]:
    """(op type, node, input index) of the first real consumer of value ``name``."""
    seen = 0
    while seen < 8:
        uses = consumers.get(name, [])
        if not uses:
            return "", None, -1
        node, idx = uses[0]
        if node.op_type in _PASS_THROUGH and idx == 0:
            name = node.output[0]
            seen += 1
            continue
        return node.op_type, node, idx
    return "", None, -1


def _attr(node: Any, key: str, default: Any) -> Any:
    from onnx import helper

    for a in node.attribute:
        if a.name == key:
            return helper.get_attribute_value(a)
    return default


def _weights(shape: tuple, role: tuple, rng: np.random.Generator) -> np.ndarray:
    op, node, idx = role
    if op == "Conv" and idx == 1 and len(shape) >= 3:
        fan_in = math.prod(shape[1:])
        return rng.normal(0.0, math.sqrt(2.0 / fan_in), shape)
    if op == "ConvTranspose" and idx == 1 and len(shape) >= 3:
        fan_in = shape[0] * math.prod(shape[2:]) // max(shape[0] // max(shape[1], 1), 1)
        return rng.normal(0.0, math.sqrt(2.0 / max(fan_in, 1)), shape)
    if op in ("Gemm", "MatMul") and idx in (0, 1) and len(shape) == 2:
        trans = _attr(node, "transB" if idx == 1 else "transA", 0) if op == "Gemm" else 0
        fan_in = shape[1] if (idx == 1 and trans) or (idx == 0 and not trans) else shape[0]
        return rng.normal(0.0, math.sqrt(2.0 / fan_in), shape)
    if op in ("Conv", "ConvTranspose", "Gemm") and idx == 2:
        return rng.normal(0.0, 0.01, shape)
    if op == "BatchNormalization":
        if idx in (1, 4):  # scale, running variance
            return rng.uniform(0.8, 1.2, shape)
        return rng.normal(0.0, 0.05, shape)  # shift, running mean
    if op == "Mul":  # a separate scale (DenseNet's and Inception v2's batch norms)
        return rng.uniform(0.8, 1.2, shape)
    return rng.normal(0.0, 0.05, shape)


def seed_weights(model: Any, seed: int = 0, initializers: bool = True) -> Any:
    """A copy of ONNX ``model`` whose ConstantOfShape weights (a float ConstantOfShape of a constant
    shape) become seeded initializers, and (``initializers``) whose float initializers are replaced
    too, each scaled by its role (see the module docstring). Deterministic in ``seed``."""
    import onnx
    from onnx import numpy_helper

    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    consumers: dict[str, list] = {}
    for node in graph.node:
        for i, name in enumerate(node.input):
            consumers.setdefault(name, []).append((node, i))
    inits = {t.name: t for t in graph.initializer}
    rng = np.random.default_rng(seed)
    replaced: dict[str, np.ndarray] = {}
    keep = []
    for node in graph.node:
        src = node.input[0] if node.input else ""
        if node.op_type == "ConstantOfShape" and src in inits:
            value = _attr(node, "value", None)
            dtype = numpy_helper.to_array(value).dtype if value is not None else np.dtype(np.float32)
            if dtype.kind == "f":
                shape = tuple(int(d) for d in numpy_helper.to_array(inits[src]).reshape(-1))
                replaced[node.output[0]] = _weights(shape, _role(node.output[0], consumers, {}), rng).astype(dtype)
                continue
        keep.append(node)
    if initializers:
        for t in graph.initializer:
            arr = numpy_helper.to_array(t)
            if arr.dtype.kind == "f" and arr.size > 1:
                replaced[t.name] = _weights(arr.shape, _role(t.name, consumers, {}), rng).astype(arr.dtype)
    del graph.node[:]
    graph.node.extend(keep)
    kept_inits = [t for t in graph.initializer if t.name not in replaced]
    del graph.initializer[:]
    graph.initializer.extend(kept_inits)
    for name in sorted(replaced):
        graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(replaced[name]), name))
    used = {n for node in graph.node for n in node.input}
    still = [t for t in graph.initializer if t.name in used or t.name in {o.name for o in graph.output}]
    del graph.initializer[:]
    graph.initializer.extend(still)
    names = {t.name for t in graph.initializer}
    inputs = [vi for vi in graph.input if vi.name not in set(replaced) and (vi.name in names or vi.name in used)]
    if out.ir_version < 4:  # IR 3: every initializer is also a graph input
        from onnx import helper

        listed = {vi.name for vi in inputs}
        inputs += [helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in graph.initializer
                   if t.name not in listed]
    del graph.input[:]
    graph.input.extend(inputs)
    return out


def sample_inputs(model: Any, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded N(0, 1) data for each input of ``model`` (an `od.onnx.OnnxModel`); symbolic dims are 1."""
    rng = np.random.default_rng(seed + 1)
    feeds = {}
    for spec in model.input_specs:
        shape = tuple(1 if d is None else d for d in (spec.shape or ()))
        dtype = spec.dtype or np.dtype(np.float32)
        feeds[spec.name] = rng.standard_normal(shape).astype(dtype)
    return feeds


# --------------------------------------------------------------------------------------------
# Running and comparing
# --------------------------------------------------------------------------------------------


@dataclass
class ModelResult:
    """One model on one device in one mode."""

    model: str
    device: str
    mode: str
    status: str
    max_abs: float = math.nan
    max_rel: float = math.nan
    atol: float = math.nan
    rtol: float = math.nan
    top1_agrees: Optional[bool] = None
    top1_margin: float = math.nan
    seconds: float = math.nan
    reference_seconds: float = math.nan
    ops: int = 0
    message: str = ""

    def as_json(self) -> dict:
        d = asdict(self)
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


def derived_tolerance(graph: Any, dtype: Any = np.float32) -> tuple[float, int]:
    """(rtol, op count) for a traced graph: SAFETY * eps * sum over its nodes of sqrt(K + 1)."""
    eps = float(np.finfo(np.dtype(dtype)).eps)
    total = 0.0
    for node in graph.nodes:
        schema = OPS.get(node.op)
        k = 1
        if schema is not None:
            metas = [None if v is None else od.TensorMeta(graph.values[v].shape, graph.values[v].dtype)
                     for v in node.inputs]
            try:
                k = max(int(schema.reduction_length(metas, dict(node.attrs))), 1)
            except Exception:  # a schema whose rule needs attributes the graph spells differently
                k = 1
        total += math.sqrt(k + 1) * (schema.tolerance_factor if schema is not None else 1.0)
    return SAFETY * eps * total, len(graph.nodes)


def _outputs(y: Any) -> list[np.ndarray]:
    return [np.asarray(t, dtype=np.float64) for t in (y if isinstance(y, tuple) else (y,))]


def _top1(values: np.ndarray) -> np.ndarray:
    flat = values.reshape(values.shape[0], -1) if values.ndim > 1 else values.reshape(1, -1)
    return np.argmax(flat, axis=1)


def _margin(values: np.ndarray) -> float:
    flat = values.reshape(values.shape[0], -1) if values.ndim > 1 else values.reshape(1, -1)
    if flat.shape[1] < 2:
        return math.inf
    part = np.sort(flat, axis=1)
    return float(np.min(part[:, -1] - part[:, -2]))


def _compare(got: list[np.ndarray], ref: list[np.ndarray], rtol: float) -> tuple[bool, float, float, float, bool,
                                                                                 float, str]:
    magnitude = max([1e-30] + [float(np.max(np.abs(r))) for r in ref if r.size])
    atol = rtol * magnitude
    ok, max_abs, max_rel, problem = True, 0.0, 0.0, ""
    for i, (g, r) in enumerate(zip(got, ref)):
        if g.shape != r.shape:
            return False, math.inf, math.inf, atol, False, math.nan, f"output {i} has shape {g.shape}, the " \
                                                                      f"reference {r.shape}"
        if not np.all(np.isfinite(g)):
            return False, math.inf, math.inf, atol, False, math.nan, f"output {i} has NaN or inf"
        diff = np.abs(g - r)
        max_abs = max(max_abs, float(diff.max(initial=0.0)))
        max_rel = max(max_rel, float((diff / np.maximum(np.abs(r), magnitude * 1e-3)).max(initial=0.0)))
        if np.any(diff > atol + rtol * np.abs(r)):
            ok, problem = False, f"output {i}: max abs error {max_abs:.3g} over the bound (atol {atol:.3g}, " \
                                 f"rtol {rtol:.3g})"
    agrees = bool(np.array_equal(_top1(got[0]), _top1(ref[0])))
    margin = _margin(ref[0])
    if not agrees:
        ok = False
        problem = problem or f"top-1 differs (the reference's margin {margin:.3g}, atol {atol:.3g})"
    return ok, max_abs, max_rel, atol, agrees, margin, problem


LOGIT_STD = 3.0
"""The spread the seeded weights give the logits of a classifier (see `calibrate_logits`)."""

_POSITIVE_HOMOGENEOUS = ("Relu", "GlobalAveragePool", "AveragePool", "MaxPool", "Reshape", "Flatten", "Dropout",
                         "Identity", "Squeeze", "Transpose")


def calibrate_logits(proto: Any, seed: int = 0) -> Any:
    """Scale the last linear layer before a final Softmax so that the logits' standard deviation on
    the seeded input is `LOGIT_STD`: deep seeded networks (residual sums add up) otherwise saturate
    the softmax at exactly 1.0, where every device agrees and nothing is checked. Scaling that
    layer's weight and bias scales the logits exactly (the ops between are positively homogeneous).
    Returns ``proto`` unchanged when the graph does not end in a Softmax fed that way."""
    import onnx
    from onnx import helper, numpy_helper

    graph = proto.graph
    producer = {o: n for n in graph.node for o in n.output}
    outs = [producer.get(o.name) for o in graph.output]
    if len(outs) != 1 or outs[0] is None or outs[0].op_type != "Softmax":
        return proto
    logits = outs[0].input[0]
    node = producer.get(logits)
    while node is not None and node.op_type in _POSITIVE_HOMOGENEOUS:
        node = producer.get(node.input[0])
    inits = {t.name: t for t in graph.initializer}
    if node is None or node.op_type not in ("Gemm", "Conv", "MatMul") or node.input[1] not in inits:
        return proto
    probe = onnx.ModelProto()
    probe.CopyFrom(proto)
    del probe.graph.output[:]
    probe.graph.output.append(helper.make_tensor_value_info(logits, onnx.TensorProto.FLOAT, None))
    m = od.onnx.load(probe, device="numpy:0", check=False)
    with np.errstate(all="ignore"):
        values = np.asarray(m(**sample_inputs(m, seed)), dtype=np.float64)
    std = float(values.std())
    if not math.isfinite(std) or std == 0.0:
        return proto
    factor = LOGIT_STD / std
    for name in node.input[1:3]:
        if name in inits:
            arr = numpy_helper.to_array(inits[name])
            inits[name].CopyFrom(numpy_helper.from_array((arr * factor).astype(arr.dtype), name))
    return proto


def prepare(path: str, seed: int = 0, light: Optional[bool] = None) -> Any:
    """Load ``path`` with seeded weights in place of its ConstantOfShape ones (and, for the light
    models, of its float initializers too): an `od.onnx.OnnxModel` with parameters on numpy:0."""
    proto = od.onnx.read_model(path)  # its external data read from beside it
    light = os.path.basename(path).startswith("light_") if light is None else light
    if light or any(n.op_type == "ConstantOfShape" for n in proto.graph.node):
        proto = calibrate_logits(seed_weights(proto, seed, initializers=light), seed)
    return od.onnx.load(proto, device="numpy:0")


def run_models(paths: Sequence[str], devices: Sequence[Any], modes: Sequence[str] = ("eager", "graph"),
               seed: int = 0, out: Optional[TextIO] = None) -> list[ModelResult]:
    """Every model of ``paths`` on every device of ``devices`` in every mode, against the float64
    reference; a progress line per model and device as they finish."""
    results: list[ModelResult] = []
    for n, path in enumerate(paths, 1):
        name = model_name(path)
        try:
            model = prepare(path, seed)
            feeds = sample_inputs(model, seed)
            ref_model = model.astype("float64").to("reference:0")
            start = time.perf_counter()
            with np.errstate(all="ignore"):
                ref = _outputs(ref_model(**{k: od.tensor(v.astype(np.float64) if v.dtype.kind == "f" else v,
                                                         device="reference:0") for k, v in feeds.items()}))
            ref_s = time.perf_counter() - start
            graph = od.function(model).graph(**{k: od.tensor(v, device="numpy:0") for k, v in feeds.items()},
                                             optimized=False)
            rtol, n_ops = derived_tolerance(graph)
        except Exception as exc:  # an import or reference failure: one error row per device and mode
            msg = f"{type(exc).__name__}: {exc}"
            for dev in devices:
                for mode in modes:
                    results.append(ModelResult(name, str(dev), mode, ERROR, message=msg))
            if out is not None:
                print(f"  [models {n}/{len(paths)}] {name:<18} error: {msg.splitlines()[0][:200]}", file=out,
                      flush=True)
            continue
        for dev in devices:
            try:
                m_dev = model.to(dev)
                inputs = {k: od.tensor(v, device=dev) for k, v in feeds.items()}
            except Exception as exc:
                for mode in modes:
                    results.append(ModelResult(name, str(dev), mode, ERROR, message=f"{type(exc).__name__}: {exc}"))
                continue
            for mode in modes:
                res = ModelResult(name, str(dev), mode, ERROR, rtol=rtol, reference_seconds=ref_s, ops=n_ops)
                try:
                    fn = m_dev if mode == "eager" else od.function(m_dev)
                    start = time.perf_counter()
                    with np.errstate(all="ignore"):
                        got = _outputs(fn(**inputs))
                    res.seconds = time.perf_counter() - start
                    ok, res.max_abs, res.max_rel, res.atol, res.top1_agrees, res.top1_margin, res.message = \
                        _compare(got, ref, rtol)
                    res.status = PASSED if ok else FAILED
                except Exception as exc:
                    res.message = f"{type(exc).__name__}: {exc}"
                results.append(res)
                if out is not None:
                    print(f"  [models {n}/{len(paths)}] {name:<18} {str(dev):<10} {mode:<5} {res.status:<6} "
                          f"max abs {res.max_abs:.2e} (atol {res.atol:.2e}) top-1 "
                          f"{'ok' if res.top1_agrees else 'DIFFERS' if res.top1_agrees is False else '-'} "
                          f"{res.seconds:6.2f} s (reference {ref_s:.1f} s)"
                          + (f"  {res.message.splitlines()[0][:160]}" if res.status != PASSED else ""),
                          file=out, flush=True)
    return results


TABLE_HEADS = ("model", "device", "mode", "status", "max abs", "max rel", "atol", "top-1", "margin", "seconds")
"""The columns of `table`; the first four are text (left-aligned), the others numbers (right-aligned)."""


def table(results: Sequence[ModelResult]) -> str:
    """The results as a text table, each column as wide as its longest entry (a long model name or
    device name does not run into the next column)."""
    rows = []
    for r in results:
        top = "-" if r.top1_agrees is None else ("ok" if r.top1_agrees else "DIFF")
        rows.append((r.model, r.device, r.mode, r.status, f"{r.max_abs:.2e}", f"{r.max_rel:.2e}", f"{r.atol:.2e}",
                     top, f"{r.top1_margin:.2e}", f"{r.seconds:.2f}"))
    widths = [max([len(h)] + [len(row[i]) for row in rows]) for i, h in enumerate(TABLE_HEADS)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if i < 4 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    head = line(TABLE_HEADS)
    return "\n".join([head, "-" * len(head)] + [line(row) for row in rows])
