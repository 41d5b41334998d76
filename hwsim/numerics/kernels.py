"""numba kernels: the fast, bit-accurate twins of :mod:`hwsim.numerics.reference`.

Rules (STYLE habits 2 and 4): operands are widened to int64 before they are multiplied; every hardware
register is fitted (saturate or wrap) explicitly where it exists; no ``fastmath``; kernels never raise
user-facing errors and receive only arrays and ints that :mod:`hwsim.numerics.ops` validated. numba widens
integer scalars to int64 on its own, so no width is ever left to a dtype.
"""

from __future__ import annotations

import math
import os

# numba's OpenMP workers wait for the next parallel loop by spinning, then sleep. Waking a sleeping worker
# costs about 70 us on a VM, more than many of a model's layers take, so they spin; but only for a short
# while (libgomp's default is 300,000 turns), so that a multi-threaded BLAS call made after a graph run does
# not compete with spinning workers for long. A default only: it acts if numba has not loaded its OpenMP
# layer yet, and a user's own setting wins.
os.environ.setdefault("GOMP_SPINCOUNT", "10000")

import numba  # noqa: E402
import numpy as np  # noqa: E402

from hwsim.numerics import jit_cache  # noqa: E402,F401  before any kernel: it names numba's cache folder

jit = numba.njit(cache=True, nogil=True)

# Enum values as compile-time constants (RoundingMode, OverflowMode, RequantKind).
HALF_EVEN, HALF_AWAY, HALF_UP, FLOOR, CEIL, TO_ZERO, STOCHASTIC = range(7)
SATURATE, WRAP, EXACT = range(3)
(
    GEMMLOWP_DOUBLE,
    SINGLE_AWAY,
    DOUBLE_HALF_UP,
    SINGLE_HALF_UP,
    INT16_MULTIPLIER,
    FLOAT32_SCALE,
    FLOAT64_PRODUCT,
) = range(7)
INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1


@jit
def round_real(x, mode, u):
    """Round float ``x`` to an integer (int64) under ``mode``; ``u`` in [0, 1) drives STOCHASTIC."""
    f = math.floor(x)
    d = x - f
    if mode == HALF_EVEN:
        return f + 1 if d > 0.5 or (d == 0.5 and f % 2 != 0) else f
    if mode == HALF_AWAY:
        return f + 1 if d > 0.5 or (d == 0.5 and x > 0) else f
    if mode == HALF_UP:
        return f + 1 if d >= 0.5 else f
    if mode == FLOOR:
        return f
    if mode == CEIL:
        return math.ceil(x)
    if mode == TO_ZERO:
        return math.trunc(x)
    return f + 1 if u < d else f  # STOCHASTIC


@jit
def fit(v, lo, hi, overflow):
    """Saturate or wrap ``v`` into [lo, hi] (a register of hi - lo + 1 codes); EXACT leaves it alone."""
    if (lo <= v and v <= hi) or overflow == EXACT:
        return v
    if overflow == SATURATE:
        return lo if v < lo else hi
    return (v - lo) % (hi - lo + 1) + lo


@jit
def wrap32(v):
    """The low 32 bits of ``v`` as a signed value."""
    return ((v + 2147483648) & 0xFFFFFFFF) - 2147483648


@jit
def _trunc_div(a, b):
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


@jit
def rounding_divide_by_pot(x, exponent):
    """gemmlowp RoundingDivideByPOT: ties away from zero."""
    if exponent == 0:
        return x
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


