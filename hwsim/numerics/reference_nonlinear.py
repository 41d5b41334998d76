"""Plain-Python twins of :mod:`hwsim.numerics.kernels_nonlinear`, written for obviousness.

Each function takes the same arguments as its kernel and returns the same values; the tests compare the two
bit for bit (``tests/numerics/test_fixed_point.py``). Set ``HWSIM_REFERENCE=1`` to run these instead.
"""

from __future__ import annotations

import math

import numpy as np

from hwsim.numerics.reference import rounding_divide_by_pot, saturating_rounding_doubling_high_mul, wrap32


def multiply_by_quantized_multiplier(x, multiplier, shift):
    """TFLite MultiplyByQuantizedMultiplier: RDBPOT(SRDHM(wrap32(x << l), M), r), l = max(e, 0), r = max(-e,
    0).

    SRDHM rounds ties toward +inf, RDBPOT ties away from zero. With M = 2**30, e = -1 (0.25): 3 -> 0.75 -> 1,
    and 5 -> 1.25 -> 2, because the first rounding lands on 1.5 (2.5 / 2) and the second rounds that up.

    >>> multiply_by_quantized_multiplier(np.array([3, -3, 5, -5]), 1 << 30, -1).tolist()
    [1, -1, 2, -1]
    """
    out = np.empty(np.size(x), np.int64)
    for i, v in enumerate(np.ravel(x)):
        high = saturating_rounding_doubling_high_mul(wrap32(int(v) << max(shift, 0)), int(multiplier))
        out[i] = rounding_divide_by_pot(high, max(-shift, 0))
    return out


def softmax_rows(x, table, output_scale, zero_point, qmin, qmax):
    """TFLite's int8 softmax of each row from its float32 exp table.

    e_j = table[max(row) - x_j]; total = e_0 + e_1 + ... added left to right in float32;
    inverse = float32(1 / float32(total * sy)); y_j = clamp(round_half_away(float32(e_j * inverse)) + zy).

    >>> t = np.exp(-0.1 * np.arange(256)).astype(np.float32)
    >>> softmax_rows(np.array([[5, 5, 5, 5]]), t, np.float32(1 / 256), -128, -128, 127).tolist()  # 0.25 each
    [[-64, -64, -64, -64]]
    """
    f32 = np.float32
    rows, cols = x.shape
    out = np.empty((rows, cols), np.int64)
    for r in range(rows):
        top = int(max(x[r]))
        exps = [f32(table[top - int(v)]) for v in x[r]]
        total = f32(0.0)
        for e in exps:
            total = f32(total + e)
        inverse = f32(f32(1.0) / f32(total * f32(output_scale)))
        for c, e in enumerate(exps):
            p = float(f32(e * inverse))
            q = int(math.copysign(math.floor(abs(p) + 0.5), p)) + zero_point
            out[r, c] = min(max(q, qmin), qmax)
    return out


# ---------------------------------------------------------------- int16 (16x8) kernels
def lut_lookup_int16(value, table):
    """TFLite's int16 table lookup: entry 256 + (v >> 7), plus the slope to the next entry times the low
    7 bits, rounded (+64, arithmetic >> 7); the sum stored as int16.

    >>> t = np.arange(513) * 128 - 32768
    >>> [lut_lookup_int16(v, t) for v in (-32768, -1, 0, 100, 32767)]  # an identity table
    [-32768, -1, 0, 100, 32767]
    """
    value = int(value)
    index = 256 + (value >> 7)
    base, slope = int(table[index]), int(table[index + 1]) - int(table[index])
    return wrap16(base + ((slope * (value & 0x7F) + 64) >> 7))


def wrap16(v: int) -> int:
    """The low 16 bits of ``v`` as a signed value (a C int16 store)."""
    return (v + (1 << 15)) % (1 << 16) - (1 << 15)


