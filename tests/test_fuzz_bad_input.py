"""Bad input, fuzzed: every op gets random shapes, dtypes, array-likes and attribute values.

The contract under test (API.md, opdispatch/errors.py):

* a call either returns a result whose ``.shape`` / ``.dtype`` match the data it holds, whose dtype
  is the float dtype of its inputs and whose values match the op's float64 reference, or it
  raises an `od.OpDispatchError` subclass whose message starts with the op name;
* `od.KernelError` counts as a failure here: on the in-tree NumPy backend it means validation let
  through a call that NumPy itself rejected (a "ValueError from NumPy internals", wrapped);
* nothing is mutated by a call (inputs and attribute values compare equal before and after);
* every invalid-call category named by the issue raises the right class with a message naming the
  op, the argument, the value given and what is ``allowed``.

The hypothesis tests are derandomized and database-less so CI is deterministic.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import random

import opdispatch as od
from opdispatch.ops import OPS
from opdispatch.schema import TensorMeta
from opdispatch_conformance.cases import GENERATORS

F16, F32, F64 = np.dtype("float16"), np.dtype("float32"), np.dtype("float64")
I32, I64, BOOL = np.dtype("int32"), np.dtype("int64"), np.dtype("bool")
ALL_DTYPES = [F32, F64, F16, I64, I32, BOOL]
VALUE_ONLY_DTYPES = (np.dtype('int32'), np.dtype('int64'), np.dtype('bool'))
COMPUTE_DTYPES = (F16, F32, F64)  # numpy:0 computes float16 in float32

OP_NAMES = sorted(OPS)  # every op, backward and fused ones included

EXAMPLES_PER_OP = 150
FUZZ_SETTINGS = settings(max_examples=EXAMPLES_PER_OP, deadline=None, derandomize=True, database=None,
                         suppress_health_check=list(HealthCheck), print_blob=False)


def test_every_op_has_a_near_valid_call_to_fuzz():
    # a hand-written plan below where one sharpens the search (zero sizes, attribute forms), else the
    # conformance suite's random case generator of the op
    for name in OP_NAMES:
        assert name in PLANS or name in GENERATORS, name
        assert callable(od.op_function(name))


# ---------------------------------------------------------------------------------------------
# strategies: attribute values
# ---------------------------------------------------------------------------------------------

small = st.integers(-3, 8)
# Huge ints only where they cannot make a kernel allocate a huge (but allocatable) buffer:
# 2**62 and 2**70 overflow any allocation at once; mid-sized values (2**14...) are left out.
big = st.sampled_from([2**62, 2**70, -2**70])
JUNK = st.one_of(
    small,
    st.tuples(small, small),
    st.lists(small, max_size=5),
    st.tuples(st.tuples(small, small), st.tuples(small, small)),
    st.lists(st.lists(small, max_size=3), max_size=3),
    st.sampled_from(["SAME", "VALID", "same", "valid", "bogus", "", "full"]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.5, -0.5, 1e-5, 2.0, 0.0, 1.0]),
    st.none(),
    st.booleans(),
    st.sampled_from([np.int64(2), np.int32(-1), np.float32(0.5), np.bool_(True), np.array([1, 2]), np.array(2),
                     {}, {"a": 1}, b"SAME", 1j, (1.0, 2.0), (1, 2, 3), ((1, 1), (1,)), ((1, 2), (3, 4), (5, 6)),
                     (1, (2, 3)), ((-1, 0), (0, 0)), "0", (None, 1)]),
)
JUNK_BIG = st.one_of(JUNK, big, st.tuples(big, st.integers(1, 3)), st.lists(big, min_size=1, max_size=3))


def _rare(draw, chaos: int) -> bool:
    """True with probability ``chaos`` percent."""
    return chaos > 0 and draw(st.integers(0, 99)) < chaos


# ---------------------------------------------------------------------------------------------
# strategies: one near-valid call per op, then random mutations
# ---------------------------------------------------------------------------------------------

@dataclass
class Plan:
    """A near-valid call: one shape (or None) per schema input, and valid attribute values."""

    shapes: list
    attrs: dict
    junk: dict            # attr name -> strategy of junk values for it
    n_classes: int = 3    # label range for int inputs
    nonneg: tuple = ()    # input names whose values are drawn non-negative (running_var)


def _shape(draw, min_rank=0, max_rank=5, lo=0, hi=6):
    return tuple(draw(st.lists(st.integers(lo, hi), min_size=min_rank, max_size=max_rank)))


PADDINGS = st.sampled_from([0, 1, (1, 0), (0, 1), ((0, 1), (1, 0)), ((1, 1), (0, 0)), "SAME", "VALID", "same",
                            "valid", [1, 1], [[0, 1], [1, 0]]])


def plan_conv2d(draw):
    n, g, cpg, opg = (draw(st.integers(1, 3)) for _ in range(4))
    h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    kh, kw = draw(st.integers(1, h)), draw(st.integers(1, w))
    bias = (g * opg,) if draw(st.booleans()) else None
    attrs = {"stride": draw(st.sampled_from([1, 2, (1, 2), [2, 1], 3])),
             "padding": draw(PADDINGS),
             "dilation": draw(st.sampled_from([1, 1, (1, 1), 2, (2, 1)])),
             "groups": g}
    return Plan([(n, g * cpg, h, w), (g * opg, cpg, kh, kw), bias], attrs,
                {"stride": JUNK_BIG, "padding": JUNK, "dilation": JUNK_BIG, "groups": JUNK_BIG})


def _plan_pool(draw, with_dilation: bool):
    x = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 6)), draw(st.integers(1, 6)))
    k = draw(st.sampled_from([1, 2, 3, (1, 2), (2, 1), [2, 2]]))
    attrs = {"kernel_size": k,
             "stride": draw(st.sampled_from([None, 1, 2, (1, 2), 3])),
             "padding": draw(st.sampled_from([0, 0, 1, (1, 0), ((0, 1), (1, 0)), "SAME", "VALID", "same"])),
             "ceil_mode": draw(st.booleans())}
    junk = {"kernel_size": JUNK_BIG, "stride": JUNK_BIG, "padding": JUNK, "ceil_mode": JUNK}
    if with_dilation:
        attrs["dilation"] = draw(st.sampled_from([1, 1, 2, (1, 2)]))
        junk["dilation"] = JUNK_BIG
    else:
        attrs["count_include_pad"] = draw(st.booleans())
        junk["count_include_pad"] = JUNK
    return Plan([x], attrs, junk)


def plan_max_pool2d(draw):
    return _plan_pool(draw, True)


def plan_avg_pool2d(draw):
    return _plan_pool(draw, False)


def plan_batch_norm(draw):
    x = (draw(st.integers(1, 4)), draw(st.integers(1, 4))) + _shape(draw, 0, 2, 1, 4)
    c = (x[1],)
    training = draw(st.booleans())
    if training and x[0] * int(np.prod(x[2:])) < 2:
        x = (2,) + x[1:]
    attrs = {"training": training, "momentum": draw(st.sampled_from([0.1, 0.0, 1.0, 0.5, 1])),
             "eps": draw(st.sampled_from([1e-5, 1e-3, 0.5, 1]))}
    opt = [c if draw(st.booleans()) else None for _ in range(2)]
    return Plan([x, c, c] + opt, attrs, {"training": JUNK, "momentum": JUNK, "eps": JUNK},
                nonneg=("running_var",))


def plan_matmul(draw):
    m, k, n = (draw(st.integers(0, 4)) for _ in range(3))
    batch = _shape(draw, 0, 2, 1, 3)
    a = draw(st.sampled_from([(k,), batch + (m, k)]))
    b = draw(st.sampled_from([(k,), (k, n), batch[1:] + (k, n)]))
    return Plan([a, b], {}, {})


def plan_unary(draw):
    return Plan([_shape(draw)], {}, {})


def plan_binary(draw):
    a = _shape(draw, 0, 4)
    # a broadcastable partner: drop leading axes, set some axes to 1
    b = tuple(1 if draw(st.integers(0, 3)) == 0 else d for d in a[draw(st.integers(0, len(a))):])
    if draw(st.booleans()):
        a, b = b, a
    return Plan([a, b], {}, {})


def plan_reduce(draw):
    x = _shape(draw, 0, 4, 0, 5)
    nd = len(x)
    axis = draw(st.one_of(st.none(), st.integers(-nd, nd - 1) if nd else st.none(),
                          st.lists(st.integers(0, nd - 1), unique=True, max_size=nd).map(tuple) if nd else st.just(()),
                          st.just([])))
    return Plan([x], {"axis": axis, "keepdims": draw(st.booleans())}, {"axis": JUNK_BIG, "keepdims": JUNK})


def plan_reshape(draw):
    x = _shape(draw, 0, 4)
    size = int(np.prod(x))
    target = list(draw(st.permutations(list(x)))) if x else []
    if target and draw(st.booleans()):
        i = draw(st.integers(0, len(target) - 1))
        if target[i] != 0 and size:
            target[i] = -1
    shape = draw(st.sampled_from([tuple(target), list(target), size, (size,), (-1,)])) if size else tuple(target)
    return Plan([x], {"shape": shape}, {"shape": JUNK_BIG})


def plan_transpose(draw):
    x = _shape(draw, 0, 5)
    axes = draw(st.one_of(st.none(), st.permutations(list(range(len(x)))).map(tuple),
                          st.permutations(list(range(-len(x), 0))).map(list)))
    return Plan([x], {"axes": axes}, {"axes": JUNK_BIG})


def plan_flatten(draw):
    x = _shape(draw, 1, 5)
    return Plan([x], {"start_axis": draw(st.integers(-len(x), len(x) - 1))}, {"start_axis": JUNK_BIG})


def plan_softmax(draw):
    x = _shape(draw, 1, 4, 0, 5)
    return Plan([x], {"axis": draw(st.integers(-len(x), len(x) - 1))}, {"axis": JUNK_BIG})


def plan_xent(draw):
    n, c = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    return Plan([(n, c), (n,)], {}, {}, n_classes=c)


PLANS: dict[str, Callable] = {
    "conv2d": plan_conv2d, "max_pool2d": plan_max_pool2d, "avg_pool2d": plan_avg_pool2d,
    "batch_norm": plan_batch_norm, "matmul": plan_matmul,
    **{n: plan_unary for n in ("relu", "sigmoid", "tanh", "exp", "log", "sqrt", "neg")},
    **{n: plan_binary for n in ("add", "sub", "mul", "div")},
    **{n: plan_reduce for n in ("sum", "mean", "max")},
    "reshape": plan_reshape, "transpose": plan_transpose, "flatten": plan_flatten,
    "softmax": plan_softmax, "log_softmax": plan_softmax, "softmax_cross_entropy": plan_xent,
}

# inputs that are not arrays at all, or arrays no op accepts
JUNK_INPUTS = st.sampled_from([
    None, "abc", b"xy", {"a": 1}, [[1.0], [1.0, 2.0]], [1.0, "a"], np.array(["a", "b"]), np.array([1 + 2j]),
    np.array([1, 2], dtype=np.uint8), np.array(["2020-01-01"], dtype="datetime64[D]"), 1j, 10**400, -10**30,
    [10**30], np.array([object()]), 2**70, 2.5, 7, True, np.float32(1.5), np.int64(3), (), [],
])


@dataclass
class Call:
    name: str
    args: list
    attrs: dict

    def __repr__(self) -> str:
        def show(a):
            if isinstance(a, od.Tensor):
                return f"od.tensor({a.numpy().tolist()!r}, dtype='{a.dtype}')"
            if isinstance(a, np.ndarray):
                return f"np.array({a.tolist()!r}, dtype='{a.dtype}')"
            return repr(a)
        args = ", ".join(show(a) for a in self.args)
        kw = "".join(f", {k}={v!r}" for k, v in self.attrs.items())
        return f"od.{self.name}({args}{kw})"


def _values(rng, shape, dtype, kind, n_classes, nonneg, out_of_range):
    if kind == "int" and dtype.kind in "iu":
        lo, hi = (-2, n_classes + 3) if out_of_range else (0, n_classes)
        return rng.integers(lo, max(hi, lo + 1), size=shape).astype(dtype)
    if dtype == BOOL:
        return rng.random(size=shape) < 0.5
    if dtype.kind in "iu":
        return rng.integers(-5, 6, size=shape).astype(dtype)
    vals = rng.integers(0 if nonneg else -32, 33, size=shape) / 4.0  # quarters: exact in every float dtype
    return np.asarray(vals, dtype=dtype)


def _form(draw, arr: np.ndarray):
    form = draw(st.sampled_from(["numpy", "tensor", "list", "scalar"]))
    if form == "tensor":
        return od.tensor(arr)
    if form == "list":
        return arr.tolist()
    if form == "scalar" and arr.ndim == 0:
        return draw(st.sampled_from([arr.item(), arr[()]]))  # Python scalar (weak) or NumPy scalar
    return arr


def plan_from_generator(draw, name: str) -> Plan:
    """A near-valid call from the conformance suite's random case generator of ``name``."""
    case = GENERATORS[name](random.Random(draw(st.integers(0, 2**32 - 1))))
    labels = [i for i in case.inputs if i is not None and i.kind == "labels"]
    nonneg = tuple(spec.name for spec, i in zip(OPS[name].input_specs(len(case.inputs)), case.inputs)
                   if i is not None and i.kind == "uniform" and i.low >= 0)
    return Plan([None if i is None else i.shape for i in case.inputs], dict(case.attrs),
                {a: JUNK_BIG for a in OPS[name].attr_names}, n_classes=int(labels[0].high) if labels else 3,
                nonneg=nonneg)