@jit
def requantize_scalar(acc, multiplier, shift, scale, kind):
    """One accumulator through the requantizer ``kind`` (before the zero point); see ``RequantKind``."""
    acc = np.int64(acc)
    multiplier = np.int64(multiplier)
    e = np.int64(shift)
    if kind == FLOAT32_SCALE:
        return round_real(np.float64(np.float32(acc) * np.float32(scale)), HALF_EVEN, 0.0)
    if kind == FLOAT64_PRODUCT:
        return round_real(np.float64(acc) * np.float64(np.float32(scale)), HALF_EVEN, 0.0)
    left = e if e > 0 else 0
    right = -e if e < 0 else 0
    if kind == GEMMLOWP_DOUBLE:
        a = wrap32(acc << left)
        if a == INT32_MIN and multiplier == INT32_MIN:
            high = np.int64(INT32_MAX)
        else:
            ab = a * multiplier
            nudge = (np.int64(1) << 30) if ab >= 0 else 1 - (np.int64(1) << 30)
            high = _trunc_div(ab + nudge, np.int64(1) << 31)
        return rounding_divide_by_pot(high, right)
    if kind == DOUBLE_HALF_UP:
        high = (wrap32(acc << left) * multiplier + (np.int64(1) << 30)) >> 31
        if right > 0:
            return (high + (np.int64(1) << (right - 1))) >> right
        return high
    if kind == SINGLE_AWAY:
        total = 31 - e
        p = acc * multiplier
        magnitude = (abs(p) + (np.int64(1) << (total - 1))) >> total
        return wrap32(magnitude if p >= 0 else -magnitude)
    if kind == SINGLE_HALF_UP:
        total = 31 - e
        return wrap32((acc * multiplier + (np.int64(1) << (total - 1))) >> total)
    # INT16_MULTIPLIER
    m16 = np.int64(0x7FFF) if multiplier >= 0x7FFF0000 else (multiplier + (1 << 15)) >> 16
    total = 15 - e
    return wrap32((acc * m16 + (np.int64(1) << (total - 1))) >> total)


@jit
def quantize(x, scale, zero_point, qmin, qmax, rounding, overflow, noise):
    """q = fit(round(x / scale) + zero_point) elementwise over flat, equally long arrays."""
    out = np.empty(x.size, np.int64)
    limit = 2.0**53
    for i in range(x.size):
        v = np.float64(x[i] / scale[i])
        v = min(max(v, -limit), limit)
        u = noise[i] if noise.size else 0.0
        out[i] = fit(round_real(v, rounding, u) + zero_point[i], qmin, qmax, overflow)
    return out


@jit
def dequantize(q, scale, zero_point):
    """float32(q - zero_point) * scale over flat arrays."""
    out = np.empty(q.size, np.float32)
    for i in range(q.size):
        out[i] = np.float32(np.int64(q[i]) - np.int64(zero_point[i])) * np.float32(scale[i])
    return out


@jit
def requantize_span(acc, multiplier, shift, scale, zero_point, qmin, qmax, kind, out, c0, c1):
    """out[c] = clamp(R_kind(acc[c]) + zero_point) for the channels c0 <= c < c1 of one output row.

    The kind is tested once, outside the channel loop, so each loop vectorises; the float kind rounds with
    np.rint (IEEE half-even, the rule of ``round_real(..., HALF_EVEN)``) and the two-rounding kinds are
    written branch-free (the same math as ``requantize_scalar``, which the tests hold them to).
    """
    if kind == FLOAT32_SCALE:
        lo, hi = qmin - zero_point, qmax - zero_point
        if -(1 << 24) <= lo and hi <= 1 << 24:  # clamp while still float32 (exact bounds), then 32-bit lanes
            flo, fhi = np.float32(lo), np.float32(hi)
            for c in range(c0, c1):
                v = min(max(np.rint(np.float32(acc[c]) * np.float32(scale[c])), flo), fhi)
                out[c] = np.int32(v) + np.int32(zero_point)
        else:
            for c in range(c0, c1):
                v = np.int64(np.rint(np.float32(acc[c]) * np.float32(scale[c]))) + zero_point
                out[c] = min(max(v, qmin), qmax)
    elif kind == GEMMLOWP_DOUBLE:
        for c in range(c0, c1):
            e = np.int64(shift[c])
            left = e if e > 0 else 0
            right = -e if e < 0 else 0
            # int32 operands, said so by truncating (the values fit: it changes nothing), so that the product
            # is a 32 x 32 -> 64-bit multiply on every lane
            a = np.int64(np.int32(np.int64(acc[c]) << left))
            m = np.int64(np.int32(multiplier[c]))
            ab = a * m
            q = ab + ((np.int64(1) << 30) if ab >= 0 else 1 - (np.int64(1) << 30))
            high = (q >> 31) if q >= 0 else -((-q) >> 31)
            if a == INT32_MIN and m == INT32_MIN:
                high = np.int64(INT32_MAX)
            mask = (np.int64(1) << right) - 1
            threshold = (mask >> 1) + (1 if high < 0 else 0)
            v = (high >> right) + (1 if (high & mask) > threshold else 0) + zero_point
            out[c] = min(max(v, qmin), qmax)
    elif kind == DOUBLE_HALF_UP:
        for c in range(c0, c1):
            e = np.int64(shift[c])
            left = e if e > 0 else 0
            right = -e if e < 0 else 0
            high = (
                np.int64(np.int32(np.int64(acc[c]) << left)) * np.int64(np.int32(multiplier[c]))
                + (np.int64(1) << 30)
            ) >> 31
            v = ((high + ((np.int64(1) << right) >> 1)) >> right) + zero_point
            out[c] = min(max(v, qmin), qmax)
    else:
        for c in range(c0, c1):
            v = requantize_scalar(acc[c], multiplier[c], shift[c], scale[c], kind) + zero_point
            out[c] = min(max(v, qmin), qmax)


