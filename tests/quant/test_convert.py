"""Conversion to integer graphs: run_graph executes them, at any bit-width, with the recipe's register."""

import numpy as np
import pytest

from hwsim.accuracy.datasets import digits_split
from hwsim.numerics.ops import Accumulator
from hwsim.paths import data_dir
from hwsim.quant.convert import qname, quantize_model
from hwsim.quant.graph_io import load_integer_graph, save_integer_graph
from hwsim.quant.recipe import QuantRecipe
from hwsim.runtime.execute import run_graph

CNN = data_dir("workloads") / "digits_cnn_bn.onnx"
DSCONV = data_dir("workloads") / "digits_dsconv.onnx"


@pytest.fixture(scope="module")
def data():
    """Calibration inputs and 128 test samples of the digits split."""
    test = digits_split("test")
    return digits_split("calibration").x, test.x[:128], test.y[:128]


def _recipe(**fields):
    return QuantRecipe.model_validate(fields)


def test_integer_graph_is_integer_between_quantize_and_dequantize(data):
    """Every tensor between the input's quantize op and the output's dequantize op holds integer codes."""
    cal, x, _ = data
    qm = quantize_model(CNN, _recipe(), cal)
    g = qm.integer_graph
    assert g.ops[0].kind == "quantize" and g.ops[-1].kind == "dequantize"
    values = run_graph(g, [x], "tflite-reference")
    for op in g.ops[1:-1]:
        assert np.issubdtype(values[op.outputs[0]].dtype, np.integer), op.name
    assert values[g.outputs[0]].dtype == np.float32


@pytest.mark.parametrize("wbits,abits", [(8, 8), (4, 8), (2, 8), (4, 4), (8, 16)])
def test_codes_stay_in_each_formats_range(data, wbits, abits):
    """Weights and activations hold codes of their own width (4-bit activations in [-8, 7], ...)."""
    cal, x, _ = data
    qm = quantize_model(DSCONV, _recipe(weights={"bits": wbits}, activations={"bits": abits}), cal)
    values = run_graph(qm.integer_graph, [x], "tflite-reference")
    lo, hi = -(1 << (abits - 1)), (1 << (abits - 1)) - 1
    for name in qm.tensors:
        v = values[qname(name)]
        assert lo <= v.min() and v.max() <= hi, name
    for lq in qm.layers.values():
        assert np.abs(lq.weight.values).max() <= (1 << (wbits - 1)) - 1


def test_accumulator_from_the_recipe_reaches_the_kernels(data):
    """A 12-bit saturating accumulator is set on the ops and changes the integer outputs; fake-quant cannot
    see it."""
    cal, x, _ = data
    wide = quantize_model(CNN, _recipe(), cal)
    narrow = quantize_model(CNN, _recipe(accumulator={"bits": 12, "overflow": "saturate"}), cal)
    op = next(o for o in narrow.integer_graph.ops if o.kind == "conv2d")
    assert op.attrs["accumulator"] == Accumulator("int12", "saturate")
    out = wide.graph.outputs[0]
    assert not np.array_equal(wide.run_integer(x)[out], narrow.run_integer(x)[out])
    assert np.array_equal(wide.run_fake_quant(x)[out], narrow.run_fake_quant(x)[out])


def test_prepared_layers_follow_edits_to_the_graph(data):
    """Layers prepared by one run are not reused once an op's accumulator is edited in place (as sweeps
    do)."""
    cal, x, _ = data
    qm = quantize_model(CNN, _recipe(), cal)
    g, out = qm.integer_graph, qm.integer_graph.outputs[0]
    wide = run_graph(g, [x], "tflite-reference")[out]
    assert np.array_equal(run_graph(g, [x], "tflite-reference")[out], wide)
    for op in g.ops:
        if op.kind in ("conv2d", "fully_connected"):
            op.attrs["accumulator"] = Accumulator("int12", "saturate")
    narrow = quantize_model(CNN, _recipe(accumulator={"bits": 12, "overflow": "saturate"}), cal)
    edited = run_graph(g, [x], "tflite-reference")[out]
    assert not np.array_equal(edited, wide)
    assert np.array_equal(edited, run_graph(narrow.integer_graph, [x], "tflite-reference")[out])


def test_prepared_layers_follow_reassigned_tensor_fields(data):
    """Layers prepared by one run are not reused once a tensor's weights or quantization are replaced."""
    cal, x, _ = data
    g = quantize_model(CNN, _recipe(), cal).integer_graph
    out = g.outputs[0]
    before = run_graph(g, [x], "tflite-reference")[out]
    conv = next(op for op in g.ops if op.kind == "conv2d")
    w_t = g.tensors[conv.inputs[1]]
    w_t.data = np.ascontiguousarray(-w_t.data)
    flipped = run_graph(g, [x], "tflite-reference")[out]
    assert not np.array_equal(flipped, before)
    fresh = quantize_model(CNN, _recipe(), cal).integer_graph
    fresh.tensors[conv.inputs[1]].data = np.ascontiguousarray(-fresh.tensors[conv.inputs[1]].data)
    assert np.array_equal(flipped, run_graph(fresh, [x], "tflite-reference")[out])


@pytest.mark.parametrize(
    "recipe",
    [
        {"weights": {"bits": 4, "granularity": "per_group", "group_size": 16}},
        {"weights": {"bits": 4, "scheme": "log2"}},
        {"weights": {"bits": 3, "scheme": "kmeans"}},
        {"weights": {"bits": 2, "scheme": "ternary"}},
        {"weights": {"bits": 8, "power_of_two": True}, "activations": {"power_of_two": True}},
        {"activations": {"dynamic": True}},
    ],
    ids=["per-group", "log2", "kmeans", "ternary", "pow2", "dynamic"],
)
def test_integer_path_agrees_with_fake_quant(data, recipe):
    """Integer and fake-quant logits differ by a few output steps at most (requantizer rounding), and
    their predictions agree on almost every sample."""
    cal, x, _ = data
    qm = quantize_model(CNN, _recipe(**recipe), cal)
    out = qm.graph.outputs[0]
    a, b = qm.run_integer(x)[out], qm.run_fake_quant(x)[out]
    step = float(qm.tensor_quant(out).scale) if not qm.dynamic else 1e-2  # dynamic: float outputs
    assert np.abs(a - b).max() <= 8 * step
    assert (a.argmax(1) == b.argmax(1)).mean() >= 0.97


def test_saved_graph_runs_to_the_same_codes(data, tmp_path):
    """An integer graph written to .npz and .json and read back gives identical outputs."""
    cal, x, _ = data
    qm = quantize_model(CNN, _recipe(weights={"bits": 4, "granularity": "per_group", "group_size": 16}), cal)
    ref = qm.run_integer(x)[qm.graph.outputs[0]]
    for suffix in ("npz", "json"):
        g = load_integer_graph(save_integer_graph(qm.integer_graph, tmp_path / f"m.{suffix}"))
        assert np.array_equal(run_graph(g, [x], "tflite-reference")[g.outputs[0]], ref)


def test_float_model_required(data, monkeypatch):
    """An already quantized model is refused with a message naming it."""
    import hwsim.importers
    from hwsim.errors import ConfigError
    from hwsim.quant.convert import load_float_graph

    cal, _, _ = data
    qm = quantize_model(CNN, _recipe(), cal)
    monkeypatch.setattr(hwsim.importers, "load_model", lambda path: qm.integer_graph)
    with pytest.raises(ConfigError, match="quantized.onnx: is already quantized"):
        load_float_graph("quantized.onnx")