@st.composite
def calls(draw, name: str) -> Call:
    schema = OPS[name]
    plan = PLANS[name](draw) if name in PLANS else plan_from_generator(draw, name)
    chaos = draw(st.sampled_from([0, 0, 8, 20, 50]))  # percent chance that each piece is mutated
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    fdtype = draw(st.sampled_from(COMPUTE_DTYPES))
    args = []
    for spec, shape in zip(schema.input_specs(len(plan.shapes)), plan.shapes):
        if shape is None:
            if _rare(draw, chaos):
                shape = _shape(draw, 0, 3)
            else:
                args.append(None)
                continue
        if _rare(draw, chaos):
            shape = _shape(draw)
        dtype = fdtype if spec.kind == "float" else I64
        if _rare(draw, chaos):
            dtype = draw(st.sampled_from(ALL_DTYPES))
        arr = _values(rng, shape, dtype, spec.kind, plan.n_classes, spec.name in plan.nonneg, _rare(draw, chaos))
        value = _form(draw, arr)
        if _rare(draw, chaos // 3):
            value = draw(JUNK_INPUTS)
        args.append(value)
    attrs = dict(plan.attrs)
    for key, junk in plan.junk.items():
        if _rare(draw, chaos):
            attrs[key] = draw(junk)
    return Call(name, args, attrs)


# ---------------------------------------------------------------------------------------------
# the oracle
# ---------------------------------------------------------------------------------------------

def _packed(schema, flat: list) -> list:
    """Flat inputs in the op function's argument form (a variadic input as one list)."""
    if not schema.variadic:
        return list(flat)
    fixed = len(schema.inputs) - 1
    return list(flat[:fixed]) + [list(flat[fixed:])]


def _is_weak_scalar(value) -> bool:
    return isinstance(value, (int, float, complex, bool)) and not isinstance(value, np.generic)


def _host_inputs(name: str, args: list) -> list:
    """The inputs as NumPy arrays, converted the way the op sees them (weak Python scalars take the
    float dtype of the tensor inputs, else of the NumPy float array inputs, as NumPy does;
    everything else keeps NumPy's dtype)."""
    schema = OPS[name]
    float_dtype = next((a.dtype for a in args if isinstance(a, od.Tensor) and a.dtype.kind == "f"), None)
    if float_dtype is None:
        float_dtype = next((a.dtype for a in args if isinstance(a, np.ndarray) and a.dtype.kind == "f"), None)
    out = []
    for spec, a in zip(schema.input_specs(len(args)), args):
        if a is None:
            out.append(None)
        elif isinstance(a, od.Tensor):
            out.append(a.numpy())
        elif _is_weak_scalar(a) and spec.kind == "value":
            # NumPy 2's weak scalars beside a value tensor: its dtype where the number's kind fits it
            like = next((b.dtype for sp, b in zip(schema.input_specs(len(args)), args)
                         if sp.kind == "value" and isinstance(b, (od.Tensor, np.ndarray))), None)
            fits = like is not None and (isinstance(a, bool) or (isinstance(a, int) and like.kind in "fiu")
                                         or (isinstance(a, float) and like.kind == "f"))
            out.append(_as_host(a, like if fits else None))
        elif _is_weak_scalar(a):
            out.append(_as_host(a, float_dtype if spec.kind == "float" else I64))
        else:
            out.append(_as_host(a))
    return out


def _as_host(a, dtype=None):
    """np.asarray as od converts data: without a dtype, Python floats (not NumPy data) give float32."""
    arr = np.asarray(a, dtype=dtype)
    if dtype is None and arr.dtype == np.float64 and not isinstance(a, (np.ndarray, np.generic)):
        arr = arr.astype(np.float32)
    return arr


def _snapshot(value):
    """A deep, comparable record of an input or attribute value."""
    if isinstance(value, od.Tensor):
        arr = value.numpy()
        return ("tensor", arr.dtype.str, arr.shape, arr.tobytes(), str(value.device))
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "O":
            return ("ndarray-object", value.shape, [id(v) for v in value.ravel()])
        return ("ndarray", value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [_snapshot(v) for v in value])
    if isinstance(value, dict):
        return ("dict", sorted((repr(k), _snapshot(v)) for k, v in value.items()))
    if isinstance(value, float) and value != value:
        return ("nan",)
    return ("value", type(value).__name__, repr(value))


COMPARISONS = ("equal", "not_equal", "less", "less_equal", "greater", "greater_equal")


def _number_kind(value) -> str:
    if isinstance(value, np.generic) or not isinstance(value, (bool, int, float)):
        return ""
    return "b" if isinstance(value, bool) else "i" if isinstance(value, int) else "f"


def _widened_by_a_number(args) -> bool:
    """A comparison of a bool or int tensor (or array) with a Python number of a wider kind."""
    if len(args) != 2:
        return False
    for t, n in (args, args[::-1]):
        kind = getattr(t, "dtype", np.dtype("float32")).kind
        if isinstance(t, (od.Tensor, np.ndarray)) and (kind == "b" and _number_kind(n) in ("i", "f")
                                                       or kind in "iu" and _number_kind(n) == "f"):
            return True
    return False


def _assert_close(name: str, got: np.ndarray, ref: np.ndarray, dtype: np.dtype, what: str) -> None:
    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if dtype == F16:  # the reference as float16 holds it: beyond 65504 it is inf
        with np.errstate(over="ignore"):
            ref = ref.astype(F16).astype(np.float64)
    assert got.shape == ref.shape, f"{what}: shape {got.shape} != reference {ref.shape}"
    nan_ref, nan_got = np.isnan(ref), np.isnan(got)
    assert np.array_equal(nan_ref, nan_got), f"{what}: NaN positions differ\n got={got}\n ref={ref}"
    inf_ref = np.isinf(ref)
    assert np.array_equal(inf_ref, np.isinf(got)) and np.array_equal(got[inf_ref], ref[inf_ref]), \
        f"{what}: inf positions differ\n got={got}\n ref={ref}"
    fin = np.isfinite(ref)
    if fin.any():
        scale = max(1.0, float(np.max(np.abs(ref[fin]))))
        tol = {F16: 2e-2, F32: 2e-3}.get(dtype, 1e-9)
        tol *= OPS[name].tolerance_factor
        assert np.allclose(got[fin], ref[fin], rtol=tol, atol=tol * scale), \
            f"{what}: values differ from the float64 reference\n got={got}\n ref={ref}"


def check_call(call: Call) -> Optional[od.OpDispatchError]:
    """Run ``call`` and check it against the contract; return the error it raised, if any."""
    name = call.name
    schema = OPS[name]
    before_args = [_snapshot(a) for a in call.args]
    before_attrs = _snapshot(call.attrs)
    fn = od.op_function(name)
    error = None
    result = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            result = fn(*_packed(schema, call.args), **call.attrs)
        except od.KernelError as exc:
            raise AssertionError(f"{call!r}: validation let through a call the NumPy kernel rejected "
                                 f"(KernelError): {exc}") from exc
        except od.OpDispatchError as exc:
            error = exc
        except Exception as exc:  # anything else is the bug this file hunts
            raise AssertionError(f"{call!r} raised {type(exc).__name__} (not an OpDispatchError): {exc}") from exc

    # nothing mutated, success or failure
    assert [_snapshot(a) for a in call.args] == before_args, f"{call!r} mutated an input"
    assert _snapshot(call.attrs) == before_attrs, f"{call!r} mutated an attribute value"

    if error is not None:
        msg = str(error)
        assert msg.startswith(f"{name}:"), f"{call!r}: message does not start with the op name: {msg!r}"
        if isinstance(error, od.InvalidArgumentError):  # ShapeError and DTypeError too
            names = [spec.name for spec in schema.inputs] + list(schema.attr_names)
            quoted = [f"'{n}'" for n in names] + [f"'{i.name}[" for i in schema.inputs if i.variadic]
            assert any(q in msg for q in quoted), f"{call!r}: message names no argument: {msg!r}"
            assert "allowed" in msg, f"{call!r}: message does not say what is allowed: {msg!r}"
        return error

    # a result: shapes, dtypes and values
    results = result if isinstance(result, tuple) else (result,)
    first = call.args[0] if call.args else None
    if name in ("sum", "mean") and isinstance(first, od.Tensor) and first.dtype.kind != "f":
        # od.sum / od.mean of an int or bool tensor: NumPy's count (int64) and fraction (a float)
        want = getattr(np, name)(first.numpy(), **call.attrs)
        (r,) = results
        assert r.shape == np.shape(want) and (r.dtype == np.int64 if name == "sum" else r.dtype.kind == "f"), \
            f"{call!r}: {r.dtype} {r.shape}, NumPy gives {np.asarray(want).dtype} {np.shape(want)}"
        np.testing.assert_allclose(r.numpy(), want, rtol=1e-12)
        return None
    if name in COMPARISONS and _widened_by_a_number(call.args):
        # a bool/int tensor beside a Python number of a wider kind: NumPy's promotion, NumPy's answer
        want = getattr(np, name)(*[a.numpy() if isinstance(a, od.Tensor) else a for a in call.args])
        (r,) = results
        assert r.dtype == np.bool_ and r.shape == want.shape, f"{call!r}: {r.dtype} {r.shape}"
        np.testing.assert_array_equal(r.numpy(), want)
        return None
    host = _host_inputs(name, call.args)
    # the compute dtype: the float inputs' (one dtype), or the value inputs' (float, int or bool) for
    # comparisons, where and argmax; outputs have it too, unless the schema says otherwise (bool, int64)
    specs = schema.input_specs(len(host))
    kinds = {spec.kind for spec, a in zip(specs, host) if a is not None}
    compute_kind = "float" if "float" in kinds else "value"
    float_dtypes = {a.dtype for spec, a in zip(specs, host) if a is not None and spec.kind == compute_kind}
    assert len(float_dtypes) == 1, f"{call!r} succeeded with {compute_kind} inputs of dtypes {float_dtypes}"
    (expected_dtype,) = float_dtypes
    allowed = COMPUTE_DTYPES if compute_kind == "float" else COMPUTE_DTYPES + VALUE_ONLY_DTYPES
    assert expected_dtype in allowed, f"{call!r} succeeded on dtype {expected_dtype}"
    if name == "dropout" and call.attrs.get("seed", None) is None:  # od.dropout drew a seed: a random mask
        assert all(r.shape == host[0].shape and r.dtype == expected_dtype for r in results), f"{call!r}"
        return None
    metas = [None if a is None else TensorMeta(a.shape, a.dtype) for a in host]
    nattrs = schema.normalize(call.attrs)
    outs, kattrs = schema.infer(name, metas, nattrs)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        refs = schema.reference(*host, **kattrs)
    refs = refs if isinstance(refs, tuple) else (refs,)
    assert len(results) == len(outs) == len(refs), f"{call!r}: {len(results)} results, {len(refs)} expected"
    for i, (r, meta, ref) in enumerate(zip(results, outs, refs)):
        what = f"{call!r} output {i}"
        assert isinstance(r, od.Tensor), f"{what} is {type(r).__name__}, not a Tensor"
        data = np.asarray(r)
        assert r.shape == data.shape, f"{what}: .shape {r.shape} but the data has shape {data.shape}"
        assert r.shape == tuple(meta.shape) == np.shape(ref), \
            f"{what}: shape {r.shape}, inferred {meta.shape}, reference {np.shape(ref)}"
        if compute_kind == "float":
            assert r.dtype == expected_dtype, f"{what}: dtype {r.dtype}, inputs are {expected_dtype}"
        assert r.dtype == meta.dtype, f"{what}: dtype {r.dtype}, inferred {meta.dtype}"
        assert data.dtype == r.dtype, f"{what}: .dtype {r.dtype} but the data is {data.dtype}"
        if r.dtype.kind == "f":
            _assert_close(name, data, ref, expected_dtype, what)
        else:  # bool and int results are exact
            assert np.array_equal(data, np.asarray(ref)), f"{what}: {data} differs from the reference {ref}"
    return None


@pytest.mark.parametrize("name", OP_NAMES)
@FUZZ_SETTINGS
@given(data=st.data())
def test_fuzz_op_raises_only_opdispatch_errors(name, data):
    assert od.get_device() == od.Device("numpy:0")
    call = data.draw(calls(name), label="call")
    check_call(call)


# ---------------------------------------------------------------------------------------------
# targeted, deterministic cases: one per error category
# ---------------------------------------------------------------------------------------------

def f32(*shape, fill=1.0):
    return np.full(shape, fill, dtype=np.float32)


def f64(*shape, fill=1.0):
    return np.full(shape, fill, dtype=np.float64)


@dataclass
class Bad:
    """An invalid call, the error class it must raise, and what its message must contain."""

    id: str
    op: str
    call: Callable[[], Any]
    args: tuple          # the call's inputs, for the no-mutation check
    exc: type
    arg_names: tuple     # at least one of these must appear quoted: 'name'
    values: tuple        # every one of these must appear in the message


def _bad(id, op, exc, arg_names, values, *args, **attrs) -> Bad:
    if isinstance(arg_names, str):
        arg_names = (arg_names,)
    return Bad(id, op, lambda: getattr(od, op)(*args, **attrs), args, exc, arg_names, values)


X4 = (1, 3, 5, 5)
BAD_CALLS = [
    # wrong rank
    _bad("conv2d-x-rank3", "conv2d", od.ShapeError, "x", ["(1, 3, 5)", "rank"], f32(1, 3, 5), f32(2, 3, 3, 3)),
    _bad("conv2d-w-rank2", "conv2d", od.ShapeError, "w", ["(2, 3)"], f32(*X4), f32(2, 3)),
    _bad("max_pool2d-x-rank3", "max_pool2d", od.ShapeError, "x", ["(3, 5, 5)"], f32(3, 5, 5), 2),
    _bad("avg_pool2d-x-rank5", "avg_pool2d", od.ShapeError, "x", ["(1, 1, 3, 5, 5)"], f32(1, 1, 3, 5, 5), 2),
    _bad("batch_norm-x-rank1", "batch_norm", od.ShapeError, "x", ["(3,)"], f32(3), f32(3), f32(3)),
    _bad("matmul-0d", "matmul", od.ShapeError, "a", ["()"], f32(), f32(3)),
    _bad("softmax_cross_entropy-logits-rank3", "softmax_cross_entropy", od.ShapeError, "logits", ["(2, 3, 1)"],
         f32(2, 3, 1), np.array([0, 1])),
    _bad("softmax-0d", "softmax", od.ShapeError, "x", ["()"], f32()),
    # channel mismatch
    _bad("conv2d-channel-mismatch", "conv2d", od.ShapeError, "w", ["(2, 4, 3, 3)", "3"], f32(*X4), f32(2, 4, 3, 3)),
    _bad("conv2d-bias-length", "conv2d", od.ShapeError, "bias", ["(3,)"], f32(*X4), f32(2, 3, 3, 3), f32(3)),
    _bad("batch_norm-running_mean-length", "batch_norm", od.ShapeError, "running_mean", ["(4,)"],
         f32(2, 3, 4, 4), f32(4), f32(3)),
    _bad("batch_norm-weight-length", "batch_norm", od.ShapeError, "weight", ["(2,)"],
         f32(2, 3), f32(3), f32(3), f32(2)),
    # groups
    _bad("conv2d-groups-3-of-4", "conv2d", od.ShapeError, "groups", ["3", "4"], f32(1, 4, 5, 5), f32(3, 1, 3, 3),
         groups=3),
    _bad("conv2d-groups-0", "conv2d", od.InvalidArgumentError, "groups", ["0"], f32(*X4), f32(3, 3, 3, 3), groups=0),
    # window larger than the padded input
    _bad("conv2d-kernel-7x7-on-3x3-pad1", "conv2d", od.ShapeError, ("w", "x", "padding"), ["7", "5"],
         f32(1, 1, 3, 3), f32(1, 1, 7, 7), padding=1),
    _bad("conv2d-dilated-kernel-too-large", "conv2d", od.ShapeError, ("w", "x", "dilation", "padding"), ["3"],
         f32(1, 1, 3, 3), f32(1, 1, 2, 2), dilation=3),
    _bad("max_pool2d-kernel-too-large", "max_pool2d", od.ShapeError, ("kernel_size", "x", "padding"), ["7", "5"],
         f32(1, 1, 3, 3), 7, padding=1),
    _bad("avg_pool2d-kernel-too-large", "avg_pool2d", od.ShapeError, ("kernel_size", "x", "padding"), ["4"],
         f32(1, 1, 3, 3), 4),
    _bad("max_pool2d-padding-ge-window", "max_pool2d", od.ShapeError, "padding", ["2"], f32(1, 1, 5, 5), 2,
         padding=2),
    # zero / negative stride or dilation
    _bad("conv2d-stride-0", "conv2d", od.InvalidArgumentError, "stride", ["0"], f32(*X4), f32(2, 3, 3, 3), stride=0),
    _bad("conv2d-stride-pair-neg", "conv2d", od.InvalidArgumentError, "stride", ["(1, -2)"], f32(*X4),
         f32(2, 3, 3, 3), stride=(1, -2)),
    _bad("conv2d-dilation--1", "conv2d", od.InvalidArgumentError, "dilation", ["-1"], f32(*X4), f32(2, 3, 3, 3),
         dilation=-1),
    _bad("max_pool2d-stride-0", "max_pool2d", od.InvalidArgumentError, "stride", ["0"], f32(*X4), 2, stride=0),
    _bad("max_pool2d-dilation-0", "max_pool2d", od.InvalidArgumentError, "dilation", ["0"], f32(*X4), 2, dilation=0),
    _bad("avg_pool2d-kernel-0", "avg_pool2d", od.InvalidArgumentError, "kernel_size", ["0"], f32(*X4), 0),
    # padding
    _bad("conv2d-padding-bogus", "conv2d", od.InvalidArgumentError, "padding", ["'bogus'", "SAME"], f32(*X4),
         f32(2, 3, 3, 3), padding="bogus"),
    _bad("conv2d-padding-negative", "conv2d", od.InvalidArgumentError, "padding", ["-1"], f32(*X4),
         f32(2, 3, 3, 3), padding=-1),
    _bad("avg_pool2d-padding-bogus", "avg_pool2d", od.InvalidArgumentError, "padding", ["'full'"], f32(*X4), 2,
         padding="full"),
    # bool attributes and floats
    _bad("avg_pool2d-count_include_pad-str", "avg_pool2d", od.InvalidArgumentError, "count_include_pad",
         ["'yes'"], f32(*X4), 2, count_include_pad="yes"),
    _bad("batch_norm-momentum-2", "batch_norm", od.InvalidArgumentError, "momentum", ["2.0"], f32(2, 3), f32(3),
         f32(3), momentum=2.0),
    _bad("batch_norm-eps-0", "batch_norm", od.InvalidArgumentError, "eps", ["0"], f32(2, 3), f32(3), f32(3), eps=0),
    _bad("batch_norm-training-1-sample", "batch_norm", od.ShapeError, "x", ["(1, 3)"], f32(1, 3), f32(3), f32(3),
         training=True),
    # integer input where floats are required
    _bad("conv2d-int-x", "conv2d", od.DTypeError, "x", ["int64"], np.ones(X4, dtype=np.int64), f32(2, 3, 3, 3)),
    _bad("relu-int32", "relu", od.DTypeError, "x", ["int32"], np.ones(3, dtype=np.int32)),
    _bad("relu-int-tensor", "relu", od.DTypeError, "x", ["int64"], od.tensor([1, 2])),
    _bad("sum-bool", "sum", od.DTypeError, "x", ["bool"], np.ones(3, dtype=bool)),
    _bad("add-int-list", "add", od.DTypeError, "a", ["int64"], [1, 2], [1, 2]),
    _bad("softmax_cross_entropy-float-labels", "softmax_cross_entropy", od.DTypeError, "labels", ["float64"],
         f64(2, 3), np.array([0.0, 1.0])),
    # dtype mismatch between inputs
    _bad("conv2d-f32-x-f64-w", "conv2d", od.DTypeError, "w", ["float64", "float32"], f32(*X4), f64(2, 3, 3, 3)),
    _bad("add-f32-tensor-f64-array", "add", od.DTypeError, "b", ["float64", "float32"], od.tensor(f32(3)), f64(3)),
    _bad("batch_norm-f64-running_var", "batch_norm", od.DTypeError, "running_var", ["float64"], f32(2, 3),
         f32(3), f64(3)),
    # labels out of range
    _bad("softmax_cross_entropy-label-5-of-3", "softmax_cross_entropy", od.InvalidArgumentError, "labels",
         ["5", "[0, 2]"], f32(2, 3), np.array([0, 5])),
    _bad("softmax_cross_entropy-label--1", "softmax_cross_entropy", od.InvalidArgumentError, "labels", ["-1"],
         f32(2, 3), [-1, 0]),
    _bad("softmax_cross_entropy-label-count", "softmax_cross_entropy", od.ShapeError, "labels", ["(3,)"],
         f32(2, 3), np.array([0, 1, 2])),
    # layout ops
    _bad("reshape-wrong-size", "reshape", od.ShapeError, "shape", ["(4, 4)", "6"], f32(2, 3), (4, 4)),
    _bad("reshape-two-minus-one", "reshape", od.InvalidArgumentError, "shape", ["(-1, -1)"], f32(2, 3), (-1, -1)),
    _bad("reshape-minus-one-unresolvable", "reshape", od.ShapeError, "shape", ["(4, -1)"], f32(2, 3), (4, -1)),
    _bad("transpose-repeated-axis", "transpose", od.InvalidArgumentError, "axes", ["(0, 0)"], f32(2, 3), (0, 0)),
    _bad("transpose-wrong-length", "transpose", od.InvalidArgumentError, "axes", ["(1, 0, 2)"], f32(2, 3), (1, 0, 2)),
    _bad("transpose-out-of-range", "transpose", od.InvalidArgumentError, "axes", ["5"], f32(2, 3), (0, 5)),
    _bad("flatten-start-axis-out-of-range", "flatten", od.InvalidArgumentError, "start_axis", ["3"], f32(2, 3), 3),
    # reductions and softmax axes
    _bad("sum-axis-out-of-range", "sum", od.InvalidArgumentError, "axis", ["5"], f32(2, 3), axis=5),
    _bad("sum-axis-negative-out-of-range", "sum", od.InvalidArgumentError, "axis", ["-3"], f32(2, 3), axis=-3),
    _bad("sum-duplicate-axes", "sum", od.InvalidArgumentError, "axis", ["(0, 0)"], f32(2, 3), axis=(0, 0)),
    _bad("mean-duplicate-axes-negative", "mean", od.InvalidArgumentError, "axis", ["[1, -1]"], f32(2, 3),
         axis=[1, -1]),
    _bad("max-axis-float", "max", od.InvalidArgumentError, "axis", ["1.0"], f32(2, 3), axis=1.0),
    _bad("max-empty-axis", "max", od.ShapeError, "x", ["(2, 0)"], f32(2, 0), axis=1),
    _bad("sum-keepdims-none", "sum", od.InvalidArgumentError, "keepdims", ["None"], f32(2, 3), keepdims=None),
    _bad("softmax-axis-out-of-range", "softmax", od.InvalidArgumentError, "axis", ["2"], f32(2, 3), axis=2),
    _bad("log_softmax-axis-bool", "log_softmax", od.InvalidArgumentError, "axis", ["True"], f32(2, 3), axis=True),
    # shapes that do not fit
    _bad("matmul-inner-mismatch", "matmul", od.ShapeError, ("a", "b"), ["(2, 3)", "(4, 5)"], f32(2, 3), f32(4, 5)),
    _bad("matmul-batch-mismatch", "matmul", od.ShapeError, ("a", "b"), ["(2, 2, 3)", "(3, 3, 4)"], f32(2, 2, 3),
         f32(3, 3, 4)),
    _bad("add-not-broadcastable", "add", od.ShapeError, ("a", "b"), ["(2, 3)", "(4,)"], f32(2, 3), f32(4)),
    _bad("div-not-broadcastable", "div", od.ShapeError, ("a", "b"), ["(2, 3)", "(2,)"], od.tensor(f32(2, 3)),
         od.tensor(f32(2))),
    # not array-like / missing
    _bad("conv2d-x-none", "conv2d", od.InvalidArgumentError, "x", ["None"], None, f32(2, 3, 3, 3)),
    _bad("relu-string", "relu", od.DTypeError, "x", ["<U3"], "abc"),
    _bad("relu-ragged", "relu", od.DTypeError, "x", ["list"], [[1.0], [1.0, 2.0]]),
    _bad("exp-complex", "exp", od.DTypeError, "x", ["complex128"], np.array([1 + 1j])),
]


@pytest.mark.parametrize("bad", BAD_CALLS, ids=[b.id for b in BAD_CALLS])
def test_invalid_call_raises_named_error(bad: Bad):
    before = [_snapshot(a) for a in bad.args]
    with pytest.raises(od.OpDispatchError) as info:
        bad.call()
    exc = info.value
    msg = str(exc)
    assert isinstance(exc, bad.exc), f"raised {type(exc).__name__}, expected {bad.exc.__name__}: {msg}"
    assert not isinstance(exc, od.KernelError), msg
    assert msg.startswith(f"{bad.op}:"), f"message does not start with the op name: {msg!r}"
    assert any(f"'{a}'" in msg for a in bad.arg_names), \
        f"message names none of the arguments {bad.arg_names} (quoted): {msg!r}"
    for value in bad.values:
        assert value in msg, f"message does not show the value {value!r}: {msg!r}"
    assert re.search(r"\ballowed\b", msg), f"message does not say what is allowed: {msg!r}"
    assert [_snapshot(a) for a in bad.args] == before, "a failed call mutated its inputs"


def test_error_classes_are_opdispatch_errors():
    for cls in (od.ShapeError, od.DTypeError, od.InvalidArgumentError, od.UnsupportedError, od.KernelError):
        assert issubclass(cls, od.OpDispatchError)


def test_failed_training_batch_norm_mutates_nothing():
    x, rm, rv = od.tensor(f32(1, 3)), od.tensor(f32(3, fill=0.5)), od.tensor(f32(3, fill=2.0))
    arrays = [f32(2, 3), f32(3, fill=0.5), f32(4, fill=2.0)]
    before = [_snapshot(a) for a in (x, rm, rv, *arrays)]
    with pytest.raises(od.ShapeError):
        od.batch_norm(x, rm, rv, training=True)
    with pytest.raises(od.ShapeError):
        od.batch_norm(*arrays, training=True)
    assert [_snapshot(a) for a in (x, rm, rv, *arrays)] == before


# ---------------------------------------------------------------------------------------------
# regressions: calls the fuzzer found (see the report in the issue); each goes through the same
# oracle as the fuzz test
# ---------------------------------------------------------------------------------------------

REGRESSIONS = [
    # softmax / log_softmax over an empty axis: NumPy's "zero-size array to reduction operation
    # maximum" surfaced as a KernelError instead of a ShapeError from shape inference
    Call("softmax", [np.ones((2, 0))], {}),
    Call("log_softmax", [np.ones((3, 0), dtype=np.float32)], {"axis": 1}),
    # a Python int too large for the dtype: OverflowError escaped from host_array
    Call("add", [od.tensor(f32(2)), 10**400], {}),
    Call("softmax_cross_entropy", [f64(1, 3), 10**30], {}),
    # a huge stride / dilation that the schema accepts overflowed as_strided in the conv kernel
    Call("conv2d", [f64(1, 1, 3, 3), f64(1, 1, 1, 1)], {"stride": 2**62}),
    Call("conv2d", [f64(1, 1, 3, 3), f64(1, 1, 1, 1)], {"dilation": 2**62}),
    # SAME padding of a huge window: a tiny output, but the kernels materialise the padding
    Call("max_pool2d", [f64(1, 1, 3, 3)], {"kernel_size": 2**62, "padding": "SAME"}),
    Call("conv2d", [f64(1, 1, 3, 3), f64(1, 1, 2, 2)], {"dilation": 2**62, "padding": "SAME"}),
    # reshape to dims NumPy cannot represent (their product overflows) passed inference
    Call("reshape", [f64(0)], {"shape": (2**62, 2**62, 0)}),
    Call("reshape", [f64(0)], {"shape": (2**70, -1)}),
]


@pytest.mark.parametrize("call", REGRESSIONS, ids=[repr(c)[:70] for c in REGRESSIONS])
def test_fuzz_regression(call: Call):
    check_call(call)


VALID_CALLS = [
    Call("conv2d", [f32(1, 4, 5, 5), f32(6, 2, 3, 3), f32(6)], {"groups": 2, "padding": "SAME", "stride": 2}),
    Call("max_pool2d", [f64(1, 2, 5, 5)], {"kernel_size": 3, "padding": 1, "ceil_mode": True}),
    Call("avg_pool2d", [f32(1, 2, 5, 5)], {"kernel_size": (2, 3), "padding": ((0, 1), (1, 0)),
                                           "count_include_pad": False}),
    Call("batch_norm", [od.tensor(f32(4, 3, 2)), f32(3), f32(3), None, f32(3)], {"training": True}),
    Call("matmul", [f64(3), f64(2, 3, 4)], {}),
    Call("add", [od.tensor(f32(2, 3)), 2.5], {}),
    Call("sum", [f64(2, 0, 3)], {"axis": 1}),
    Call("softmax_cross_entropy", [f32(2, 3), [0, 2]], {}),
]


@pytest.mark.parametrize("call", VALID_CALLS, ids=[repr(c)[:70] for c in VALID_CALLS])
def test_valid_calls_pass_the_oracle(call: Call):
    assert check_call(call) is None
