"""Ordered accumulation vectorised across outputs: the narrow-register GEMM and depthwise kernels.

Each output still adds its products one at a time, in the declared order, and its register is fitted
(saturated, wrapped, or only checked) and every excursion counted after each addition, exactly as
:func:`hwsim.numerics.reference.matmul_acc` states it. What changes from a loop per output is the loop
nest: the reduction step is the outer loop and a block of outputs the inner one, so that one vector
instruction advances many registers by the same step; the dependency that forbids reordering is along K,
and no lane depends on another. Three things keep the lanes narrow and the steps cheap:

- lanes and excursion counters are int16 where every value fits (a saturating register within int16 uses
  the CPU's saturating 16-bit add, ``vpaddsw``), else int32, else int64; the products are int16 where
  |x - zx| |w - zw| fits int16 and the lanes are not int64;
- a row of registers takes ``STEPS`` reduction steps per pass, so it is loaded and stored once per pass;
- a row whose registers provably stay inside the range for the next ``STEPS`` steps (from a bound on
  their magnitude and on the products to come) takes them without fitting or counting: no step could
  leave the range, so fitting would change nothing and count nothing.

Compiled code: each kernel once per lane dtype (int16, int32, int64; the operands' dtype follows), the mode
an argument; the steps over a tile (``_tile_steps``) and over a depthwise output row (``_depthwise_row``)
once more for each mode that lane dtype takes (``_lanes``: three at most), the mode a constant there so
that their row loops have no branch and vectorise. The mode picks among those copies once per tile or
row. Tiles and rows run on Python threads (the kernels release the GIL). Twin:
:mod:`hwsim.numerics.reference_ordered` (numpy, the same steps). Same house rules as
:mod:`hwsim.numerics.kernels`.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from numba.extending import overload

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
    else the narrowest of int16 (WRAP only), int32, int64 that holds every sum a lane computes: a fitted
    register plus one product (or the bias), and its distance to ``acc_min`` (for WRAP); for EXACT (the true
    sums), the largest partial sum, and the bounds are clipped to the lane (a sum that fits the lane cannot
    pass a bound beyond it). So int16 lanes take SAT16_FULL, SAT16 or WRAP_MASK, int32 lanes SATURATE,
    WRAP_MASK or EXACT, and a wrap by a modulo takes int64 lanes: the kernels compile a copy per mode only
    for those pairs. Operands (x - zx, w - zw) are int16 when their product fits int16 and the lanes are
    narrower than int64, else the lane dtype. The mask is hi - lo when WRAP has a power-of-two count of
    codes (mode WRAP_MASK), else 0 (a modulo); -1 for 64 bits, whose wrap int64 arithmetic already is.
    ``limit`` is the largest magnitude every value in [-limit, limit] lies in the register (-1, never, for
    int64 lanes, whose bound arithmetic could overflow).
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
    span = acc_max - acc_min + 1
    mask = 0 if overflow != WRAP or span & (span - 1) else (span - 1 if span - 1 < 1 << 63 else -1)
    if overflow == WRAP and not mask:
        lane = np.int64  # a modulo: rare (no IntFormat has such a count of codes), one copy for all
    elif sat16 or (need < 1 << 15 and overflow == WRAP):
        lane = np.int16
    else:
        lane = np.int32 if need < 1 << 31 else np.int64
    info = np.iinfo(lane)
    lo, hi = max(acc_min, info.min), min(acc_max, info.max)
    mode = WRAP_MASK if mask else overflow
    if overflow == SATURATE and lane is np.int16:
        mode = SAT16_FULL if (lo, hi) == (-(1 << 15), (1 << 15) - 1) else SAT16
    limit = min(hi, -1 - lo) if lane is not np.int64 else -1
    operand = np.int16 if small_products and lane is not np.int64 else lane
    return lane, operand, lane(lo), lane(hi), lane(mask), limit, mode


def _span(a: np.ndarray, zero_points) -> int:
    """An upper bound of |a - z| over the elements and zero points (cheap: from the extremes of each)."""
    if not a.size:
        return 0
    z = np.asarray(zero_points, np.int64)
    return max(abs(int(a.max()) - int(z.min())), abs(int(a.min()) - int(z.max())))


def _centred(a: np.ndarray, zero_points, dtype) -> np.ndarray:
    """a - zero_points (broadcast) in ``dtype``, computed modulo 2**bits of it: exact wherever the true
    differences fit ``dtype``, which ``_lanes`` made sure of."""
    out = a.astype(dtype)
    out -= np.asarray(zero_points, np.int64).astype(dtype)
    return out


def _in_order(a: np.ndarray, order, axis: int) -> np.ndarray:
    """``a`` with its entries along ``axis`` taken in ``order`` (no copy when that is the identity)."""
    order = np.asarray(order, np.int64)
    if np.array_equal(order, np.arange(a.shape[axis])):
        return a
    return np.take(a, order, axis=axis)


def matmul_acc(x, w, x_zp, w_zp, bias, acc_min, acc_max, overflow, k_order, bias_last):
    """``reference.matmul_acc`` (same arguments, same result), outputs as lanes: operands centred and put in
    the accumulation order once, in the narrowest dtypes that hold every product and sum, then
    ``_gemm_tiles``."""
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
    xs = _centred(_in_order(x, k_order, 1), x_zp, operand)
    wt = _centred(_in_order(w, k_order, 0), np.asarray(w_zp)[None, :], operand)
    out = np.empty((1, x.shape[0], w.shape[1]), np.int64)
    count = _gemm(xs, wt, bias.astype(lane), lo, hi, mask, limit, mode, bias_last, max(x.shape[1], 1), out)
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
    xs = _centred(x, x_zp, operand)
    zw_rows = np.repeat(np.asarray(w_zp, np.int64).T, group_size, axis=0)[:depth]  # [K, N]
    wt = _centred(w, zw_rows, operand)
    out = np.empty((-(-depth // group_size), x.shape[0], w.shape[1]), np.int64)
    count = _gemm(xs, wt, np.zeros(w.shape[1], lane), lo, hi, mask, limit, mode, bias_last, group_size, out)
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
    each input channel repeated for its ``multiplier`` outputs, w centred, then ``_depthwise_rows``."""
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
    xc = _centred(np.repeat(x, multiplier, axis=3) if multiplier > 1 else x, x_zp, operand)
    wz = _centred(w, w_zp, operand)
    geometry = np.array([stride_h, stride_w, dil_h, dil_w, pad_top, pad_left], np.int64)
    out = np.empty((x.shape[0], out_h, out_w, w.shape[2]), np.int64)
    count = _in_threads(
        _depthwise_rows, x.shape[0] * out_h, xc, wz, bias.astype(lane), geometry, lo, hi, mask, mode, out
    )
    return out, count


