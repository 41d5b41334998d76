"""Ordered accumulation vectorised across outputs: the narrow-register GEMM and depthwise kernels.

Each output still adds its products one at a time, in the declared order, and its register is fitted
(saturated, wrapped, or only checked) and every excursion counted after each addition, exactly as
:func:`hwsim.numerics.reference.matmul_acc` states it. What changes from a loop per output is the loop
nest: the reduction step is the outer loop and a block of outputs the inner one, so that one vector
instruction advances many registers by the same step; the dependency that forbids reordering is along K,
and no lane depends on another. Three things keep the lanes narrow and the steps cheap:

- lanes and excursion counters are int16 where every value fits (a saturating register within int16 uses
  the CPU's saturating 16-bit add, ``vpaddsw``), else int32, else int64; the products are int16 where
  |x - zx| |w - zw| fits int16, whatever the lanes;
- a row of registers takes ``STEPS`` reduction steps per pass, so it is loaded and stored once per pass;
- a row whose registers provably stay inside the range for the next ``STEPS`` steps (from a bound on
  their magnitude and on the products to come) takes them without fitting or counting: no step could
  leave the range, so fitting would change nothing and count nothing.

Twin: :mod:`hwsim.numerics.reference_ordered` (numpy, the same steps). Same house rules as
:mod:`hwsim.numerics.kernels`.
"""

from __future__ import annotations

import numba
import numpy as np

from hwsim.numerics import jit_cache  # noqa: F401  before any kernel: it names numba's cache folder
from hwsim.numerics.kernels import EXACT, SATURATE, WRAP

ROWS = 8  # GEMM rows per tile: each weight row loaded once serves them all
BLOCK = 64  # outputs per tile: the tile's registers and counters stay in L1
STEPS = 4  # reduction steps per pass over a row of registers
CHUNK = 8192  # steps between flushes of the lane counters, so that int16 counters cannot overflow
# Kernel modes besides kernels' SATURATE, WRAP, EXACT:
SAT16 = 3  # SATURATE in int16 lanes: a 16-bit saturating add, then the register's own bounds
WRAP_MASK = 4  # WRAP with a power-of-two count of codes: a mask instead of a modulo
SAT16_FULL = 5  # SAT16 on the whole int16 range: the saturating add is all it takes


def _lanes(
    max_x: int, max_w: int, max_bias: int, acc_min: int, acc_max: int, overflow: int, depth: int
) -> tuple:
    """How the kernels hold registers for |x - zx| <= ``max_x``, |w - zw| <= ``max_w``, |bias| <=
    ``max_bias``: (lane dtype, operand dtype, lo, hi, mask, limit, mode).

    Lanes are int16 for a saturating register within int16 whose products and bias fit int16 (mode SAT16),
    else the narrowest of int16, int32, int64 that holds every sum a lane computes: a fitted register plus
    one product (or the bias), and its distance to ``acc_min`` (for WRAP); for EXACT (the true sums), the
    largest partial sum, and the bounds are clipped to the lane (a sum that fits the lane cannot pass a
    bound beyond it). Operands (x - zx, w - zw) are int16 when their product fits int16, else the lane
    dtype. The mask is hi - lo when WRAP has a power-of-two count of codes (mode WRAP_MASK), else 0 (a
    modulo); -1 for 64 bits, whose wrap int64 arithmetic already is. ``limit`` is the largest magnitude
    every value in [-limit, limit] lies in the register (-1, never, for int64 lanes, whose bound arithmetic
    could overflow).
    """
    product = max_x * max_w
    small_products = max_x < 1 << 15 and max_w < 1 << 15 and product < 1 << 15
    if overflow == SATURATE or overflow == WRAP:
        need = (acc_max - acc_min) + max(product, max_bias) + max(abs(acc_min), abs(acc_max))
    else:
        need = max_bias + depth * product
    sat16 = (
        overflow == SATURATE
        and -(1 << 15) <= acc_min <= acc_max < 1 << 15
        and small_products
        and max_bias < 1 << 15
    )
    lane = np.int16 if sat16 or need < 1 << 15 else np.int32 if need < 1 << 31 else np.int64
    info = np.iinfo(lane)
    lo, hi = max(acc_min, info.min), min(acc_max, info.max)
    span = acc_max - acc_min + 1
    mask = 0 if overflow != WRAP or span & (span - 1) else (span - 1 if span - 1 < 1 << 63 else -1)
    mode = WRAP_MASK if mask else overflow
    if overflow == SATURATE and lane is np.int16:
        mode = SAT16_FULL if (lo, hi) == (-(1 << 15), (1 << 15) - 1) else SAT16
    limit = min(hi, -1 - lo) if lane is not np.int64 else -1
    operand = np.int16 if small_products else lane
    return lane, operand, lane(lo), lane(hi), lane(mask), limit, mode


