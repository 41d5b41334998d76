"""LLM.int8() outlier decomposition and dynamic quantization on the integer path."""

import numpy as np

from hwsim.quant.convert import quantize_model
from hwsim.quant.recipe import QuantRecipe
from tests.quant.graphs import mlp


def _inputs(outlier: float):
    x = np.random.default_rng(4).normal(size=(64, 16)).astype(np.float32)
    x[:, 3] *= outlier  # one feature column with large magnitudes, as in LLM activations
    return x


def _run(recipe: dict, x: np.ndarray):
    qm = quantize_model(mlp(seed=1), QuantRecipe.model_validate(recipe), x)
    op = qm.integer_graph.ops[0]
    return qm, op, qm.run_integer(x)["h" if False else qm.graph.ops[0].outputs[0]], qm.run_float(x)


def test_outlier_columns_run_at_16_bits_and_cut_the_error():
    """With a column of |x| ~ 60 the 8-bit-only dynamic layer loses the small features; LLM.int8's split
    computes that column at 16 bits and is at least 10x more accurate."""
    x = _inputs(60.0)
    dyn = {"activations": {"dynamic": True, "symmetric": True}}
    qm8, op8, y8, ref = _run(dyn, x)
    qm_o, op_o, y_o, _ = _run({**dyn, "outliers": {"threshold": 6.0}}, x)
    name = qm8.graph.ops[0].outputs[0]
    assert op_o.kind == "dynamic_fully_connected" and op_o.attrs["outlier_threshold"] == 6.0
    err8 = np.abs(y8 - ref[name]).mean()
    err_o = np.abs(y_o - ref[name]).mean()
    assert err_o * 10 < err8


def test_no_outliers_means_the_plain_8bit_result():
    """Below the threshold no column is split off: outputs equal the 8-bit dynamic layer's exactly."""
    x = _inputs(1.0) * 0.5
    dyn = {"activations": {"dynamic": True, "symmetric": True}}
    _, _, y8, _ = _run(dyn, x)
    _, _, y_o, _ = _run({**dyn, "outliers": {"threshold": 6.0}}, x)
    assert np.array_equal(y8, y_o)


def test_dynamic_ranges_follow_each_input():
    """Dynamic quantization of a scaled-up input keeps the relative error of the original input."""
    x = _inputs(1.0)
    dyn = {"activations": {"dynamic": True}}
    qm, _, y, ref = _run(dyn, x)
    name = qm.graph.ops[0].outputs[0]
    y_big = qm.run_integer(x * 100)[name]
    ref_big = qm.run_float(x * 100)[name]
    rel = np.abs(y - ref[name]).mean() / np.abs(ref[name]).mean()
    rel_big = np.abs(y_big - ref_big).mean() / np.abs(ref_big).mean()
    assert rel_big < 3 * rel + 1e-3
