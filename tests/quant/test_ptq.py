"""Batch-norm folding, activation fusion, cross-layer equalization and bias correction."""

import numpy as np
import pytest

from hwsim.accuracy.datasets import digits_split
from hwsim.paths import data_dir
from hwsim.quant.convert import quantize_model
from hwsim.quant.ptq import (
    equalization_pairs,
    equalize,
    fold_batchnorm,
    input_channel_ranges,
    output_channel_ranges,
    prepare,
)
from hwsim.quant.recipe import QuantRecipe
from hwsim.runtime.float_exec import run_float
from tests.quant.graphs import conv_bn_relu_fc, mlp


def test_batchnorm_folding_is_exact_in_float():
    """conv -> BN equals the folded conv to float32 rounding, and the BN op is gone."""
    g = conv_bn_relu_fc()
    x = np.random.default_rng(1).normal(size=(6, 2, 5, 5)).astype(np.float32)
    folded = fold_batchnorm(g)
    assert [op.kind for op in folded.ops] == [
        "conv2d",
        "relu",
        "global_avg_pool",
        "flatten",
        "fully_connected",
    ]
    np.testing.assert_allclose(run_float(folded, [x])["r"], run_float(g, [x])["r"], rtol=1e-5, atol=1e-5)
    w = g.tensor("w").data
    factor = g.tensor("gamma").data / np.sqrt(g.tensor("var").data + np.float32(1e-5))
    np.testing.assert_allclose(folded.tensor("w").data, w * factor[:, None, None, None], rtol=1e-6)


def test_prepare_fuses_relu_and_keeps_the_output():
    """After preparation the ReLU is the conv's activation and the model output is unchanged."""
    g = conv_bn_relu_fc()
    x = np.random.default_rng(2).normal(size=(4, 2, 5, 5)).astype(np.float32)
    p = prepare(g)
    assert p.ops[0].attrs["activation"] == "relu" and "relu" not in [op.kind for op in p.ops]
    np.testing.assert_allclose(run_float(p, [x])["y"], run_float(g, [x])["y"], rtol=1e-5, atol=1e-5)


def test_shipped_workloads_fold_exactly():
    """The built-in CNN's folded graph matches the original float model."""
    from hwsim.importers import load_model

    g = load_model(data_dir("workloads") / "digits_cnn_bn.onnx")
    x = digits_split("test").x[:64]
    np.testing.assert_allclose(run_float(prepare(g), [x])["logits"], run_float(g, [x])["logits"], atol=1e-4)


@pytest.mark.parametrize("make", [conv_bn_relu_fc, mlp])
def test_equalization_keeps_the_function_and_equalizes_ranges(make):
    """CLE leaves the float output unchanged and makes r1_i = r2_i = sqrt(r1_i r2_i) for every pair."""
    g = prepare(make())
    x_shape = (5, 2, 5, 5) if make is conv_bn_relu_fc else (5, 16)
    x = np.random.default_rng(3).normal(size=x_shape).astype(np.float32)
    pairs_before = equalization_pairs(g)
    assert pairs_before
    before = {
        (a.name, b.name): np.sqrt(output_channel_ranges(g, a) * input_channel_ranges(g, b))
        for a, b in pairs_before
    }
    e, pairs = equalize(g, iterations=1)
    np.testing.assert_allclose(run_float(e, [x])["y"], run_float(g, [x])["y"], rtol=1e-4, atol=1e-4)
    ops = {op.name: op for op in e.ops}
    for first, second in pairs:
        r1, r2 = output_channel_ranges(e, ops[first]), input_channel_ranges(e, ops[second])
        np.testing.assert_allclose(r1, r2, rtol=1e-5)
        np.testing.assert_allclose(r1, before[(first, second)], rtol=1e-5)


def test_bias_correction_removes_the_mean_output_error():
    """With a weight grid that errs systematically, bias correction brings the first layer's mean
    pre-activation error (on the calibration data) to about zero, from clearly non-zero."""
    g = mlp(seed=5)
    # positive mean input
    x = np.abs(np.random.default_rng(6).normal(size=(256, 16))).astype(np.float32) + 0.5
    base = {"weights": {"bits": 3, "granularity": "per_tensor"}, "activations": {"bits": 16}}
    errors = []
    for correct in (False, True):
        qm = quantize_model(g, QuantRecipe.model_validate({**base, "bias_correction": correct}), x)
        ref = qm.run_float(x)
        fq = qm.run_fake_quant(x)
        # compare before the ReLU: the first FC's output with activation removed
        op = qm.graph.ops[0]
        w_f = qm.reference.tensor(op.inputs[1]).data
        b_f = qm.reference.tensor(op.inputs[2]).data
        w_q = qm.fake_graph.tensor(op.inputs[1]).data
        b_q = qm.fake_graph.tensor(op.inputs[2]).data
        xq = qm.tensor_quant("x").fake(x)
        err = (xq @ w_q.T + b_q) - (x @ w_f.T + b_f)
        errors.append(np.abs(err.mean(axis=0)).max())
        assert ref["y"].shape == fq["y"].shape
    assert errors[0] > 0.02
    assert errors[1] < errors[0] / 10
