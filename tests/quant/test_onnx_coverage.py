"""The README's table of ONNX ops in float models stays true: every op it lists has an importer handler,
every handler is listed, and each hwsim op quantizes the way the table says (integer under every
semantics, TFLite's int8 kernel only under TFLite semantics with 8-bit activations, or a float island)."""

import re
from pathlib import Path

import pytest

from hwsim.importers.onnx_file import _Builder
from hwsim.importers.onnx_float import FLOAT_NODES
from hwsim.numerics.semantics import get_semantics
from hwsim.quant.coverage import integer_kernel
from hwsim.runtime.float_exec import FLOAT_OPS
from hwsim.workload.graph import Op

README = Path(__file__).resolve().parents[2] / "README.md"
#: Builder handlers of quantized (QOperator / QDQ / integer) nodes only: not part of a float model's table
QUANTIZED_ONLY = {"QuantizeLinear", "DequantizeLinear", "ConvInteger", "MatMulInteger", "QGemm"}


def table_rows() -> list[tuple[list[str], list[str], str, str]]:
    """(ONNX op types, hwsim kinds, quantized status, the ONNX cell's parenthesis) per README table row."""
    text = README.read_text(encoding="utf-8")
    start = text.index("| ONNX op | hwsim op | quantized |")
    rows = []
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        onnx_cell, kinds, status = (c.strip() for c in line.strip("|").split("|"))
        note = re.search(r"\((.*)\)", onnx_cell)
        ops = [o.strip() for o in re.sub(r"\(.*\)", "", onnx_cell).split(",")]
        kinds = [k.strip() for k in re.split(r",|/", kinds)]
        rows.append((ops, kinds, status, note.group(1) if note else ""))
    return rows


def handled() -> set[str]:
    """ONNX op types a float model may hold that the importer turns into hwsim ops."""
    own = {name[1:] for name in dir(_Builder) if re.fullmatch(r"_[A-Z][A-Za-z]+", name)}
    return (set(FLOAT_NODES) | own) - QUANTIZED_ONLY - {n for n in own if n.startswith(("QLinear", "Q"))}


def test_every_listed_op_is_handled_and_every_handler_listed():
    listed = {op for ops, _, _, _ in table_rows() for op in ops}
    assert listed == handled()


@pytest.mark.parametrize("ops, kinds, status, note", table_rows(), ids=lambda v: str(v)[:40])
def test_each_kind_quantizes_as_the_table_says(ops, kinds, status, note):
    tflite, onnx = get_semantics("tflite-reference"), get_semantics("onnx-reference")
    for kind in kinds:
        assert kind in FLOAT_OPS, kind  # every kind runs in float (calibration, fake quant, islands)
        if kind == "batchnorm":
            assert status == "folded into the conv before it"
            continue
        op = Op("x", kind, ["a"], ["y"], {"mode": "nearest" if "nearest" in note else "linear"})
        got = (integer_kernel(op, tflite, 8), integer_kernel(op, onnx, 8), integer_kernel(op, tflite, 16))
        want = {
            "integer": (True, True, True),
            "integer, TFLite": (True, False, False),
            "float island": (False, False, False),
        }[status]
        assert got == want, (kind, status)
