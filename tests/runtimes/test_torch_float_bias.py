"""PyTorch's float32 bias (fbgemm and x86 engines) against live torch quantized modules, bit for bit.

A ``torch.ao.nn.quantized`` Linear or Conv2d keeps its bias in float32; fbgemm adds bias / (sx * sw) to the
accumulator in float, unrounded (:mod:`hwsim.numerics.float_bias`). The layers here have biases whose
bias / (sx * sw) is not an integer, in two regimes: random full-range codes, and large accumulators that the
bias nearly cancels (where float32's spacing exceeds 1 and the bias form decides the output: an int32 bias
code, or the per-channel division applied to a per-tensor layer, are then visibly wrong).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from hwsim.numerics import quantized as Q
from hwsim.numerics.cpu import has_int8_dot_product
from hwsim.numerics.float_bias import biased_accumulator
from hwsim.numerics.formats import IntFormat
from tests.runtimes.conftest import require

F32 = np.float32
UINT8 = IntFormat(8, signed=False)


@pytest.fixture(scope="module")
def torch():
    module = require("torch")
    warnings.filterwarnings("ignore", message=".*quantized tensor creation functions.*")
    return module


def _engines():
    """fbgemm, and x86 where it is fbgemm (on VNNI CPUs x86 hands symmetric weights to oneDNN)."""
    reason = "x86 runs symmetric weights on oneDNN on VNNI CPUs (its float bias is not measured)"
    return ["fbgemm", pytest.param("x86", marks=pytest.mark.skipif(has_int8_dot_product(), reason=reason))]


def _case(rng, shape_x, out_c, depth, per_channel: bool, regime: str):
    """Codes, scales and a float bias (bias / (sx * sw) fractional) for one layer, in one of three regimes:
    ``full`` (random full-range codes), ``fine`` (codes near their zero points and an output scale near
    sx * sw, so a fraction of an accumulator unit moves outputs) or ``cancelling`` (accumulators ~1e7 that the
    bias nearly cancels, where float32's spacing exceeds 1)."""
    sx = F32(rng.uniform(0.005, 0.05))
    sw = rng.uniform(0.002, 0.02, out_c) if per_channel else np.full(out_c, rng.uniform(0.002, 0.02))
    sw = sw.astype(F32)
    zx = int(rng.integers(0, 20 if regime == "cancelling" else 256))
    if regime == "cancelling":
        x = rng.integers(100, 128, shape_x).astype(np.uint8)
        w = rng.integers(100, 128, (out_c, depth)).astype(np.int8)
        units = -(depth * (113.5 - zx) * 113.5 + rng.uniform(-2e4, 2e4, out_c))
        sy = F32(sx * sw.mean() * 1e3)
    elif regime == "fine":
        x = np.clip(zx + rng.integers(-3, 4, shape_x), 0, 255).astype(np.uint8)
        w = rng.integers(-3, 4, (out_c, depth)).astype(np.int8)
        units = rng.uniform(-40, 40, out_c)
        sy = F32(sx * sw.mean() * rng.uniform(0.3, 1.5) * np.sqrt(depth) / 4)
    else:
        x = rng.integers(0, 256, shape_x).astype(np.uint8)
        w = rng.integers(-127, 128, (out_c, depth)).astype(np.int8)
        units = rng.uniform(-2000, 2000, out_c)
        sy = F32(sx * sw.mean() * 128 * 73 * np.sqrt(depth) / 40)
    return x, zx, w, sx, sw, (units * sx * sw).astype(F32), sy, int(rng.integers(60, 200))


def _qtensors(torch, x, zx, w, sx, sw, per_channel):
    xq = torch._make_per_tensor_quantized_tensor(torch.from_numpy(x), float(sx), zx)
    if per_channel:
        scales = torch.from_numpy(sw.astype(np.float64))
        wq = torch._make_per_channel_quantized_tensor(
            torch.from_numpy(w), scales, torch.zeros(w.shape[0], dtype=torch.long), 0
        )
    else:
        wq = torch._make_per_tensor_quantized_tensor(torch.from_numpy(w), float(sw[0]), 0)
    return xq, wq


def _semantics():
    return "pytorch"  # this host's fbgemm variant (AVX2 pair saturation or VNNI exact)


REGIMES = ("full", "fine", "cancelling")
LINEAR = [(per_channel, regime, False) for per_channel in (False, True) for regime in REGIMES] + [
    (True, "fine", True),
    (False, "cancelling", True),
]


@pytest.mark.parametrize("engine", _engines())
@pytest.mark.parametrize("per_channel,regime,relu", LINEAR)
def test_linear_float_bias(torch, engine, per_channel, regime, relu):
    """nnq.Linear / nniq.LinearReLU with a float bias: hwsim's ``float_bias`` reproduces every output code."""
    import torch.ao.nn.intrinsic.quantized as nniq
    import torch.ao.nn.quantized as nnq

    torch.backends.quantized.engine = engine
    rng = np.random.default_rng(17 + 3 * per_channel + REGIMES.index(regime) + 7 * relu)
    rows, depth, units = 48, 1500 if regime == "cancelling" else 300, 37
    x, zx, w, sx, sw, bias, sy, zy = _case(rng, (rows, depth), units, depth, per_channel, regime)
    xq, wq = _qtensors(torch, x, zx, w, sx, sw, per_channel)
    layer = (nniq.LinearReLU if relu else nnq.Linear)(depth, units)
    layer.set_weight_bias(wq, torch.from_numpy(bias))
    layer.scale, layer.zero_point = float(sy), zy
    want = layer(xq).int_repr().numpy()
    w_q = Q.QParams.of(sw if per_channel else sw[:1])
    quant = Q.LayerQuant(
        Q.QParams.of(sx, zx),
        w_q,
        Q.QParams.of(sy, zy),
        UINT8,
        activation="relu" if relu else None,
        semantics=_semantics(),
    )
    got = Q.fully_connected(x, w, None, quant, float_bias=bias)
    assert np.array_equal(got, want), f"{int((got != want).sum())} of {want.size} differ"
    assert want.std() > 10 and ((want == 0) | (want == 255)).mean() < 0.5  # a real spread of outputs
    if regime == "fine":  # here the bias form matters: rounded to int32 codes, it moves many outputs
        codes = np.rint(bias.astype(np.float64) / (sx * sw.astype(np.float64))).astype(np.int64)
        assert (Q.fully_connected(x, w, codes, quant) != want).mean() > 0.02


@pytest.mark.parametrize("engine", _engines())
@pytest.mark.parametrize(
    "per_channel,regime", [(False, "full"), (True, "fine"), (False, "cancelling"), (True, "cancelling")]
)
def test_conv2d_float_bias(torch, engine, per_channel, regime):
    """nnq.Conv2d (3x3, padding 1, stride 2) with a float bias: every output code equals torch's."""
    import torch.ao.nn.quantized as nnq

    torch.backends.quantized.engine = engine
    rng = np.random.default_rng(31 + 3 * per_channel + REGIMES.index(regime))
    cin, cout = (64 if regime == "cancelling" else 8), 20
    depth = 9 * cin
    x, zx, w2, sx, sw, bias, sy, zy = _case(rng, (2, 13, 12, cin), cout, depth, per_channel, regime)
    pad = 0 if regime == "cancelling" else 1  # padded taps add nothing: no padding keeps every sum large
    w = w2.reshape(cout, 3, 3, cin)  # OHWI for hwsim; torch takes OIHW
    xq, wq = _qtensors(
        torch,
        np.ascontiguousarray(x.transpose(0, 3, 1, 2)),
        zx,
        np.ascontiguousarray(w.transpose(0, 3, 1, 2)),
        sx,
        sw,
        per_channel,
    )
    layer = nnq.Conv2d(cin, cout, 3, stride=2, padding=pad)
    layer.set_weight_bias(wq, torch.from_numpy(bias))
    layer.scale, layer.zero_point = float(sy), zy
    want = layer(xq).int_repr().numpy().transpose(0, 2, 3, 1)
    w_q = Q.QParams.of(sw if per_channel else sw[:1])
    quant = Q.LayerQuant(Q.QParams.of(sx, zx), w_q, Q.QParams.of(sy, zy), UINT8, semantics=_semantics())
    got = Q.conv2d(x, w, None, quant, float_bias=bias, stride=2, padding=(pad,) * 4)
    assert np.array_equal(got, want), f"{int((got != want).sum())} of {want.size} differ"


def test_per_tensor_form_is_a_fused_multiply_add(torch):
    """On near-cancelling accumulators, fbgemm's per-tensor form (one FMA with the float32 reciprocal) and
    its per-channel form (a division, then an add) are different functions: torch follows the first."""
    import torch.ao.nn.quantized as nnq

    torch.backends.quantized.engine = "fbgemm"
    rng = np.random.default_rng(5)
    x, zx, w, sx, sw, bias, sy, zy = _case(rng, (64, 2000), 32, 2000, False, "cancelling")
    xq, wq = _qtensors(torch, x, zx, w, sx, sw, False)
    layer = nnq.Linear(2000, 32)
    layer.set_weight_bias(wq, torch.from_numpy(bias))
    layer.scale, layer.zero_point = float(sy), zy
    want = layer(xq).int_repr().numpy()
    acc = x.astype(np.int64) @ w.T.astype(np.int64) - zx * w.sum(axis=1, dtype=np.int64)
    multiplier = F32(F32(sx * sw[0]) / sy)

    def codes(t):
        return np.clip(np.rint((t * multiplier).astype(F32)).astype(np.int64) + zy, 0, 255)

    assert np.array_equal(codes(biased_accumulator(acc, bias, sx, sw[:1])), want)
    assert (codes(biased_accumulator(acc, bias, sx, sw)) != want).sum() > 0  # the division form
