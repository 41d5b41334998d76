"""Ordered accumulation vectorised across outputs: the narrow-register GEMM and depthwise kernels.

Each output still adds its products one at a time, in the declared order, and its register is fitted
(saturated, wrapped, or only checked) and every excursion counted after each addition, exactly as
:func:`hwsim.numerics.reference.matmul_acc` states it. What changes from a loop per output is the loop
nest: the reduction step is the outer loop and a block of outputs the inner one, so that one vector
instruction advances many registers by the same step; the dependency that forbids reordering is along K,
and no lane depends on another. Lanes are int32 when every value a lane can hold fits them (twice as many
per instruction), int64 otherwise. Twin: :mod:`hwsim.numerics.reference_ordered` (numpy, the same steps).
Same house rules as :mod:`hwsim.numerics.kernels`.
"""

from __future__ import annotations

import numba
import numpy as np

from hwsim.numerics import jit_cache  # noqa: F401  before any kernel: it names numba's cache folder
from hwsim.numerics.kernels import SATURATE, WRAP

ROWS = 8  # GEMM rows per tile: each weight row loaded once serves them all
BLOCK = 64  # outputs per tile: the tile's registers and counters stay in L1


def _lanes(
    max_x: int, max_w: int, max_bias: int, acc_min: int, acc_max: int, overflow: int, depth: int
) -> tuple:
    """The lane dtype, and the register's bounds and wrap mask in it, for |x - zx| <= ``max_x`` and
    |w - zw| <= ``max_w``.

    int32 when every sum a lane computes fits int32, else int64: a fitted register plus one product (or the
    bias), and its distance to ``acc_min`` (for WRAP); for EXACT (the true sums), the largest partial sum,
    and the bounds are clipped to the lane (a sum that fits the lane cannot pass a bound beyond it). The
    mask is hi - lo when WRAP has a power-of-two count of codes (wrapping is then a mask), else 0 (a
    modulo); -1 for 64 bits, whose wrap int64 arithmetic already is.
    """
    if overflow == SATURATE or overflow == WRAP:
        need = (acc_max - acc_min) + max(max_x * max_w, max_bias) + max(abs(acc_min), abs(acc_max))
    else:
        need = max_bias + depth * max_x * max_w
    lane = np.int32 if need < 1 << 31 else np.int64
    info = np.iinfo(lane)
    span = acc_max - acc_min + 1
    mask = 0 if overflow != WRAP or span & (span - 1) else (span - 1 if span - 1 < 1 << 63 else -1)
    return lane, lane(max(acc_min, info.min)), lane(min(acc_max, info.max)), lane(mask)


def _span(a: np.ndarray, zero_points) -> int:
    """An upper bound of |a - z| over the elements and zero points (cheap: from the extremes of each)."""
    if not a.size:
        return 0
    z = np.asarray(zero_points, np.int64)
    return max(abs(int(a.max()) - int(z.min())), abs(int(a.min()) - int(z.max())))


def matmul_acc(x, w, x_zp, w_zp, bias, acc_min, acc_max, overflow, k_order, bias_last):
    """``reference.matmul_acc`` (same arguments, same result), outputs as lanes: operands centred and put in
    the accumulation order once, in the narrowest lane dtype that holds every sum, then ``_gemm_lanes``."""
    bias = np.asarray(bias, np.int64)
    lane, lo, hi, mask = _lanes(
        _span(x, x_zp),
        _span(w, w_zp),
        int(np.abs(bias).max(initial=0)),
        acc_min,
        acc_max,
        overflow,
        x.shape[1],
    )
    xs = np.empty(x.shape, lane)
    wt = np.empty(w.shape, lane)
    whole = max(x.shape[1], 1)  # one group: all of K
    _centre_gemm(x, w, x_zp, np.asarray(w_zp, np.int64).reshape(-1, 1), k_order, whole, xs, wt)
    out = np.empty((1, x.shape[0], w.shape[1]), np.int64)
    count = _gemm_lanes(xs, wt, bias.astype(lane), lo, hi, mask, overflow, bool(bias_last), whole, out)
    return out[0], count