def _span(a: np.ndarray, zero_points) -> int:
    """An upper bound of |a - z| over the elements and zero points (cheap: from the extremes of each)."""
    if not a.size:
        return 0
    z = np.asarray(zero_points, np.int64)
    return max(abs(int(a.max()) - int(z.min())), abs(int(a.min()) - int(z.max())))


def matmul_acc(x, w, x_zp, w_zp, bias, acc_min, acc_max, overflow, k_order, bias_last):
    """``reference.matmul_acc`` (same arguments, same result), outputs as lanes: operands centred and put in
    the accumulation order once, in the narrowest dtypes that hold every product and sum, then
    ``_gemm_lanes``."""
    bias = np.asarray(bias, np.int64)
    lane, operand, lo, hi, mask, limit, mode = _lanes(
        _span(x, x_zp),
        _span(w, w_zp),
        int(np.abs(bias).max(initial=0)),
        acc_min,
        acc_max,
        overflow,
        x.shape[1],
    )
    xs = np.empty(x.shape, operand)
    wt = np.empty(w.shape, operand)
    whole = max(x.shape[1], 1)  # one group: all of K
    _centre_gemm(x, w, x_zp, np.asarray(w_zp, np.int64).reshape(-1, 1), k_order, whole, xs, wt)
    out = np.empty((1, x.shape[0], w.shape[1]), np.int64)
    count = _gemm_modes(xs, wt, bias.astype(lane), lo, hi, mask, limit, mode, bool(bias_last), whole, out)
    return out[0], count


