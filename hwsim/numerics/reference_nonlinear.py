"""Plain-Python twins of :mod:`hwsim.numerics.kernels_nonlinear`, written for obviousness.

Each function takes the same arguments as its kernel and returns the same values; the tests compare the two
bit for bit (``tests/numerics/test_fixed_point.py``). Set ``HWSIM_REFERENCE=1`` to run these instead.
"""

from __future__ import annotations

import math

import numpy as np

from hwsim.numerics.reference import rounding_divide_by_pot, saturating_rounding_doubling_high_mul, wrap32


def multiply_by_quantized_multiplier(x, multiplier, shift):
    """TFLite MultiplyByQuantizedMultiplier: RDBPOT(SRDHM(wrap32(x << l), M), r), l = max(e, 0), r = max(-e, 0).

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
