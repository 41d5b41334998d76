"""The requantizers real runtimes use, and the TFLite multiplier/shift encoding of a real scale.

A requantizer R maps an int32/int64 accumulator to the output grid before the zero point is added:
y = clamp(R(acc) + zy, act_min, act_max), with the real multiplier m = sx * sw[c] / sy encoded as
m ~ M * 2**(e - 31), M in [2**30, 2**31) (see :func:`quantize_multiplier`).
"""

from __future__ import annotations

import enum
import math

import numpy as np


class RequantKind(enum.IntEnum):
    """Five fixed-point requantizers and the float one. P = acc * M, t = 31 - e, l = max(e, 0), r = max(-e,
    0).

    GEMMLOWP_DOUBLE
        h = SQRDMULH(wrap32(acc << l), M) = round(acc * M / 2**31), ties up (the nudge is 2**30 above
        zero and 1 - 2**30 below, then C division truncates), then a rounding right shift by r, ties away. Two
        roundings: TFLite BUILTIN_REF conv, depthwise and add; TFLite Micro. SINGLE_AWAY sign(P) * ((|P| +
        2**(t-1)) >> t): one rounding, ties away. TFLite BUILTIN_REF fully-connected. DOUBLE_HALF_UP h =
        (wrap32(acc << l) * M + 2**30) >> 31, then (h + 2**(r-1)) >> r: two roundings, ties up (toward +inf).
        TFLite optimized kernels (conv, depthwise, FC). SINGLE_HALF_UP (P + 2**(t-1)) >> t: one rounding, ties
        up. TFLITE_SINGLE_ROUNDING builds (CMSIS-NN, some TFLM). INT16_MULTIPLIER M16 = (M + 2**15) >> 16
        (0x7FFF when M >= 0x7FFF0000); (acc * M16 + 2**(14-e)) >> (15-e). TFLite 16x8 conv and depthwise
        (int64 accumulator), every resolver. FLOAT32_SCALE round_half_even(float32(acc) * float32(scale)).
        XNNPACK, ONNX Runtime QLinear*, PyTorch. FLOAT64_PRODUCT round_half_even(float64(acc) *
        float64(scale)), the float32 multiplier applied in double: numpy's int32 x float32 promotion, as
        onnx.reference's QLinearConv and QLinearMatMul compute it.

    Why two roundings differ from one even away from ties: acc = 2995, M = 1961572874, e = -5 gives
    exactly 85.4912; the first rounding of GEMMLOWP_DOUBLE lands on 85.5 * 32 and the second rounds up to 86,
    while every single-rounding kind gives 85.
    """

    GEMMLOWP_DOUBLE = 0
    SINGLE_AWAY = 1
    DOUBLE_HALF_UP = 2
    SINGLE_HALF_UP = 3
    INT16_MULTIPLIER = 4
    FLOAT32_SCALE = 5
    FLOAT64_PRODUCT = 6


def quantize_multiplier(real: float, max_shift: int = 31) -> tuple[int, int]:
    """Encode ``real`` >= 0 as (M, e) with real ~ M * 2**(e - 31), as TFLite's QuantizeMultiplier does.

    (q, e) = frexp(real); M = round_half_away(q * 2**31); M == 2**31 renormalises to 2**30 with e + 1;
    e < -31 flushes to (0, 0). Single-rounding builds pass ``max_shift=30``.

    >>> quantize_multiplier(0.5)
    (1073741824, 0)
    >>> quantize_multiplier(1.0)
    (1073741824, 1)
    >>> quantize_multiplier(0.0)
    (0, 0)
    >>> quantize_multiplier(3.0e-12)
    (0, 0)
    """
    if real < 0 or not math.isfinite(real):
        raise ValueError(f"real multiplier must be finite and >= 0 (got {real!r})")
    if real == 0.0:
        return 0, 0
    q, e = math.frexp(real)
    m = math.floor(abs(q) * (1 << 31) + 0.5)  # half away from zero; q * 2**31 is exact in double
    if m == 1 << 31:
        m //= 2
        e += 1
    if e < -31:
        return 0, 0
    return m, min(e, max_shift)


def tflite_multiplier(input_scale: float, weight_scale: float, output_scale: float) -> float:
    """TFLite's real multiplier: computed in double from the float32 scales (not in float32); scalars only."""
    return float(np.float32(input_scale)) * float(np.float32(weight_scale)) / float(np.float32(output_scale))


def float32_multiplier(input_scale, weight_scale, output_scale) -> np.float32:
    """ONNX Runtime's and XNNPACK's: float32(float32(sx * sw) / sy); elementwise over arrays of scales."""
    return np.float32(
        np.float32(np.float32(input_scale) * np.float32(weight_scale)) / np.float32(output_scale)
    )


def float32_reciprocal_multiplier(input_scale, weight_scale, output_scale) -> np.float32:
    """qnnpack's: float32(float32(sx * sw) * float32(1 / sy)); differs from the division in the last bit."""
    sx, sw, sy = np.float32(input_scale), np.float32(weight_scale), np.float32(output_scale)
    return np.float32(np.float32(sx * sw) * np.float32(np.float32(1) / sy))
