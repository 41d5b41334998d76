"""Plain reference of every kernel in :mod:`hwsim.numerics.kernels`, written for obviousness.

Python integers (unbounded) and float64 only; loops where a loop is the clearest statement; no numba.
Each function has the same signature and result as its kernel twin, so tests compare them bit for bit,
and ``hwsim verify`` can check a user's data against it. Enum arguments arrive as their integer values.
"""

from __future__ import annotations

import math

import numpy as np

from hwsim.numerics.formats import OverflowMode, RoundingMode
from hwsim.numerics.requant_kinds import RequantKind

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


# ---------------------------------------------------------------- scalar building blocks
def round_real(x: float, mode: int, u: float = 0.0) -> int:
    """Round a float to an integer under ``mode``; ``u`` in [0, 1) drives STOCHASTIC."""
    x = float(x)
    f = math.floor(x)
    d = x - f  # exact in binary floating point
    if mode == RoundingMode.HALF_EVEN:
        return f + 1 if d > 0.5 or (d == 0.5 and f % 2 == 1) else f
    if mode == RoundingMode.HALF_AWAY:
        return f + 1 if d > 0.5 or (d == 0.5 and x > 0) else f
    if mode == RoundingMode.HALF_UP:
        return f + 1 if d >= 0.5 else f
    if mode == RoundingMode.FLOOR:
        return f
    if mode == RoundingMode.CEIL:
        return math.ceil(x)
    if mode == RoundingMode.TO_ZERO:
        return math.trunc(x)
    if mode == RoundingMode.STOCHASTIC:
        return f + 1 if u < d else f
    raise ValueError(f"unknown rounding mode {mode}")


def fit(v: int, lo: int, hi: int, overflow: int) -> int:
    """Bring ``v`` into the register range [lo, hi]: clamp (SATURATE), two's-complement (WRAP) or keep
    (EXACT)."""
    if lo <= v <= hi or overflow == OverflowMode.EXACT:
        return v
    if overflow == OverflowMode.SATURATE:
        return lo if v < lo else hi
    span = hi - lo + 1  # WRAP: a full-width register of 2**bits codes
    return (v - lo) % span + lo


def wrap32(v: int) -> int:
    """Keep the low 32 bits of ``v`` as a signed value (a C int32 store)."""
    return (v + (1 << 31)) % (1 << 32) - (1 << 31)