def softmax_rows_int16(x, exp_table, recip_table, multiplier, shift):
    """TFLite's int16 SOFTMAX of each row (input zero point 0, output scale 1 / 32768, zero point 0).

    d_j = MBQM(x_j - max(row), M, e) maps [-10, 0] of real input to [-65535, 0];
    e_j = LUT_exp(clamp16(d_j + 32767)) in Q0.15; s = sum e_j; with c = clz32(s), the reciprocal of the
    normalised sum is r = LUT_recip(clamp16(((s << (c - 1)) + 2**13 >> 14) - 3 * 2**15));
    y_j = clamp(e_j * r + 2**(30 - c) >> (31 - c), 0, 32767).
    """
    rows, cols = x.shape
    out = np.empty((rows, cols), np.int64)
    for r in range(rows):
        top = max(int(v) for v in x[r])
        exps = []
        for v in x[r]:
            scaled = int(multiply_by_quantized_multiplier(np.array([int(v) - top]), multiplier, shift)[0])
            exps.append(lut_lookup_int16(min(max(scaled + 32767, -32768), 32767), exp_table))
        total = sum(exps)
        clz = 32 - total.bit_length()
        shifted = ((total << (clz - 1)) + (1 << 13)) >> 14
        reciprocal = lut_lookup_int16(min(max(shifted - (1 << 15) - (1 << 16), -32768), 32767), recip_table)
        right = 31 - clz
        for c, e in enumerate(exps):
            out[r, c] = min(max((e * reciprocal + (1 << (right - 1))) >> right, 0), 32767)
    return out


def _table_input(x: int, multiplier: int, shift: int) -> int:
    """The input of the int16 LOGISTIC / TANH in units of 1 / (3 * 4096): (x * m + round) >> shift."""
    if multiplier == 0:  # power-of-two scale: 3 << shift, no shift
        multiplier, shift = 3 << shift, 0
    return (x * multiplier + ((1 << (shift - 1)) if shift > 0 else 0)) >> shift


def logistic_int16(x, multiplier, shift, table):
    """TFLite's int16 LOGISTIC (reference kernel): |v| interpolated in ``table`` (sigmoid(i / 24), Q0.16) on
    steps of 2**9, mirrored for v < 0, rounded to Q0.15.

    >>> from hwsim.numerics.fixed_point import SIGMOID_TABLE_UINT16 as T
    >>> logistic_int16(np.array([0, 32767, -32768]), 0, 0, T).tolist()  # sigmoid(0), (8), (-8); scale 2**-12
    [16384, 32757, 11]
    """
    out = np.empty(np.size(x), np.int64)
    for i, v in enumerate(np.ravel(x)):
        v = _table_input(int(v), multiplier, shift)
        a = abs(v)
        high = a >> 9
        if high >= 255:
            result = 0x7FFF << 10
        else:
            lo, hi = int(table[high]), int(table[high + 1])
            result = (lo << 9) + (a & 0x1FF) * (hi - lo)
        result = result + (1 << 9) if v >= 0 else (1 << 25) - result + (1 << 9) - 1
        out[i] = wrap16(result >> 10)
    return out.reshape(np.shape(x))


def tanh_int16(x, multiplier, shift, table):
    """TFLite's int16 TANH (reference kernel): tanh(x) = 2 sigmoid(2x) - 1 from the same table, on steps of
    2**8, rounded to Q0.15.

    >>> from hwsim.numerics.fixed_point import SIGMOID_TABLE_UINT16 as T
    >>> tanh_int16(np.array([0, 32767, -32768]), 0, 0, T).tolist()  # tanh(0), (8), (-8) at scale 2**-12
    [0, 32767, -32767]
    """
    out = np.empty(np.size(x), np.int64)
    for i, v in enumerate(np.ravel(x)):
        v = _table_input(int(v), multiplier, shift)
        a = abs(v)
        high = a >> 8
        if high >= 255:
            result = 0xFFFF << 8
        else:
            lo, hi = int(table[high]), int(table[high + 1])
            result = (lo << 8) + (a & 0xFF) * (hi - lo)
        result = result - (1 << 23) + (1 << 7) if v >= 0 else -result + (1 << 23) + (1 << 7) - 1
        out[i] = wrap16(result >> 8)
    return out.reshape(np.shape(x))