@numba.njit(cache=True, nogil=True, parallel=True)
def raw_dot_i32(x, w, block):
    """sum_k x[m, k] * w[k, n] in int32, for callers that proved |sum| < 2**31 for every partial sum.

    Blocks of ``block`` output columns run in parallel. Within a block, K is the outer loop and each weight
    row is a contiguous 1-D view, so the innermost column loop vectorises (32-bit lanes) and every weight
    byte is read once per call, whatever the number of rows.
    """
    rows, depth = x.shape
    cols = w.shape[1]
    out = np.empty((rows, cols), np.int32)
    blocks = (cols + block - 1) // block
    for b in numba.prange(blocks):
        n0 = b * block
        n1 = min(n0 + block, cols)
        width = n1 - n0
        acc = np.zeros((rows, width), np.int32)
        for k in range(depth):
            wk = w[k, n0:n1]
            for m in range(rows):
                xv = np.int32(x[m, k])
                am = acc[m]
                for n in range(width):
                    am[n] += xv * wk[n]
        out[:, n0:n1] = acc
    return out


@numba.njit(cache=True, nogil=True, parallel=True)
def raw_dot_int64(x, wt):
    """sum_k x[m, k] * wt[n, k] exactly in int64, parallel over output rows (order cannot matter: no
    overflow).

    The exact path for wide operands (int16 x int8 at large K) whose sums need more than 32 bits.
    """
    rows, depth = x.shape
    cols = wt.shape[0]
    out = np.empty((rows, cols), np.int64)
    for n in numba.prange(cols):
        for m in range(rows):
            acc = np.int64(0)
            for k in range(depth):
                acc += np.int64(x[m, k]) * np.int64(wt[n, k])
            out[m, n] = acc
    return out


@jit
def matmul_acc_pairwise16(x, w, x_zp, w_zp, bias):
    """AVX2 ``vpmaddubsw`` arithmetic of uint8 x int8; see ``reference.matmul_acc_pairwise16``."""
    rows, depth = x.shape
    cols = w.shape[1]
    out = np.empty((rows, cols), np.int64)
    col_sum = np.zeros(cols, np.int64)
    for k in range(depth):
        for n in range(cols):
            col_sum[n] += np.int64(w[k, n])
    for m in range(rows):
        row_sum = np.int64(0)
        for k in range(depth):
            row_sum += np.int64(x[m, k])
        for n in range(cols):
            total = np.int64(0)
            for j in range(0, depth, 2):
                pair = np.int64(x[m, j]) * np.int64(w[j, n])
                if j + 1 < depth:
                    pair += np.int64(x[m, j + 1]) * np.int64(w[j + 1, n])
                total += min(max(pair, -32768), 32767)
            zw = np.int64(w_zp[n])
            total += -zw * row_sum - x_zp * col_sum[n] + depth * x_zp * zw
            out[m, n] = total + np.int64(bias[n])
    return out


@numba.njit(cache=True, nogil=True, parallel=True)
def im2col(
    x, kernel_h, kernel_w, stride_h, stride_w, dil_h, dil_w, pad_top, pad_left, out_h, out_w, pad_value
):
    """NHWC patches as rows (n, oy, ox), columns (ky, kx, c); padded taps read ``pad_value``. Output rows
    (n, oy) run in parallel; each tap copies one contiguous channel row."""
    batch, height, width, channels = x.shape
    cols = np.empty((batch * out_h * out_w, kernel_h * kernel_w * channels), x.dtype)
    for r in numba.prange(batch * out_h):
        b = r // out_h
        oy = r % out_h
        for ox in range(out_w):
            dst = cols[r * out_w + ox]
            col = 0
            for ky in range(kernel_h):
                iy = oy * stride_h - pad_top + ky * dil_h
                for kx in range(kernel_w):
                    ix = ox * stride_w - pad_left + kx * dil_w
                    if 0 <= iy < height and 0 <= ix < width:
                        src = x[b, iy, ix]
                        for c in range(channels):
                            dst[col + c] = src[c]
                    else:
                        for c in range(channels):
                            dst[col + c] = pad_value
                    col += channels
    return cols


