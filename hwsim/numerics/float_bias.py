"""A float32 bias added to the int32 accumulator in float, as PyTorch's fbgemm and x86 engines do.

A torch quantized Linear or Conv2d keeps its bias in float32 and never rounds it to an int32 code: fbgemm's
output stage adds bias / float32(sx * sw) to float32(acc), unrounded, then multiplies by the float32
multiplier float32(float32(sx * sw) / sy) and rounds half to even. Two forms, read from fbgemm's AVX2 kernel
(``requantizeOutputProcessingAvx2``) and measured bit for bit against torch 2.13 on an AVX2 CPU:

* one weight scale per output channel: ``float32(acc) + float32(bias / float32(sx * sw[c]))``;
* one weight scale for the tensor: a float32 reciprocal r = float32(1 / double(float32(sx * sw))), and the
  multiply and add that follow are contracted by the compiler into one fused multiply-add:
  ``fma(bias, r, float32(acc))``, rounded once.

So a float bias whose bias / (sx * sw) is not an integer moves outputs that an int32 bias code cannot.
"""

from __future__ import annotations

import numpy as np

from hwsim.errors import ConfigError

F32, F64 = np.float32, np.float64


def fma_f32(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """float32 fused multiply-add a * b + c, rounded once to nearest even (float32 operands).

    a * b is exact in float64 (24 + 24 bits); the float64 sum is made round-to-odd from its exact error
    (TwoSum), so that the final rounding to float32 is the single correct one.
    """
    p = np.asarray(a, F32).astype(F64) * np.asarray(b, F32).astype(F64)
    c = np.asarray(c, F32).astype(F64)
    s = p + c
    bb = s - p
    err = (p - (s - bb)) + (c - bb)
    even = (s.view(np.uint64) & 1) == 0
    toward = np.nextafter(s, np.where(err > 0, np.inf, -np.inf))
    s = np.where((err != 0) & even, toward, s)  # round to odd: err's neighbour has an odd mantissa
    return s.astype(F32)


def biased_accumulator(acc: np.ndarray, bias, input_scale: float, weight_scale) -> np.ndarray:
    """float32 accumulators (last axis: output channel) with the float32 ``bias`` added as fbgemm adds it."""
    acc = np.asarray(acc)
    channels = acc.shape[-1]
    bias = np.asarray(bias, F32).reshape(-1)
    sw = np.asarray(weight_scale, F32).reshape(-1)
    if bias.size != channels or sw.size not in (1, channels):
        raise ConfigError(
            f"float_bias: expected {channels} values and 1 or {channels} weight scales "
            f"(got {bias.size} and {sw.size})"
        )
    scale = F32(input_scale) * sw  # float32 products, as torch computes act_times_w_scale
    accf = acc.astype(F32)
    if sw.size == 1:  # per tensor (a one-channel layer counts as one; torch's per-channel form divides)
        reciprocal = F32(1.0 / float(scale[0]))
        return fma_f32(np.broadcast_to(bias, acc.shape), np.full(acc.shape, reciprocal, F32), accf)
    return accf + (bias / scale).astype(F32)


def requantize_float_bias(
    acc: np.ndarray,
    bias,
    input_scale: float,
    weight_scale,
    multiplier: np.ndarray,
    zero_point: int,
    lo: int,
    hi: int,
    dtype,
) -> np.ndarray:
    """Output codes: round half to even of float32(biased accumulator * multiplier), plus the zero point,
    clamped to [lo, hi] (the fused activation's range)."""
    t = biased_accumulator(acc, bias, input_scale, weight_scale)
    y = np.rint((t * np.asarray(multiplier, F32)).astype(F32)).astype(np.int64) + zero_point
    return np.clip(y, lo, hi).astype(dtype)
