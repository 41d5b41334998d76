"""numba kernels of the nonlinear ops: the fast twins of :mod:`hwsim.numerics.reference_nonlinear`.

Same house rules as :mod:`hwsim.numerics.kernels`: integer operands are int64 before any product, float32
math is rounded to float32 after every operation, no ``fastmath``, ``cache=True``, and no user-facing
errors (the wrappers in :mod:`hwsim.runtime.nonlinear` validate).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from hwsim.numerics import jit_cache  # noqa: F401  before any kernel: it names numba's cache folder

jit = numba.njit(cache=True, nogil=True)

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1


@jit
def _trunc_div_pot(x, bits):
    return x >> bits if x >= 0 else -((-x) >> bits)


@jit
def _wrap32(v):
    return ((v + 2147483648) & 0xFFFFFFFF) - 2147483648


@jit
def multiply_by_quantized_multiplier(x, multiplier, shift):
    """TFLite's gemmlowp requantizer on every element of int64 ``x``: RDBPOT(SRDHM(wrap32(x << l), M), r)."""
    out = np.empty(x.size, np.int64)
    m = np.int64(multiplier)
    left = np.int64(shift) if shift > 0 else np.int64(0)
    right = np.int64(-shift) if shift < 0 else np.int64(0)
    mask = (np.int64(1) << right) - 1
    for i in range(x.size):
        a = _wrap32(np.int64(x.flat[i]) << left)
        if a == INT32_MIN and m == INT32_MIN:
            high = np.int64(INT32_MAX)
        else:
            ab = a * m
            nudge = (np.int64(1) << 30) if ab >= 0 else 1 - (np.int64(1) << 30)
            high = _trunc_div_pot(ab + nudge, 31)
        threshold = (mask >> 1) + (1 if high < 0 else 0)
        out[i] = (high >> right) + (1 if (high & mask) > threshold else 0)
    return out


@jit
def softmax_rows(x, table, output_scale, zero_point, qmin, qmax):
    """Float-table softmax over each row of the 2-D int64 ``x`` (see the reference twin for the math)."""
    rows, cols = x.shape
    out = np.empty((rows, cols), np.int64)
    scale = np.float32(output_scale)
    for r in range(rows):
        top = x[r, 0]
        for c in range(1, cols):
            top = max(top, x[r, c])
        total = np.float32(0.0)
        for c in range(cols):
            total = np.float32(total + table[top - x[r, c]])
        inverse = np.float32(np.float32(1.0) / np.float32(total * scale))
        for c in range(cols):
            p = np.float64(np.float32(table[top - x[r, c]] * inverse))
            rounded = math.floor(abs(p) + 0.5)
            q = np.int64(rounded if p >= 0 else -rounded) + zero_point
            out[r, c] = min(max(q, qmin), qmax)
    return out


# ---------------------------------------------------------------- int16 (16x8) kernels
@jit
def _wrap16(v):
    return ((v + 32768) & 0xFFFF) - 32768


@jit
def _lut_lookup_int16(value, table):
    index = 256 + (value >> 7)
    base = table[index]
    return _wrap16(base + (((table[index + 1] - base) * (value & 0x7F) + 64) >> 7))


@jit
def softmax_rows_int16(x, exp_table, recip_table, multiplier, shift):
    """TFLite's int16 softmax of each row of the 2-D int64 ``x`` (see the reference twin for the math)."""
    rows, cols = x.shape
    out = np.empty((rows, cols), np.int64)
    exps = np.empty(cols, np.int64)
    for r in range(rows):
        top = x[r, 0]
        for c in range(1, cols):
            top = max(top, x[r, c])
        diffs = np.empty(cols, np.int64)
        for c in range(cols):
            diffs[c] = x[r, c] - top
        scaled = multiply_by_quantized_multiplier(diffs, multiplier, shift)
        total = np.int64(0)
        for c in range(cols):
            exps[c] = _lut_lookup_int16(min(max(scaled[c] + 32767, -32768), 32767), exp_table)
            total += exps[c]
        clz = 32
        while clz > 0 and (total >> (32 - clz)) != 0:
            clz -= 1
        shifted = ((total << (clz - 1)) + (1 << 13)) >> 14
        reciprocal = _lut_lookup_int16(min(max(shifted - (1 << 15) - (1 << 16), -32768), 32767), recip_table)
        right = 31 - clz
        for c in range(cols):
            out[r, c] = min(max((exps[c] * reciprocal + (np.int64(1) << (right - 1))) >> right, 0), 32767)
    return out


@jit
def _table_input(v, multiplier, shift):
    if multiplier == 0:
        multiplier, shift = np.int64(3) << shift, 0
    rounding = (np.int64(1) << (shift - 1)) if shift > 0 else np.int64(0)
    return (v * multiplier + rounding) >> shift


@jit
def logistic_int16(x, multiplier, shift, table):
    """TFLite's int16 LOGISTIC on every element of int64 ``x`` (see the reference twin)."""
    out = np.empty(x.size, np.int64)
    for i in range(x.size):
        v = _table_input(np.int64(x.flat[i]), np.int64(multiplier), np.int64(shift))
        a = abs(v)
        high = a >> 9
        if high >= 255:
            result = np.int64(0x7FFF) << 10
        else:
            result = (table[high] << 9) + (a & 0x1FF) * (table[high + 1] - table[high])
        result = result + (1 << 9) if v >= 0 else (np.int64(1) << 25) - result + (1 << 9) - 1
        out[i] = _wrap16(result >> 10)
    return out.reshape(x.shape)


@jit
def tanh_int16(x, multiplier, shift, table):
    """TFLite's int16 TANH on every element of int64 ``x`` (see the reference twin)."""
    out = np.empty(x.size, np.int64)
    for i in range(x.size):
        v = _table_input(np.int64(x.flat[i]), np.int64(multiplier), np.int64(shift))
        a = abs(v)
        high = a >> 8
        if high >= 255:
            result = np.int64(0xFFFF) << 8
        else:
            result = (table[high] << 8) + (a & 0xFF) * (table[high + 1] - table[high])
        result = result - (1 << 23) + (1 << 7) if v >= 0 else -result + (1 << 23) + (1 << 7) - 1
        out[i] = _wrap16(result >> 8)
    return out.reshape(x.shape)


jit_cache.adopt(globals())  # every kernel above: hwsim's checked cache (see jit_cache)