@jit
def depthwise_pixel(
    x, b, oy, ox, wz, x_zp, stride_h, stride_w, dil_h, dil_w, pad_top, pad_left, multiplier, acc
):
    """acc[o] += sum over the valid taps of (x - x_zp) * wz[ky, kx, o] for output pixel (b, oy, ox), in int32,
    channel innermost; padded taps are skipped (they contribute zero). ``wz`` holds w - w_zp as int32."""
    height, width = x.shape[1], x.shape[2]
    kernel_h, kernel_w, out_c = wz.shape
    zx = np.int32(x_zp)
    for ky in range(kernel_h):
        iy = oy * stride_h - pad_top + ky * dil_h
        if iy < 0 or iy >= height:
            continue
        for kx in range(kernel_w):
            ix = ox * stride_w - pad_left + kx * dil_w
            if ix < 0 or ix >= width:
                continue
            xr = x[b, iy, ix]
            wr = wz[ky, kx]
            if multiplier == 1:
                for o in range(out_c):
                    acc[o] += (np.int32(xr[o]) - zx) * wr[o]
            else:
                for o in range(out_c):
                    acc[o] += (np.int32(xr[o // multiplier]) - zx) * wr[o]


@jit
def centered_weights(w, w_zp):
    """w - w_zp as int32 [kh, kw, C*m], the depthwise kernels' operand."""
    kernel_h, kernel_w, out_c = w.shape
    wz = np.empty((kernel_h, kernel_w, out_c), np.int32)
    for ky in range(kernel_h):
        for kx in range(kernel_w):
            for o in range(out_c):
                wz[ky, kx, o] = np.int32(w[ky, kx, o]) - np.int32(w_zp[o])
    return wz


@numba.njit(cache=True, nogil=True, parallel=True)
def depthwise_acc_i32(
    x, w, x_zp, w_zp, bias, stride_h, stride_w, dil_h, dil_w, pad_top, pad_left, out_h, out_w, multiplier
):
    """Depthwise accumulators in int32, channel innermost (vectorised), rows in parallel.

    For callers that proved no partial sum leaves int32 (then order cannot matter); otherwise use
    ``depthwise_acc``, which fits the register after every addition.
    """
    batch = x.shape[0]
    out_c = w.shape[2]
    out = np.empty((batch, out_h, out_w, out_c), np.int32)
    wz = centered_weights(w, w_zp)
    for r in numba.prange(batch * out_h):
        b = r // out_h
        oy = r % out_h
        for ox in range(out_w):
            acc = out[b, oy, ox]
            for o in range(out_c):
                acc[o] = np.int32(bias[o])
            depthwise_pixel(
                x, b, oy, ox, wz, x_zp, stride_h, stride_w, dil_h, dil_w, pad_top, pad_left, multiplier, acc
            )
    return out


@jit
def add_shifted(x1, x2, z1, z2, l1, m1, s1, l2, m2, s2, mo, so, zo, qmin, qmax, kind):
    """TFLite's quantized ADD over flat arrays, per-input left shifts; see ``reference.add_shifted``.

    Blocks of elements go through ``requantize_span`` (one multiplier repeated), whose loops vectorise; the
    inner requantizers are not clamped (a bound wider than any int32 sum), only the output is.
    """
    n = x1.size
    out = np.empty(n, np.int64)
    block = max(1, min(n, 1024))
    mult = np.empty((3, block), np.int64)
    shift = np.empty((3, block), np.int64)
    for j, (m, e) in enumerate(((m1, s1), (m2, s2), (mo, so))):
        mult[j, :] = m
        shift[j, :] = e
    scale = np.zeros(block, np.float32)
    a, b = np.empty(block, np.int64), np.empty(block, np.int64)
    # separate outputs: in place would not vectorise
    ra, rb = np.empty(block, np.int64), np.empty(block, np.int64)
    wide = np.int64(1) << 62
    for start in range(0, n, block):
        count = min(block, n - start)
        in1, in2 = x1[start : start + count], x2[start : start + count]
        for i in range(count):
            a[i] = (np.int64(in1[i]) - z1) << l1
            b[i] = (np.int64(in2[i]) - z2) << l2
        requantize_span(a, mult[0], shift[0], scale, 0, -wide, wide, kind, ra, 0, count)
        requantize_span(b, mult[1], shift[1], scale, 0, -wide, wide, kind, rb, 0, count)
        for i in range(count):
            a[i] = ra[i] + rb[i]
        requantize_span(
            a, mult[2], shift[2], scale, zo, qmin, qmax, kind, out[start : start + count], 0, count
        )
    return out


@jit
def add_xnnpack(x1, x2, z1, z2, m1, m2, shift, zo, qmin, qmax, out):
    """XNNPACK's qs8 ADD over flat 8-bit arrays into ``out``; see ``reference.add_xnnpack``.

    Where the multipliers and zero points keep every partial sum inside int32 (as XNNPACK's own int32 lanes
    need), the zero points and the rounding term are one int32 bias, as in XNNPACK, and each element takes
    two int32 multiply-adds, on twice the lanes of int64; otherwise every step is int64.
    """
    half = np.int64(1) << (shift - 1)
    bound = (255 + abs(np.int64(z1))) * abs(np.int64(m1)) + (255 + abs(np.int64(z2))) * abs(np.int64(m2))
    if bound + half < np.int64(1) << 31:  # |x - z| <= 255 + |z| for 8-bit codes
        bias = np.int32(half - np.int64(z1) * m1 - np.int64(z2) * m2)
        a, b = np.int32(m1), np.int32(m2)
        for i in range(x1.size):
            acc = np.int32(np.int32(x1[i]) * a + np.int32(x2[i]) * b + bias)
            out[i] = min(max((acc >> shift) + zo, qmin), qmax)
    else:
        for i in range(x1.size):
            acc = (np.int64(x1[i]) - z1) * m1 + (np.int64(x2[i]) - z2) * m2 + half
            out[i] = min(max((acc >> shift) + zo, qmin), qmax)
    return out


@jit
def pool2d(x, kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_left, out_h, out_w, is_max, qmin, qmax):
    """Average (half away from zero over valid taps) or max pooling; see ``reference.pool2d``."""
    batch, height, width, channels = x.shape
    out = np.empty((batch, out_h, out_w, channels), np.int64)
    for b in range(batch):
        for oy in range(out_h):
            for ox in range(out_w):
                y0 = oy * stride_h - pad_top
                x0 = ox * stride_w - pad_left
                for c in range(channels):
                    total = np.int64(0)
                    best = np.int64(-(1 << 62))
                    n = 0
                    for iy in range(max(y0, 0), min(y0 + kernel_h, height)):
                        for ix in range(max(x0, 0), min(x0 + kernel_w, width)):
                            v = np.int64(x[b, iy, ix, c])
                            total += v
                            best = max(best, v)
                            n += 1
                    if is_max:
                        value = best
                    elif total > 0:
                        value = _trunc_div(total + n // 2, n)
                    else:
                        value = _trunc_div(total - n // 2, n)
                    out[b, oy, ox, c] = min(max(value, qmin), qmax)
    return out


@jit
def pack_int4(values):
    """Element 2i in the low nibble, 2i+1 in the high nibble of byte i."""
    n = values.size
    out = np.zeros((n + 1) // 2, np.uint8)
    for i in range(n):
        nibble = np.uint8(np.int64(values[i]) & 0xF)
        out[i // 2] |= nibble << np.uint8(4 * (i % 2))
    return out


@jit
def unpack_int4(packed, count, signed):
    """The first ``count`` nibbles of ``packed`` (low first), sign-extended when ``signed``, as int16."""
    out = np.empty(count, np.int16)
    for i in range(count):
        nibble = (np.int64(packed[i // 2]) >> (4 * (i % 2))) & 0xF
        out[i] = nibble - 16 if signed and nibble >= 8 else nibble
    return out


jit_cache.adopt(globals())  # every kernel above: hwsim's checked cache (see jit_cache)