def _gemm(xs, wt, bias, lo, hi, mask, limit, mode, bias_last, group_size, out) -> int:
    """``_gemm_tiles`` over every tile of every group, spread over threads."""
    wabs = np.zeros(wt.shape[0], np.int64)  # max |wt[kk, n]| over n, from each row's extremes
    if wt.shape[1]:
        np.maximum(wt.max(axis=1), -wt.min(axis=1).astype(np.int64), out=wabs)
    tiles = out.shape[0] * -(-xs.shape[0] // ROWS) * -(-wt.shape[1] // BLOCK)
    return _in_threads(
        _gemm_tiles, tiles, xs, wt, wabs, bias, lo, hi, mask, limit, mode, bool(bias_last), group_size, out
    )


_POOLS: dict[int, ThreadPoolExecutor] = {}  # per process id: a forked child has none of its parent's threads


def _in_threads(kernel, items: int, *args) -> int:
    """``kernel(*args, first, stride)`` over its ``items`` (tiles or rows), item i by thread i % threads, on
    numba's thread count for this thread (the caller's thread takes a share); returns the summed counts.

    The kernels release the GIL. Python threads rather than a numba parallel loop: numba compiles a parallel
    loop once more for every type of its arguments, at several times the cost of the loop itself.
    """
    threads = max(1, min(numba.get_num_threads(), items))
    if threads == 1:
        return int(kernel(*args, 0, 1))
    pool = _POOLS.get(os.getpid())
    if pool is None:
        pool = _POOLS.setdefault(
            os.getpid(), ThreadPoolExecutor(numba.config.NUMBA_NUM_THREADS, "hwsim-ordered")
        )
    shares = [pool.submit(kernel, *args, i, threads) for i in range(1, threads)]
    return int(kernel(*args, 0, threads)) + sum(int(share.result()) for share in shares)


@numba.njit(cache=True, nogil=True)
def _fit(a, p, lo, hi, mask, mode, lane):
    """Register ``a`` plus ``p``, fitted as ``mode`` says: (the register, True if the sum left [lo, hi]).

    Every result is cast to the lane dtype before it is compared, so that LLVM keeps the lane's width
    (numba widens integer scalars to int64; the int16 sum is widened by hand, as numpy scalars would wrap).
    SAT16 adds with 16-bit saturation (``vpaddsw``): the sum left int16 exactly when subtracting ``p`` back
    (wrapping) does not give ``a``. EXACT keeps the sum and reports it on every step it stays outside, as
    the reference counts it. Called with ``mode`` a constant where speed matters, so that numba compiles a
    branch-free copy there.
    """
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


@numba.njit(cache=True, nogil=True)
def _add_bias(acc, count, bias, lo, hi, mask, mode):
    """The bias step of every row of a tile: once per tile, so ``mode`` stays a variable (one compiled copy
    for all modes)."""
    for r in range(acc.shape[0]):
        _add_row(acc[r], count[r], bias, lo, hi, mask, mode, acc.dtype.type)


@numba.njit(cache=True, nogil=True)
def _step_row(acc, count, xv, wrow, lo, hi, mask, mode, operand, lane):
    """One step for every lane, acc[j] += xv * wrow[j] fitted and counted; returns (max, min) of the lanes
    after it (a bound for the next steps). Only the last K % STEPS steps take it: a call, not inlined."""
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
def _tile_steps(xs, wt, wabs, acc, count, bound, r0, n0, k0, k1, lo, hi, mask, limit, mode):
    """Steps k0 <= kk < k1 of every row of a tile, ``STEPS`` at a time, then one at a time. Compiled once per
    mode (``mode`` a constant: see ``_tile_steps_modes``), the row loops inlined, so that they vectorise.

    ``bound[r]`` bounds |acc[r, j]| over the lanes and ``wabs[kk]`` |wt[kk, n]| over the columns, so the
    next steps move no register of row r by more than ``reach``; where bound + reach <= ``limit`` they
    cannot leave the range and run unchecked. A row whose inputs are all zero for those steps is skipped
    where that changes nothing: registers already fitted (SATURATE, WRAP) or all inside the range.
    """
    height, width = acc.shape
    operand, lane = xs.dtype.type, acc.dtype.type
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


def _tile_steps_any(xs, wt, wabs, acc, count, bound, r0, n0, k0, k1, lo, hi, mask, limit, mode):
    """``_tile_steps``; compiled, one copy per mode the lanes' dtype takes (``_tile_steps_modes``)."""
    _tile_steps(xs, wt, wabs, acc, count, bound, r0, n0, k0, k1, lo, hi, mask, limit, mode)


@overload(_tile_steps_any)
def _tile_steps_modes(xs, wt, wabs, acc, count, bound, r0, n0, k0, k1, lo, hi, mask, limit, mode):
    """``_tile_steps_any`` as numba compiles it: ``_tile_steps`` with ``mode`` a constant, one copy for each
    mode the lanes' dtype takes (``_lanes``: int16 lanes SAT16_FULL, SAT16, WRAP_MASK; int32 SATURATE,
    WRAP_MASK, EXACT), so that only those are compiled for it. int64 lanes (registers or sums beyond 31
    bits, four lanes to a vector at best, and the rare wrap by a modulo) share one copy with ``mode`` a
    variable: copies per mode would cost more compile time than they save."""
    if acc.dtype.bitwidth == 16:

        def narrow(xs, wt, wabs, acc, count, bound, r0, n0, k0, k1, lo, hi, mask, limit, mode):
            if mode == SAT16_FULL:
                _tile_steps(xs, wt, wabs, acc, count, bound, r0, n0, k0, k1, lo, hi, mask, limit, SAT16_FULL)
            elif mode == SAT16:
                _tile_steps(xs, wt, wabs, acc, count, bound, r0, n0, k0, k1, lo, hi, mask, limit, SAT16)
            else:
                _tile_steps(xs, wt, wabs, acc, count, bound, r0, n0, k0, k1, lo, hi, mask, limit, WRAP_MASK)

        return narrow
    if acc.dtype.bitwidth == 32:

        def wide(xs, wt, wabs, acc, count, bound, r0, n0, k0, k1, lo, hi, mask, limit, mode):
            if mode == SATURATE:
                _tile_steps(xs, wt, wabs, acc, count, bound, r0, n0, k0, k1, lo, hi, mask, limit, SATURATE)
            elif mode == WRAP_MASK:
                _tile_steps(xs, wt, wabs, acc, count, bound, r0, n0, k0, k1, lo, hi, mask, limit, WRAP_MASK)
            else:
                _tile_steps(xs, wt, wabs, acc, count, bound, r0, n0, k0, k1, lo, hi, mask, limit, EXACT)

        return wide

    def generic(xs, wt, wabs, acc, count, bound, r0, n0, k0, k1, lo, hi, mask, limit, mode):
        _tile_steps(xs, wt, wabs, acc, count, bound, r0, n0, k0, k1, lo, hi, mask, limit, mode)

    return generic


@numba.njit(cache=True, nogil=True)
def _gemm_tiles(xs, wt, wabs, bias, lo, hi, mask, limit, mode, bias_last, group_size, out, first, stride):
    """Tiles first, first + stride, ... of the ordered accumulators of xs [M, K] (x - zx, columns already
    in accumulation order) by wt [K, N] (w - zw, rows in that order), both in the operand dtype, plus
    ``bias`` [N] in the lane dtype: out[g] sums the g-th run of ``group_size`` steps in a register of its
    own (one group when group_size >= K); a tile is ROWS x BLOCK of one group, its steps in
    ``_tile_steps``. Returns their count of excursions. The lane counters are emptied into the total every
    ``CHUNK`` steps, so that int16 counters cannot overflow."""
    rows, depth = xs.shape
    cols = wt.shape[1]
    row_tiles = (rows + ROWS - 1) // ROWS
    col_tiles = (cols + BLOCK - 1) // BLOCK
    tiles = row_tiles * col_tiles
    total = np.int64(0)
    for t in range(first, out.shape[0] * tiles, stride):
        g = t // tiles
        r0, n0 = ((t % tiles) // col_tiles) * ROWS, (t % col_tiles) * BLOCK
        k0, k1 = g * group_size, min(g * group_size + group_size, depth)
        height, width = min(ROWS, rows - r0), min(BLOCK, cols - n0)
        acc = np.zeros((height, width), bias.dtype)
        count = np.zeros((height, width), bias.dtype)
        bound = np.zeros(height, np.int64)
        b = bias[n0 : n0 + width]
        if not bias_last:
            _add_bias(acc, count, b, lo, hi, mask, mode)
            top = np.int64(0)
            for j in range(width):
                top = max(top, abs(np.int64(acc[0, j])))
            bound[:] = top
        for start in range(k0, k1, CHUNK):
            _tile_steps_any(
                xs,
                wt,
                wabs,
                acc,
                count,
                bound,
                r0,
                n0,
                start,
                min(start + CHUNK, k1),
                lo,
                hi,
                mask,
                limit,
                mode,
            )
            for r in range(height):
                for j in range(width):
                    total += count[r, j]
                    count[r, j] = 0
        if bias_last:
            _add_bias(acc, count, b, lo, hi, mask, mode)
        for r in range(height):
            for j in range(width):
                out[g, r0 + r, n0 + j] = acc[r, j]
                total += count[r, j]
    return total


@numba.njit(cache=True, nogil=True)
def _depthwise_row(xc, wz, bias, geometry, lo, hi, mask, mode, b, oy, out):
    """Output row (b, oy) of the ordered depthwise accumulators: per pixel, the bias loaded, then the taps in
    (ky, kx) order (padded taps skipped), each one step for every output channel (the lanes); returns the
    row's excursion count. The lane counters (in the lane dtype) are emptied into the total every ``CHUNK``
    steps. Compiled once per mode, as ``_tile_steps``."""
    stride_h, stride_w, dil_h, dil_w = geometry[0], geometry[1], geometry[2], geometry[3]
    pad_top, pad_left = geometry[4], geometry[5]
    height, width, channels = xc.shape[1], xc.shape[2], xc.shape[3]
    operand, lane = xc.dtype.type, bias.dtype.type
    acc = np.empty(channels, bias.dtype)
    count = np.zeros(channels, bias.dtype)
    total = np.int64(0)
    steps = 0
    for ox in range(out.shape[2]):
        acc[:] = 0
        _add_row(acc, count, bias, lo, hi, mask, mode, lane)
        steps += 1
        for ky in range(wz.shape[0]):
            iy = oy * stride_h - pad_top + ky * dil_h
            if iy < 0 or iy >= height:
                continue
            for kx in range(wz.shape[1]):
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


def _depthwise_row_any(xc, wz, bias, geometry, lo, hi, mask, mode, b, oy, out):
    """``_depthwise_row``; compiled, one copy per mode the lanes' dtype takes (as ``_tile_steps_modes``)."""
    return _depthwise_row(xc, wz, bias, geometry, lo, hi, mask, mode, b, oy, out)


@overload(_depthwise_row_any)
def _depthwise_row_modes(xc, wz, bias, geometry, lo, hi, mask, mode, b, oy, out):
    """``_depthwise_row_any`` as numba compiles it: ``_depthwise_row`` with ``mode`` a constant, as
    ``_tile_steps_modes`` chooses."""
    if bias.dtype.bitwidth == 16:

        def narrow(xc, wz, bias, geometry, lo, hi, mask, mode, b, oy, out):
            if mode == SAT16_FULL:
                return _depthwise_row(xc, wz, bias, geometry, lo, hi, mask, SAT16_FULL, b, oy, out)
            if mode == SAT16:
                return _depthwise_row(xc, wz, bias, geometry, lo, hi, mask, SAT16, b, oy, out)
            return _depthwise_row(xc, wz, bias, geometry, lo, hi, mask, WRAP_MASK, b, oy, out)

        return narrow
    if bias.dtype.bitwidth == 32:

        def wide(xc, wz, bias, geometry, lo, hi, mask, mode, b, oy, out):
            if mode == SATURATE:
                return _depthwise_row(xc, wz, bias, geometry, lo, hi, mask, SATURATE, b, oy, out)
            if mode == WRAP_MASK:
                return _depthwise_row(xc, wz, bias, geometry, lo, hi, mask, WRAP_MASK, b, oy, out)
            return _depthwise_row(xc, wz, bias, geometry, lo, hi, mask, EXACT, b, oy, out)

        return wide

    def generic(xc, wz, bias, geometry, lo, hi, mask, mode, b, oy, out):
        return _depthwise_row(xc, wz, bias, geometry, lo, hi, mask, mode, b, oy, out)

    return generic


@numba.njit(cache=True, nogil=True)
def _depthwise_rows(xc, wz, bias, geometry, lo, hi, mask, mode, out, first, stride):
    """Output rows (n, oy) number first, first + stride, ... of the ordered depthwise accumulators, the output
    channels as lanes, each in ``_depthwise_row``: xc [N, H, W, C*m] holds x - zx with each input channel
    repeated for its m outputs and wz [kh, kw, C*m] holds w - zw (both in the operand dtype), ``bias``
    [C*m] is in the lane dtype, ``geometry`` the strides, dilations and top and left pads. Returns their
    excursion count."""
    out_h = out.shape[1]
    total = np.int64(0)
    for row in range(first, out.shape[0] * out_h, stride):
        total += _depthwise_row_any(
            xc, wz, bias, geometry, lo, hi, mask, mode, row // out_h, row % out_h, out
        )
    return total


jit_cache.adopt(globals())  # every kernel above: hwsim's checked cache (see jit_cache)
