"""AdaRound: every weight is rounded down or up, and the layer's reconstruction loss falls."""

import numpy as np

from hwsim.quant.adaround import adaround, moments, reconstruction_loss
from hwsim.quant.calibrate import quantize_weight_rows
from hwsim.quant.convert import quantize_model
from hwsim.quant.recipe import AdaRoundSpec, QuantRecipe, WeightSpec
from tests.quant.graphs import mlp


def _case(seed=0, c=8, k=24, m=512):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(c, k)).astype(np.float32)
    # correlated
    x_f = rng.normal(size=(m, k)).astype(np.float32) @ rng.normal(size=(k, k)).astype(np.float32)
    x_q = x_f + rng.normal(scale=0.05, size=x_f.shape).astype(np.float32)
    return w, x_q, x_f


def test_decisions_are_floor_or_ceil_and_loss_drops():
    """AdaRound's codes are floor(w/s) or floor(w/s) + 1 and its loss is below rounding to nearest."""
    w, x_q, x_f = _case()
    spec = WeightSpec(bits=3)
    wq = quantize_weight_rows(w, spec)
    codes, summary = adaround(w, wq, x_q, x_f, AdaRoundSpec(iterations=500), spec.fmt.min, spec.fmt.max)
    floor = np.floor(w / wq.per_element(wq.scale))
    assert np.isin(codes - floor, [0, 1]).all()
    assert 0 < (codes - floor).mean() < 1  # both directions are used
    assert summary["loss_adaround"] < summary["loss_nearest"]
    s = wq.per_element(wq.scale)
    g = moments(x_q, x_f)
    assert np.isclose(summary["loss_adaround"], reconstruction_loss(codes * s, w, *g), rtol=1e-6)


def test_moments_loss_equals_the_direct_loss():
    """The moment form of the loss equals || X_q w_hat^T - X_f w^T ||^2 / M computed directly."""
    w, x_q, x_f = _case(1, 3, 5, 40)
    w_hat = w + 0.1
    direct = ((x_q @ w_hat.T - x_f @ w.T) ** 2).sum() / len(x_f)
    assert np.isclose(
        reconstruction_loss(w_hat.astype(np.float64), w.astype(np.float64), *moments(x_q, x_f)),
        direct,
        rtol=1e-5,
    )


def test_adaround_in_the_flow_reports_each_layer():
    """With adaround in the recipe every layer records a lower loss than nearest rounding."""
    g = mlp(seed=2)
    x = np.random.default_rng(3).normal(size=(128, 16)).astype(np.float32)
    qm = quantize_model(
        g, QuantRecipe.model_validate({"weights": {"bits": 3}, "adaround": {"iterations": 300}}), x
    )
    for lq in qm.layers.values():
        assert lq.adaround["loss_adaround"] <= lq.adaround["loss_nearest"]