def _trunc_div(a: int, b: int) -> int:
    """C integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def saturating_rounding_doubling_high_mul(a: int, b: int) -> int:
    """gemmlowp SQRDMULH: round(a * b / 2**31), ties up (toward +inf), saturating the one overflow case."""
    if a == b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    return _trunc_div(ab + nudge, 1 << 31)


def rounding_divide_by_pot(x: int, exponent: int) -> int:
    """gemmlowp RoundingDivideByPOT: x / 2**exponent rounded half away from zero."""
    if exponent == 0:
        return x
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def requantize_scalar(acc: int, multiplier: int, shift: int, scale: float, kind: int) -> int:
    """Scale one accumulator by the real multiplier m = multiplier * 2**(shift - 31) (or float ``scale``).

    The result is before the output zero point and clamp. See :class:`RequantKind` for the math.
    """
    e = shift
    if kind == RequantKind.FLOAT32_SCALE:
        return round_real(float(np.float32(acc) * np.float32(scale)), RoundingMode.HALF_EVEN)
    if kind == RequantKind.FLOAT64_PRODUCT:
        return round_real(float(acc) * float(np.float32(scale)), RoundingMode.HALF_EVEN)
    if kind == RequantKind.GEMMLOWP_DOUBLE:
        left, right = max(e, 0), max(-e, 0)
        high = saturating_rounding_doubling_high_mul(wrap32(acc << left), multiplier)
        return rounding_divide_by_pot(high, right)
    if kind == RequantKind.DOUBLE_HALF_UP:
        left, right = max(e, 0), max(-e, 0)
        high = (wrap32(acc << left) * multiplier + (1 << 30)) >> 31
        return (high + (1 << (right - 1))) >> right if right > 0 else high
    if kind == RequantKind.SINGLE_AWAY:
        total = 31 - e
        p = acc * multiplier
        magnitude = (abs(p) + (1 << (total - 1))) >> total
        return wrap32(magnitude if p >= 0 else -magnitude)
    if kind == RequantKind.SINGLE_HALF_UP:
        total = 31 - e
        return wrap32((acc * multiplier + (1 << (total - 1))) >> total)
    if kind == RequantKind.INT16_MULTIPLIER:
        m16 = 0x7FFF if multiplier >= 0x7FFF0000 else (multiplier + (1 << 15)) >> 16
        total = 15 - e
        return wrap32((acc * m16 + (1 << (total - 1))) >> total)
    raise ValueError(f"unknown requantization kind {kind}")


# ---------------------------------------------------------------- elementwise kernels
def quantize(x, scale, zero_point, qmin, qmax, rounding, overflow, noise):
    """q = fit(round(x / scale) + zero_point); the division in the dtype of ``x`` (float32 like ONNX)."""
    out = np.empty(x.shape, np.int64)
    for i in range(x.size):
        v = x.flat[i] / scale.flat[i]
        v = min(max(float(v), -(2.0**53)), 2.0**53)
        r = round_real(v, rounding, float(noise.flat[i]) if noise.size else 0.0)
        out.flat[i] = fit(r + int(zero_point.flat[i]), qmin, qmax, overflow)
    return out


def dequantize(q, scale, zero_point):
    """x = float32(q - zero_point) * scale, as ONNX DequantizeLinear and TFLite Dequantize compute it."""
    out = np.empty(q.shape, np.float32)
    for i in range(q.size):
        out.flat[i] = np.float32(int(q.flat[i]) - int(zero_point.flat[i])) * np.float32(scale.flat[i])
    return out


def requantize_span(acc, multiplier, shift, scale, zero_point, qmin, qmax, kind, out, c0, c1):
    """out[c] = clamp(R_kind(acc[c]) + zero_point, qmin, qmax) for c0 <= c < c1 (one row, in place)."""
    for c in range(c0, c1):
        r = requantize_scalar(int(acc[c]), int(multiplier[c]), int(shift[c]), float(scale[c]), kind)
        out[c] = min(max(r + zero_point, qmin), qmax)


# ---------------------------------------------------------------- MAC kernels
def matmul_acc(x, w, x_zp, w_zp, bias, acc_min, acc_max, overflow, k_order, bias_last):
    """acc[m, n] = bias[n] + sum_k (x[m, k] - x_zp)(w[k, n] - w_zp[n]) in a register of range [acc_min,
    acc_max].

    Products are added one at a time in ``k_order``; after every addition the register is fitted with
    ``overflow`` and each excursion out of range is counted. The bias is loaded first, or added last when
    ``bias_last``. Returns (acc, overflow_count).
    """
    rows, depth = x.shape
    cols = w.shape[1]
    out = np.empty((rows, cols), np.int64)
    count = 0
    for m in range(rows):
        for n in range(cols):
            acc = 0
            steps = [int(bias[n])] if not bias_last else []
            steps += [(int(x[m, k]) - x_zp) * (int(w[k, n]) - int(w_zp[n])) for k in k_order]
            if bias_last:
                steps.append(int(bias[n]))
            for term in steps:
                acc += term
                if not acc_min <= acc <= acc_max:
                    count += 1
                    acc = fit(acc, acc_min, acc_max, overflow)
            out[m, n] = acc
    return out, count


def matmul_acc_pairwise16(x, w, x_zp, w_zp, bias):
    """uint8 x int8 as AVX2 ``vpmaddubsw`` computes it: adjacent products along K summed with int16
    saturation.

    acc = bias + sum_j sat16(x[2j] w[2j] + x[2j+1] w[2j+1]) - w_zp * sum(x) - x_zp * sum(w) + K x_zp w_zp.
    An odd K is padded with a zero product. This is ONNX Runtime's (and torch fbgemm's) arithmetic on CPUs
    without AVX-512 VNNI; it differs from the exact sum when a pair leaves [-32768, 32767].
    """
    rows, depth = x.shape
    cols = w.shape[1]
    out = np.empty((rows, cols), np.int64)
    for m in range(rows):
        for n in range(cols):
            total = 0
            for j in range(0, depth, 2):
                pair = int(x[m, j]) * int(w[j, n])
                if j + 1 < depth:
                    pair += int(x[m, j + 1]) * int(w[j + 1, n])
                total += min(max(pair, -32768), 32767)
            sum_x = sum(int(v) for v in x[m])
            sum_w = sum(int(v) for v in w[:, n])
            total += -int(w_zp[n]) * sum_x - x_zp * sum_w + depth * x_zp * int(w_zp[n])
            out[m, n] = total + int(bias[n])
    return out


def im2col(
    x, kernel_h, kernel_w, stride_h, stride_w, dil_h, dil_w, pad_top, pad_left, out_h, out_w, pad_value
):
    """Patches of an NHWC tensor as rows (n, oy, ox) and columns (ky, kx, c); padding reads ``pad_value``."""
    batch, height, width, channels = x.shape
    cols = np.empty((batch * out_h * out_w, kernel_h * kernel_w * channels), np.int64)
    row = 0
    for b in range(batch):
        for oy in range(out_h):
            for ox in range(out_w):
                col = 0
                for ky in range(kernel_h):
                    for kx in range(kernel_w):
                        iy = oy * stride_h - pad_top + ky * dil_h
                        ix = ox * stride_w - pad_left + kx * dil_w
                        for c in range(channels):
                            inside = 0 <= iy < height and 0 <= ix < width
                            cols[row, col] = x[b, iy, ix, c] if inside else pad_value
                            col += 1
                row += 1
    return cols


def depthwise_pixel(
    x, b, oy, ox, wz, x_zp, stride_h, stride_w, dil_h, dil_w, pad_top, pad_left, multiplier, acc
):
    """acc[o] += sum over the valid taps of (x[b, iy, ix, o // multiplier] - x_zp) * wz[ky, kx, o], in
    place."""
    height, width = x.shape[1], x.shape[2]
    kernel_h, kernel_w, out_c = wz.shape
    for ky in range(kernel_h):
        for kx in range(kernel_w):
            iy, ix = oy * stride_h - pad_top + ky * dil_h, ox * stride_w - pad_left + kx * dil_w
            if 0 <= iy < height and 0 <= ix < width:
                for o in range(out_c):
                    acc[o] += (int(x[b, iy, ix, o // multiplier]) - x_zp) * int(wz[ky, kx, o])


def centered_weights(w, w_zp):
    """w - w_zp per output channel (the last axis)."""
    return np.asarray(w, np.int64) - np.asarray(w_zp, np.int64)


def depthwise_acc(
    x,
    w,
    x_zp,
    w_zp,
    bias,
    stride_h,
    stride_w,
    dil_h,
    dil_w,
    pad_top,
    pad_left,
    out_h,
    out_w,
    multiplier,
    acc_min,
    acc_max,
    overflow,
):
    """Depthwise conv accumulators, NHWC input, weights [kh, kw, C*multiplier]; taps in (ky, kx) order.

    Output channel o reads input channel o // multiplier. Padded taps contribute zero. Returns (acc, count).
    """
    batch, height, width, _ = x.shape
    kernel_h, kernel_w, out_c = w.shape
    out = np.empty((batch, out_h, out_w, out_c), np.int64)
    count = 0
    for b in range(batch):
        for oy in range(out_h):
            for ox in range(out_w):
                for o in range(out_c):
                    c = o // multiplier
                    acc = int(bias[o])
                    if not acc_min <= acc <= acc_max:
                        count += 1
                        acc = fit(acc, acc_min, acc_max, overflow)
                    for ky in range(kernel_h):
                        for kx in range(kernel_w):
                            iy = oy * stride_h - pad_top + ky * dil_h
                            ix = ox * stride_w - pad_left + kx * dil_w
                            if 0 <= iy < height and 0 <= ix < width:
                                acc += (int(x[b, iy, ix, c]) - x_zp) * (int(w[ky, kx, o]) - int(w_zp[o]))
                                if not acc_min <= acc <= acc_max:
                                    count += 1
                                    acc = fit(acc, acc_min, acc_max, overflow)
                    out[b, oy, ox, o] = acc
    return out, count


def add_shifted(x1, x2, z1, z2, l1, m1, s1, l2, m2, s2, mo, so, zo, qmin, qmax, kind):
    """TFLite's quantized ADD: y = R_o(R_1((x1 - z1) << l1) + R_2((x2 - z2) << l2)) + zo, clamped.

    The reference kernels use l1 = l2 = 20 (15 for int16) with R_i = (M_i, shift e_i); the optimized
    kernels' vector loop folds the shift in: l_i = 20 + e_i with R_i = (M_i, 0), a single rounding.
    """
    out = np.empty(x1.shape, np.int64)
    for i in range(x1.size):
        a = requantize_scalar((int(x1.flat[i]) - z1) << l1, m1, s1, 0.0, kind)
        b = requantize_scalar((int(x2.flat[i]) - z2) << l2, m2, s2, 0.0, kind)
        out.flat[i] = min(max(requantize_scalar(a + b, mo, so, 0.0, kind) + zo, qmin), qmax)
    return out


def add_xnnpack(x1, x2, z1, z2, m1, m2, shift, zo, qmin, qmax, out):
    """XNNPACK's qs8 ADD into ``out``: y = ((x1 - z1) m1 + (x2 - z2) m2 + 2**(shift-1)) >> shift, plus zo,
    clamped.

    One rounding, ties toward +inf, with 21-bit integer multipliers m_i = rint(float32(s_i / so) * 2**shift).
    """
    for i in range(x1.size):
        acc = (int(x1.flat[i]) - z1) * m1 + (int(x2.flat[i]) - z2) * m2 + (1 << (shift - 1))
        out.flat[i] = min(max((acc >> shift) + zo, qmin), qmax)
    return out


def pool2d(x, kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_left, out_h, out_w, is_max, qmin, qmax):
    """Average (TFLite rounding: half away from zero over the valid taps) or max pooling of NHWC integers."""
    batch, height, width, channels = x.shape
    out = np.empty((batch, out_h, out_w, channels), np.int64)
    for b in range(batch):
        for oy in range(out_h):
            for ox in range(out_w):
                for c in range(channels):
                    taps = [
                        int(x[b, iy, ix, c])
                        for iy in range(oy * stride_h - pad_top, oy * stride_h - pad_top + kernel_h)
                        for ix in range(ox * stride_w - pad_left, ox * stride_w - pad_left + kernel_w)
                        if 0 <= iy < height and 0 <= ix < width
                    ]
                    if is_max:
                        value = max(taps)
                    else:
                        total, n = sum(taps), len(taps)
                        value = _trunc_div(total + n // 2, n) if total > 0 else _trunc_div(total - n // 2, n)
                    out[b, oy, ox, c] = min(max(value, qmin), qmax)
    return out


def pack_int4(values):
    """Two 4-bit codes per byte: element 2i in the low nibble, 2i+1 in the high nibble (ONNX and TFLite
    order)."""
    flat = [int(v) & 0xF for v in values.ravel()]
    if len(flat) % 2:
        flat.append(0)
    return np.array([lo | (hi << 4) for lo, hi in zip(flat[0::2], flat[1::2])], np.uint8)


def unpack_int4(packed, count, signed):
    """Inverse of :func:`pack_int4`: the first ``count`` codes, sign-extended when ``signed``, as int16."""
    out = np.empty(count, np.int16)
    for i in range(count):
        nibble = (int(packed[i // 2]) >> (4 * (i % 2))) & 0xF
        out[i] = nibble - 16 if signed and nibble >= 8 else nibble
    return out