def matmul_groups_acc(x, w, x_zp, w_zp, group_size, acc_min, acc_max, overflow, bias_last):
    """Per-group ordered sums, acc[g, m, n] = sum over k of group g (``group_size`` consecutive k, in order)
    of (x[m, k] - x_zp)(w[k, n] - w_zp[n, g]), each group in a register of its own that starts at zero (a
    zero bias, loaded first or added last as ``bias_last`` says), all groups in one call.
    Returns (acc, count)."""
    depth = x.shape[1]
    lane, lo, hi, mask = _lanes(_span(x, x_zp), _span(w, w_zp), 0, acc_min, acc_max, overflow, group_size)
    xs = np.empty(x.shape, lane)
    wt = np.empty(w.shape, lane)
    _centre_gemm(x, w, x_zp, np.asarray(w_zp, np.int64), np.arange(depth), group_size, xs, wt)
    out = np.empty((-(-depth // group_size), x.shape[0], w.shape[1]), np.int64)
    count = _gemm_lanes(
        xs, wt, np.zeros(w.shape[1], lane), lo, hi, mask, overflow, bool(bias_last), group_size, out
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
    lane, lo, hi, mask = _lanes(
        _span(x, x_zp),
        _span(w, w_zp),
        int(np.abs(bias).max(initial=0)),
        acc_min,
        acc_max,
        overflow,
        w.shape[0] * w.shape[1],
    )
    xc = np.empty((*x.shape[:3], w.shape[2]), lane)
    _centre_depthwise(x.reshape(-1, x.shape[3]), x_zp, multiplier, xc.reshape(-1, w.shape[2]))
    wz = (w.astype(np.int64) - np.asarray(w_zp, np.int64)).astype(lane)
    return _depthwise_lanes(
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
        overflow,
    )


@numba.njit(cache=True, nogil=True)
def _centre_gemm(x, w, x_zp, w_zp, k_order, group_size, xs, wt):
    """xs[m, kk] = x[m, k_order[kk]] - x_zp and wt[kk, n] = w[k_order[kk], n] - w_zp[n, kk // group_size], in
    the lane dtype (w_zp [N, groups]: one zero point per column and group)."""
    for m in range(x.shape[0]):
        for kk in range(x.shape[1]):
            xs[m, kk] = np.int64(x[m, k_order[kk]]) - x_zp
    for kk in range(w.shape[0]):
        g = kk // group_size
        for n in range(w.shape[1]):
            wt[kk, n] = np.int64(w[k_order[kk], n]) - w_zp[n, g]


@numba.njit(cache=True, nogil=True)
def _centre_depthwise(x, x_zp, multiplier, xc):
    """xc[p, o] = x[p, o // multiplier] - x_zp for every pixel p, in the lane dtype."""
    for p in range(x.shape[0]):
        for o in range(xc.shape[1]):
            xc[p, o] = np.int64(x[p, o // multiplier]) - x_zp


@numba.njit(cache=True, nogil=True, inline="always")
def _add_lanes(acc, count, xv, wrow, lo, hi, mask, overflow):
    """acc[j] += xv * wrow[j], then each register fitted and each excursion counted, for every lane j.

    The sum is stored into the lane before it is tested, and ``lo``, ``hi``, ``mask`` come in the lane
    dtype: then every operation can run at the lane's width (numba would widen it to int64 otherwise).
    The mode is tested once, outside each lane loop, so that every loop vectorises. EXACT keeps the sum
    and counts it again on every later step it stays outside, as the reference does.
    """
    width = acc.size
    if overflow == SATURATE:
        for j in range(width):
            acc[j] += xv * wrow[j]
            v = acc[j]
            fitted = min(max(v, lo), hi)
            count[j] += fitted != v
            acc[j] = fitted
    elif overflow == WRAP and mask != 0:
        for j in range(width):
            acc[j] += xv * wrow[j]
            v = acc[j]
            acc[j] = ((v - lo) & mask) + lo
            count[j] += acc[j] != v
    elif overflow == WRAP:
        for j in range(width):
            acc[j] += xv * wrow[j]
            v = acc[j]
            acc[j] = (v - lo) % (hi - lo + 1) + lo
            count[j] += acc[j] != v
    else:
        for j in range(width):
            acc[j] += xv * wrow[j]
            v = acc[j]
            count[j] += min(max(v, lo), hi) != v


@numba.njit(cache=True, nogil=True, parallel=True)
def _gemm_lanes(xs, wt, bias, acc_min, acc_max, mask, overflow, bias_last, group_size, out):
    """Ordered accumulators of xs [M, K] (x - zx, columns already in accumulation order) by wt [K, N] (w - zw,
    rows in that order) plus ``bias`` [N], all in the lane dtype: out[g] sums the g-th run of ``group_size``
    steps in a register of its own (one group when group_size >= K). Tiles of ROWS x BLOCK of every group run
    in parallel, each in ``_gemm_tile`` (loops inside a parallel loop's body would not vectorise as well).
    Returns the count of excursions."""
    rows, depth = xs.shape
    cols = wt.shape[1]
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
            bias,
            acc_min,
            acc_max,
            mask,
            overflow,
            bias_last,
            ((t % tiles) // col_tiles) * ROWS,
            (t % col_tiles) * BLOCK,
            k0,
            min(k0 + group_size, depth),
            out[g],
        )
    return counts.sum()


@numba.njit(cache=True, nogil=True)
def _gemm_tile(xs, wt, bias, acc_min, acc_max, mask, overflow, bias_last, r0, n0, k0, k1, out):
    """One tile of ``_gemm_lanes``: rows r0.. and columns n0.. of ``out``, steps k0 <= kk < k1; returns its
    excursion count.

    A zero input (a ReLU's output at its zero point) is skipped under SATURATE and WRAP: adding 0 to a
    fitted register changes nothing and cannot leave the range."""
    height = min(ROWS, xs.shape[0] - r0)
    width = min(BLOCK, wt.shape[1] - n0)
    acc = np.zeros((height, width), xs.dtype)
    count = np.zeros((height, width), np.int32)
    skip_zero = overflow == SATURATE or overflow == WRAP
    b = bias[n0 : n0 + width]
    if not bias_last:
        for r in range(height):
            _add_lanes(acc[r], count[r], 1, b, acc_min, acc_max, mask, overflow)
    for kk in range(k0, k1):
        wrow = wt[kk, n0 : n0 + width]
        for r in range(height):
            xv = xs[r0 + r, kk]
            if xv != 0 or not skip_zero:
                _add_lanes(acc[r], count[r], xv, wrow, acc_min, acc_max, mask, overflow)
    if bias_last:
        for r in range(height):
            _add_lanes(acc[r], count[r], 1, b, acc_min, acc_max, mask, overflow)
    total = np.int64(0)
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
    overflow,
):
    """Ordered depthwise accumulators, the output channels as lanes: xc [N, H, W, C*m] holds x - zx with
    each input channel repeated for its m outputs, wz [kh, kw, C*m] holds w - zw and ``bias`` [C*m], all in
    the lane dtype. Output rows (n, oy) run in parallel, each in ``_depthwise_row``.
    Returns (acc int64 [N, out_h, out_w, C*m], count)."""
    batch = xc.shape[0]
    out = np.empty((batch, out_h, out_w, xc.shape[3]), np.int64)
    counts = np.zeros(batch * out_h, np.int64)
    for r in numba.prange(batch * out_h):
        counts[r] = _depthwise_row(
            xc,
            wz,
            bias,
            stride_h,
            stride_w,
            dil_h,
            dil_w,
            pad_top,
            pad_left,
            acc_min,
            acc_max,
            mask,
            overflow,
            r // out_h,
            r % out_h,
            out,
        )
    return out, counts.sum()


@numba.njit(cache=True, nogil=True)
def _depthwise_row(
    xc,
    wz,
    bias,
    stride_h,
    stride_w,
    dil_h,
    dil_w,
    pad_top,
    pad_left,
    acc_min,
    acc_max,
    mask,
    overflow,
    b,
    oy,
    out,
):
    """Output row (b, oy) of ``_depthwise_lanes``: per pixel, the bias loaded, then the taps in (ky, kx) order
    (padded taps skipped); returns the row's excursion count."""
    height, width, channels = xc.shape[1], xc.shape[2], xc.shape[3]
    kernel_h, kernel_w = wz.shape[0], wz.shape[1]
    acc = np.empty(channels, xc.dtype)
    count = np.zeros(channels, np.int32)
    for ox in range(out.shape[2]):
        acc[:] = 0
        _add_lanes(acc, count, 1, bias, acc_min, acc_max, mask, overflow)
        for ky in range(kernel_h):
            iy = oy * stride_h - pad_top + ky * dil_h
            if iy < 0 or iy >= height:
                continue
            for kx in range(kernel_w):
                ix = ox * stride_w - pad_left + kx * dil_w
                if 0 <= ix < width:
                    _add_products(acc, count, xc[b, iy, ix], wz[ky, kx], acc_min, acc_max, mask, overflow)
        for o in range(channels):
            out[b, oy, ox, o] = acc[o]
    total = np.int64(0)
    for o in range(channels):
        total += count[o]
    return total


@numba.njit(cache=True, nogil=True, inline="always")
def _add_products(acc, count, xrow, wrow, lo, hi, mask, overflow):
    """acc[j] += xrow[j] * wrow[j], each register fitted and each excursion counted (see ``_add_lanes``)."""
    width = acc.size
    if overflow == SATURATE:
        for j in range(width):
            acc[j] += xrow[j] * wrow[j]
            v = acc[j]
            fitted = min(max(v, lo), hi)
            count[j] += fitted != v
            acc[j] = fitted
    elif overflow == WRAP and mask != 0:
        for j in range(width):
            acc[j] += xrow[j] * wrow[j]
            v = acc[j]
            acc[j] = ((v - lo) & mask) + lo
            count[j] += acc[j] != v
    elif overflow == WRAP:
        for j in range(width):
            acc[j] += xrow[j] * wrow[j]
            v = acc[j]
            acc[j] = (v - lo) % (hi - lo + 1) + lo
            count[j] += acc[j] != v
    else:
        for j in range(width):
            acc[j] += xrow[j] * wrow[j]
            v = acc[j]
            count[j] += min(max(v, lo), hi) != v


jit_cache.adopt(globals())  # every kernel above: hwsim's checked cache (see jit_cache)