def matmul_groups_acc(x, w, x_zp, w_zp, group_size, acc_min, acc_max, overflow, bias_last):
    """Per-group ordered sums, acc[g, m, n] = sum over k of group g (``group_size`` consecutive k, in order)
    of (x[m, k] - x_zp)(w[k, n] - w_zp[n, g]), each group in a register of its own that starts at zero (a
    zero bias, loaded first or added last as ``bias_last`` says), all groups in one call.
    Returns (acc, count)."""
    depth = x.shape[1]
    lane, operand, lo, hi, mask, limit, mode = _lanes(
        _span(x, x_zp), _span(w, w_zp), 0, acc_min, acc_max, overflow, group_size
    )
    xs = np.empty(x.shape, operand)
    wt = np.empty(w.shape, operand)
    _centre_gemm(x, w, x_zp, np.asarray(w_zp, np.int64), np.arange(depth), group_size, xs, wt)
    out = np.empty((-(-depth // group_size), x.shape[0], w.shape[1]), np.int64)
    count = _gemm_modes(
        xs, wt, np.zeros(w.shape[1], lane), lo, hi, mask, limit, mode, bool(bias_last), group_size, out
    )
    return out, count


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
    """``reference.depthwise_acc`` (same arguments, same result), output channels as lanes: x centred with
    each input channel repeated for its ``multiplier`` outputs, w centred, then ``_depthwise_lanes``."""
    bias = np.asarray(bias, np.int64)
    lane, operand, lo, hi, mask, _, mode = _lanes(
        _span(x, x_zp),
        _span(w, w_zp),
        int(np.abs(bias).max(initial=0)),
        acc_min,
        acc_max,
        overflow,
        w.shape[0] * w.shape[1],
    )
    xc = np.empty((*x.shape[:3], w.shape[2]), operand)
    _centre_depthwise(x.reshape(-1, x.shape[3]), x_zp, multiplier, xc.reshape(-1, w.shape[2]))
    wz = (w.astype(np.int64) - np.asarray(w_zp, np.int64)).astype(operand)
    return _depthwise_modes(
        xc,
        wz,
        bias.astype(lane),
        stride_h,
        stride_w,
        dil_h,
        dil_w,
        pad_top,
        pad_left,
        out_h,
        out_w,
        lo,
        hi,
        mask,
        mode,
    )


@numba.njit(cache=True, nogil=True)
def _gemm_modes(xs, wt, bias, lo, hi, mask, limit, mode, bias_last, group_size, out):
    """``_gemm_lanes`` with ``mode`` made a compile-time constant (a call from Python cannot pass one)."""
    if mode == SAT16_FULL:
        return _gemm_lanes(xs, wt, bias, lo, hi, mask, limit, SAT16_FULL, bias_last, group_size, out)
    if mode == SAT16:
        return _gemm_lanes(xs, wt, bias, lo, hi, mask, limit, SAT16, bias_last, group_size, out)
    if mode == SATURATE:
        return _gemm_lanes(xs, wt, bias, lo, hi, mask, limit, SATURATE, bias_last, group_size, out)
    if mode == WRAP_MASK:
        return _gemm_lanes(xs, wt, bias, lo, hi, mask, limit, WRAP_MASK, bias_last, group_size, out)
    if mode == WRAP:
        return _gemm_lanes(xs, wt, bias, lo, hi, mask, limit, WRAP, bias_last, group_size, out)
    return _gemm_lanes(xs, wt, bias, lo, hi, mask, limit, EXACT, bias_last, group_size, out)


@numba.njit(cache=True, nogil=True)
def _depthwise_modes(
    xc, wz, bias, stride_h, stride_w, dil_h, dil_w, pad_top, pad_left, out_h, out_w, lo, hi, mask, mode
):
    """``_depthwise_lanes`` with ``mode`` made a compile-time constant (see ``_gemm_modes``)."""
    if mode == SAT16_FULL:
        return _depthwise_lanes(
            xc,
            wz,
            bias,
            stride_h,
            stride_w,
            dil_h,
            dil_w,
            pad_top,
            pad_left,
            out_h,
            out_w,
            lo,
            hi,
            mask,
            SAT16_FULL,
        )
    if mode == SAT16:
        return _depthwise_lanes(
            xc,
            wz,
            bias,
            stride_h,
            stride_w,
            dil_h,
            dil_w,
            pad_top,
            pad_left,
            out_h,
            out_w,
            lo,
            hi,
            mask,
            SAT16,
        )
    if mode == SATURATE:
        return _depthwise_lanes(
            xc,
            wz,
            bias,
            stride_h,
            stride_w,
            dil_h,
            dil_w,
            pad_top,
            pad_left,
            out_h,
            out_w,
            lo,
            hi,
            mask,
            SATURATE,
        )
    if mode == WRAP_MASK:
        return _depthwise_lanes(
            xc,
            wz,
            bias,
            stride_h,
            stride_w,
            dil_h,
            dil_w,
            pad_top,
            pad_left,
            out_h,
            out_w,
            lo,
            hi,
            mask,
            WRAP_MASK,
        )
    if mode == WRAP:
        return _depthwise_lanes(
            xc,
            wz,
            bias,
            stride_h,
            stride_w,
            dil_h,
            dil_w,
            pad_top,
            pad_left,
            out_h,
            out_w,
            lo,
            hi,
            mask,
            WRAP,
        )
    return _depthwise_lanes(
        xc, wz, bias, stride_h, stride_w, dil_h, dil_w, pad_top, pad_left, out_h, out_w, lo, hi, mask, EXACT
    )


@numba.njit(cache=True, nogil=True)
def _centre_gemm(x, w, x_zp, w_zp, k_order, group_size, xs, wt):
    """xs[m, kk] = x[m, k_order[kk]] - x_zp and wt[kk, n] = w[k_order[kk], n] - w_zp[n, kk // group_size], in
    the operand dtype (w_zp [N, groups]: one zero point per column and group)."""
    for m in range(x.shape[0]):
        for kk in range(x.shape[1]):
            xs[m, kk] = np.int64(x[m, k_order[kk]]) - x_zp
    for kk in range(w.shape[0]):
        g = kk // group_size
        for n in range(w.shape[1]):
            wt[kk, n] = np.int64(w[k_order[kk], n]) - w_zp[n, g]


@numba.njit(cache=True, nogil=True)
def _centre_depthwise(x, x_zp, multiplier, xc):
    """xc[p, o] = x[p, o // multiplier] - x_zp for every pixel p, in the operand dtype."""
    for p in range(x.shape[0]):
        for o in range(xc.shape[1]):
            xc[p, o] = np.int64(x[p, o // multiplier]) - x_zp


@numba.njit(cache=True, nogil=True)
def _fit(a, p, lo, hi, mask, mode, lane):
    """Register ``a`` plus ``p``, fitted as ``mode`` says: (the register, True if the sum left [lo, hi]).

    Every result is cast to the lane dtype before it is compared, so that LLVM keeps the lane's width
    (numba widens integer scalars to int64; the int16 sum is widened by hand, as numpy scalars would wrap).
    SAT16 adds with 16-bit saturation (``vpaddsw``): the sum left int16 exactly when subtracting ``p`` back
    (wrapping) does not give ``a``. EXACT keeps the sum and reports it on every step it stays outside, as
    the reference counts it. ``mode`` is a compile-time constant
    (``numba.literally``: one copy per mode, without branches, so that the loops calling it vectorise).
    """
    numba.literally(mode)
    if mode == SAT16_FULL:
        sat = np.int16(min(max(np.int64(a) + np.int64(p), -32768), 32767))
        return lane(sat), np.int16(sat - p) != a
    if mode == SAT16:
        sat = np.int16(min(max(np.int64(a) + np.int64(p), -32768), 32767))
        fitted = min(max(sat, lo), hi)
        return lane(fitted), (np.int16(sat - p) != a) | (fitted != sat)
    v = lane(a + p)
    if mode == SATURATE:
        fitted = lane(min(max(v, lo), hi))
        return fitted, fitted != v
    if mode == WRAP_MASK:
        fitted = lane(((v - lo) & mask) + lo)
        return fitted, fitted != v
    if mode == WRAP:
        fitted = lane((v - lo) % (hi - lo + 1) + lo)
        return fitted, fitted != v
    return v, (v < lo) | (v > hi)


@numba.njit(cache=True, nogil=True, inline="always")
def _add_row(acc, count, terms, lo, hi, mask, mode, lane):
    """One step for every lane: acc[j] += terms[j] (the bias, or one tap's products), fitted and counted."""
    for j in range(acc.size):
        a, e = _fit(acc[j], terms[j], lo, hi, mask, mode, lane)
        acc[j] = a
        count[j] += e


@numba.njit(cache=True, nogil=True, inline="always")
def _add_products(acc, count, xrow, wrow, lo, hi, mask, mode, operand, lane):
    """One step for every lane, acc[j] += xrow[j] * wrow[j] (one depthwise tap), fitted and counted."""
    for j in range(acc.size):
        a, e = _fit(acc[j], operand(xrow[j] * wrow[j]), lo, hi, mask, mode, lane)
        acc[j] = a
        count[j] += e


@numba.njit(cache=True, nogil=True, inline="always")
def _step_row(acc, count, xv, wrow, lo, hi, mask, mode, operand, lane):
    """One step for every lane, acc[j] += xv * wrow[j] fitted and counted; returns (max, min) of the lanes
    after it (a bound for the next steps)."""
    top, bot = lo, hi
    for j in range(acc.size):
        a, e = _fit(acc[j], operand(xv * wrow[j]), lo, hi, mask, mode, lane)
        acc[j] = a
        count[j] += e
        top, bot = max(top, a), min(bot, a)
    return top, bot


@numba.njit(cache=True, nogil=True, inline="always")
def _steps_row(acc, count, x0, x1, x2, x3, w0, w1, w2, w3, lo, hi, mask, mode, operand, lane):
    """``STEPS`` steps for every lane in one pass, each fitted and counted; returns (max, min) of the lanes
    after them."""
    top, bot = lo, hi
    for j in range(acc.size):
        a, e0 = _fit(acc[j], operand(x0 * w0[j]), lo, hi, mask, mode, lane)
        a, e1 = _fit(a, operand(x1 * w1[j]), lo, hi, mask, mode, lane)
        a, e2 = _fit(a, operand(x2 * w2[j]), lo, hi, mask, mode, lane)
        a, e3 = _fit(a, operand(x3 * w3[j]), lo, hi, mask, mode, lane)
        acc[j] = a
        count[j] += np.int32(e0) + np.int32(e1) + np.int32(e2) + np.int32(e3)
        top, bot = max(top, a), min(bot, a)
    return top, bot


@numba.njit(cache=True, nogil=True, inline="always")
def _inside_steps_row(acc, x0, x1, x2, x3, w0, w1, w2, w3, operand, lane):
    """``STEPS`` steps for every lane where none can leave the range: plain sums, nothing to fit or count."""
    for j in range(acc.size):
        acc[j] = lane(
            acc[j] + operand(x0 * w0[j]) + operand(x1 * w1[j]) + operand(x2 * w2[j]) + operand(x3 * w3[j])
        )


@numba.njit(cache=True, nogil=True)
def _tile_steps(xs, wt, wabs, acc, count, bound, r0, n0, k0, k1, lo, hi, mask, limit, mode, operand, lane):
    """Steps k0 <= kk < k1 of every row of a tile, ``STEPS`` at a time, then one at a time.

    ``bound[r]`` bounds |acc[r, j]| over the lanes and ``wabs[kk]`` |wt[kk, n]| over the columns, so the
    next steps move no register of row r by more than ``reach``; where bound + reach <= ``limit`` they
    cannot leave the range and run unchecked. A row whose inputs are all zero for those steps is skipped
    where that changes nothing: registers already fitted (SATURATE, WRAP) or all inside the range.
    """
    numba.literally(mode)
    height, width = acc.shape
    fitted = mode != EXACT
    kk = k0
    while kk + STEPS <= k1:
        w0, w1 = wt[kk, n0 : n0 + width], wt[kk + 1, n0 : n0 + width]
        w2, w3 = wt[kk + 2, n0 : n0 + width], wt[kk + 3, n0 : n0 + width]
        for r in range(height):
            x0, x1, x2, x3 = xs[r0 + r, kk], xs[r0 + r, kk + 1], xs[r0 + r, kk + 2], xs[r0 + r, kk + 3]
            reach = (
                abs(np.int64(x0)) * wabs[kk]
                + abs(np.int64(x1)) * wabs[kk + 1]
                + abs(np.int64(x2)) * wabs[kk + 2]
                + abs(np.int64(x3)) * wabs[kk + 3]
            )
            if bound[r] + reach <= limit:
                if reach:
                    _inside_steps_row(acc[r], x0, x1, x2, x3, w0, w1, w2, w3, operand, lane)
                    bound[r] += reach
            elif reach or not fitted:
                top, bot = _steps_row(
                    acc[r], count[r], x0, x1, x2, x3, w0, w1, w2, w3, lo, hi, mask, mode, operand, lane
                )
                bound[r] = max(np.int64(top), -np.int64(bot))
        kk += STEPS
    while kk < k1:
        for r in range(height):
            xv = xs[r0 + r, kk]
            if xv != 0 or not fitted:
                top, bot = _step_row(
                    acc[r], count[r], xv, wt[kk, n0 : n0 + width], lo, hi, mask, mode, operand, lane
                )
                bound[r] = max(np.int64(top), -np.int64(bot))
        kk += 1


@numba.njit(cache=True, nogil=True, parallel=True)
def _gemm_lanes(xs, wt, bias, lo, hi, mask, limit, mode, bias_last, group_size, out):
    """Ordered accumulators of xs [M, K] (x - zx, columns already in accumulation order) by wt [K, N] (w - zw,
    rows in that order), both in the operand dtype, plus ``bias`` [N] in the lane dtype: out[g] sums the
    g-th run of ``group_size`` steps in a register of its own (one group when group_size >= K). Tiles of
    ROWS x BLOCK of every group run in parallel, each in ``_gemm_tile``. Returns the count of excursions."""
    numba.literally(mode)
    rows, depth = xs.shape
    cols = wt.shape[1]
    wabs = np.zeros(depth, np.int64)
    for kk in range(depth):
        for n in range(cols):
            wabs[kk] = max(wabs[kk], abs(np.int64(wt[kk, n])))
    row_tiles = (rows + ROWS - 1) // ROWS
    col_tiles = (cols + BLOCK - 1) // BLOCK
    tiles = row_tiles * col_tiles
    counts = np.zeros(out.shape[0] * tiles, np.int64)
    for t in numba.prange(out.shape[0] * tiles):
        g = t // tiles
        k0 = g * group_size
        counts[t] = _gemm_tile(
            xs,
            wt,
            wabs,
            bias,
            lo,
            hi,
            mask,
            limit,
            mode,
            bias_last,
            ((t % tiles) // col_tiles) * ROWS,
            (t % col_tiles) * BLOCK,
            k0,
            min(k0 + group_size, depth),
            out[g],
        )
    return counts.sum()


@numba.njit(cache=True, nogil=True)
def _gemm_tile(xs, wt, wabs, bias, lo, hi, mask, limit, mode, bias_last, r0, n0, k0, k1, out):
    """One tile of ``_gemm_lanes``: rows r0.. and columns n0.. of ``out``, steps k0 <= kk < k1; returns its
    excursion count. The lane counters are emptied into the total every ``CHUNK`` steps."""
    numba.literally(mode)
    height = min(ROWS, xs.shape[0] - r0)
    width = min(BLOCK, wt.shape[1] - n0)
    acc = np.zeros((height, width), bias.dtype)
    count = np.zeros((height, width), bias.dtype)
    bound = np.zeros(height, np.int64)
    b = bias[n0 : n0 + width]
    if not bias_last:
        for r in range(height):
            _add_row(acc[r], count[r], b, lo, hi, mask, mode, bias.dtype.type)
        top = np.int64(0)
        for j in range(width):
            top = max(top, abs(np.int64(acc[0, j])))
        bound[:] = top
    total = np.int64(0)
    for start in range(k0, k1, CHUNK):
        stop = min(start + CHUNK, k1)
        _tile_steps(
            xs,
            wt,
            wabs,
            acc,
            count,
            bound,
            r0,
            n0,
            start,
            stop,
            lo,
            hi,
            mask,
            limit,
            mode,
            xs.dtype.type,
            bias.dtype.type,
        )
        for r in range(height):
            for j in range(width):
                total += count[r, j]
                count[r, j] = 0
    if bias_last:
        for r in range(height):
            _add_row(acc[r], count[r], b, lo, hi, mask, mode, bias.dtype.type)
    for r in range(height):
        for j in range(width):
            out[r0 + r, n0 + j] = acc[r, j]
            total += count[r, j]
    return total


@numba.njit(cache=True, nogil=True, parallel=True)
def _depthwise_lanes(
    xc,
    wz,
    bias,
    stride_h,
    stride_w,
    dil_h,
    dil_w,
    pad_top,
    pad_left,
    out_h,
    out_w,
    acc_min,
    acc_max,
    mask,
    mode,
):
    """Ordered depthwise accumulators, the output channels as lanes: xc [N, H, W, C*m] holds x - zx with
    each input channel repeated for its m outputs and wz [kh, kw, C*m] holds w - zw (both in the operand
    dtype), ``bias`` [C*m] is in the lane dtype. Output rows (n, oy) run in parallel, each in
    ``_depthwise_row``. Returns (acc int64 [N, out_h, out_w, C*m], count)."""
    numba.literally(mode)
    batch = xc.shape[0]
    out = np.empty((batch, out_h, out_w, xc.shape[3]), np.int64)
    counts = np.zeros(batch * out_h, np.int64)
    for r in numba.prange(batch * out_h):
        geometry = (stride_h, stride_w, dil_h, dil_w, pad_top, pad_left)
        b, oy = r // out_h, r % out_h
        counts[r] = _depthwise_row(xc, wz, bias, geometry, acc_min, acc_max, mask, mode, b, oy, out)
    return out, counts.sum()


@numba.njit(cache=True, nogil=True)
def _depthwise_row(xc, wz, bias, geometry, lo, hi, mask, mode, b, oy, out):
    """Output row (b, oy) of ``_depthwise_lanes``: per pixel, the bias loaded, then the taps in (ky, kx) order
    (padded taps skipped); returns the row's excursion count. The lane counters (in the lane dtype) are
    emptied into the total every ``CHUNK`` steps."""
    numba.literally(mode)
    stride_h, stride_w, dil_h, dil_w, pad_top, pad_left = geometry
    height, width, channels = xc.shape[1], xc.shape[2], xc.shape[3]
    kernel_h, kernel_w = wz.shape[0], wz.shape[1]
    operand, lane = xc.dtype.type, bias.dtype.type
    acc = np.empty(channels, bias.dtype)
    count = np.zeros(channels, bias.dtype)
    total = np.int64(0)
    steps = 0
    for ox in range(out.shape[2]):
        acc[:] = 0
        _add_row(acc, count, bias, lo, hi, mask, mode, lane)
        steps += 1
        for ky in range(kernel_h):
            iy = oy * stride_h - pad_top + ky * dil_h
            if iy < 0 or iy >= height:
                continue
            for kx in range(kernel_w):
                ix = ox * stride_w - pad_left + kx * dil_w
                if 0 <= ix < width:
                    _add_products(acc, count, xc[b, iy, ix], wz[ky, kx], lo, hi, mask, mode, operand, lane)
                    steps += 1
                    if steps >= CHUNK:
                        for o in range(channels):
                            total += count[o]
                            count[o] = 0
                        steps = 0
        for o in range(channels):
            out[b, oy, ox, o] = acc[o]
    for o in range(channels):
        total += count[o]
    return total


jit_cache.adopt(globals())  # every kernel above: hwsim's checked cache (see jit_cache)
