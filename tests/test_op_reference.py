"""``opdispatch ops``: generated from the op table, and its attribute forms true of what kernels receive (checked
against the kernel attributes of every conformance grid and random case)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from opdispatch import cli, op_reference
from opdispatch.attrs import KernelForm, to_int
from opdispatch.ops import OPS
from opdispatch.schema import Attr, TensorMeta
from opdispatch_conformance.suite import collect_cases


def test_every_attribute_of_every_op_has_a_kernel_form():
    missing = [(op, a.name) for op, s in OPS.items() for a in s.attrs if op_reference.kernel_form(op, a.name) is None]
    assert not missing, f"give these attributes a form (Attr(..., form=...) in their op's family module): {missing}"


def test_a_new_op_brings_its_attribute_forms_with_it(monkeypatch, capsys):
    """An op with an attribute of a new form needs nothing outside its own schema: the form declared
    beside the attribute is what `opdispatch ops` prints, and a shared normaliser brings its own."""
    times = KernelForm("an int in [0, 3]: how often to apply it", lambda v, m: isinstance(v, int) and 0 <= v <= 3)
    schema = dataclasses.replace(OPS["relu"], name="relu_n", attrs=(
        Attr("times", 1, lambda op, arg, v: to_int(op, arg, v, minimum=0), form=times),
        OPS["sum"].attrs[1]))  # keepdims: to_bool's form
    monkeypatch.setitem(OPS, "relu_n", schema)
    assert op_reference.kernel_form("relu_n", "times") is times
    assert cli.main(["ops", "--op", "relu_n", "--json"]) == 0
    forms = {a["name"]: a["kernel_form"] for a in json.loads(capsys.readouterr().out)["attributes"]}
    assert forms == {"times": times.text, "keepdims": "a bool"}


def test_kernel_forms_hold_for_every_conformance_case():
    checked: set[tuple[str, str]] = set()
    wrong = []
    for case in collect_cases(random_per_op=3, onnx=False):
        schema = OPS[case.op]
        arrays = case.make_inputs("float32")
        metas = [None if a is None else TensorMeta(a.shape, a.dtype) for a in arrays]
        _, kernel_attrs = schema.infer(schema.name, metas, schema.normalize(case.attrs))
        for name, value in kernel_attrs.items():
            form = op_reference.kernel_form(case.op, name)
            assert form is not None
            checked.add((case.op, name))
            if not form.check(value, metas):
                wrong.append(f"{case.name}: {name}={value!r} is not {form.text!r}")
    assert not wrong, "\n".join(wrong[:20])
    every = {(op, a.name) for op, s in OPS.items() for a in s.attrs}
    assert len(checked) > 0.9 * len(every), sorted(every - checked)


def test_forms_reject_what_kernels_never_receive():
    metas = [TensorMeta((2, 3, 4), None)]
    assert not op_reference.kernel_form("sum", "axis").check((2, 0), metas)  # unsorted
    assert not op_reference.kernel_form("sum", "axis").check((-1,), metas)  # negative
    assert not op_reference.kernel_form("conv2d", "padding").check("SAME", metas)  # resolved before the kernel
    assert not op_reference.kernel_form("max_pool2d", "stride").check(None, metas)  # None means kernel_size
    assert not op_reference.kernel_form("pad", "pads").check(((1, 1),), metas)  # one pair per axis


def test_entries_come_from_the_op_table():
    entries = op_reference.all_ops()
    assert [e["name"] for e in entries] == list(OPS)
    conv = op_reference.describe("conv2d")
    assert conv["kernel_signature"] == "conv2d(x, w, bias=None, *, stride, padding, dilation, groups)"
    assert conv["gradient_calls"][:2] == ["conv2d_backward_input", "conv2d_backward_weight"]
    assert conv["decomposition"] == list(OPS["conv2d"].decomposition.uses)
    assert op_reference.describe("concat")["kernel_signature"] == "concat(*tensors, axis)"
    assert op_reference.describe("relu_backward")["in_the_gradient_of"][:1] == ["abs"]
    assert "relu" in op_reference.describe("relu_backward")["in_the_gradient_of"]
    assert op_reference.describe("argmax")["differentiable"] is False
    assert op_reference.describe("softmax_cross_entropy")["inputs"][1]["kind"] == "int"


def test_every_backward_op_is_called_by_some_gradient_rule():
    backward = [op for op in OPS if "_backward" in op]
    assert len(backward) >= 9
    assert all(op_reference.describe(op)["in_the_gradient_of"] for op in backward)


def test_ops_command_text_and_json(capsys):
    assert cli.main(["ops"]) == 0
    out = capsys.readouterr().out
    assert all(f"\n{op}  [" in "\n" + out for op in OPS)
    assert cli.main(["ops", "--op", "max_pool2d", "--json"]) == 0
    entry = json.loads(capsys.readouterr().out)
    assert entry["name"] == "max_pool2d"
    forms = {a["name"]: a["kernel_form"] for a in entry["attributes"]}
    assert "None arrives as kernel_size" in forms["stride"] and "SAME" in forms["padding"]
    assert cli.main(["ops", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == len(OPS)


def test_ops_command_unknown_op(capsys):
    assert cli.main(["ops", "--op", "conv3d"]) == 2
    assert "unknown op 'conv3d'" in capsys.readouterr().err


@pytest.mark.parametrize("op", ["sum", "transpose", "slice"])
def test_text_names_every_attribute(op):
    text = op_reference.text(op_reference.describe(op))
    assert all(f"attr {a.name} " in text for a in OPS[op].attrs)
