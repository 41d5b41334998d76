"""Fused integer layers: accumulators and the requantizer in one pass, with no int64 tensor between them.

The fast twins of :mod:`hwsim.numerics.reference_fused`. A runtime never materialises a layer's int32
accumulators: it requantizes each output row while it is in cache. These kernels do the same, for callers
(:mod:`hwsim.numerics.ops`) that proved no partial sum can leave the int32 register, so that the order of
the additions cannot matter. Same house rules as :mod:`hwsim.numerics.kernels`.
"""

from __future__ import annotations

import numba
import numpy as np

from hwsim.numerics import jit_cache  # noqa: F401  before any kernel: it names numba's cache folder
from hwsim.numerics.kernels import centered_weights as _centered_weights
from hwsim.numerics.kernels import depthwise_pixel as _depthwise_pixel
from hwsim.numerics.kernels import requantize_span


@numba.njit(cache=True, nogil=True)
def _repeat(values, times):
    """``values`` repeated ``times`` times end to end (np.tile for 1-D arrays)."""
    out = np.empty(values.size * times, values.dtype)
    for t in range(times):
        out[t * values.size : (t + 1) * values.size] = values
    return out


@numba.njit(cache=True, nogil=True, parallel=True)
def requantize_gemm(raw, correction, w_zp, row_sum, stage, out):
    """out[m, n] = clamp(R(raw[m, n] + correction[n] - w_zp[n] row_sum[m]) + zero_point).

    ``raw`` holds exact integer products (float32 from BLAS, or int32/int64); ``row_sum`` is empty when every
    ``w_zp`` is zero. ``stage`` is the requantizer as one record (``ops.StageArgs``: per-channel multiplier,
    shift and scale, zero point, clamp, kind, and the channel tail: channels from ``tail_start`` on use
    ``tail_kind``, a runtime's channel-tail rule). Blocks of about 16K outputs run in parallel, each with one
    accumulator row of ``correction``'s dtype: int32 where the caller proved the sums fit, so the
    requantizer's loops run on twice the lanes.
    """
    multiplier, shift, scale, zero_point, qmin, qmax, kind, tail_start, tail_kind = stage
    rows, cols = raw.shape
    per_block = max(1, 16384 // max(cols, 1))
    with_rows = row_sum.size > 0
    for blk in numba.prange((rows + per_block - 1) // per_block):
        acc = np.empty(cols, correction.dtype)
        for m in range(blk * per_block, min((blk + 1) * per_block, rows)):
            src = raw[m]
            for n in range(cols):  # stored, then corrected: see gemm_requantize
                acc[n] = src[n]
                acc[n] += correction[n]
            if with_rows:
                rs = np.int64(row_sum[m])
                for n in range(cols):
                    acc[n] -= w_zp[n] * rs
            requantize_span(
                acc, multiplier, shift, scale, zero_point, qmin, qmax, kind, out[m], 0, tail_start
            )
            requantize_span(
                acc, multiplier, shift, scale, zero_point, qmin, qmax, tail_kind, out[m], tail_start, cols
            )
    return out


@numba.njit(cache=True, nogil=True, parallel=True)
def gemm_requantize(x, panels, rows_per_tile, correction, w_zp, row_sum, stage, out):
    """out = requantized (x @ w) for integer ``x`` [M, K] and weights as float32 column ``panels`` [P, K, nb];
    ``stage`` as in ``requantize_gemm``.

    For callers that proved every sum is an integer below 2**24, so one float32 BLAS product is exact. Tiles
    of ``rows_per_tile`` rows by one panel run in parallel; each converts its rows to float32, multiplies
    them on BLAS (single-threaded inside the tile) and requantizes the products while they are in cache,
    as ``requantize_gemm`` does. Columns past N in the last panel are zero padding and are not written.

    Products are stored into the accumulator row (of ``correction``'s dtype) and then corrected, each step in
    the row's own width (int32 rows vectorise on twice the lanes); callers pass int32 only where both the
    products and the corrected sums fit it.
    """
    multiplier, shift, scale, zero_point, qmin, qmax, kind, tail_start, tail_kind = stage
    rows, depth = x.shape
    cols = out.shape[1]
    n_panels, _, width = panels.shape
    row_tiles = (rows + rows_per_tile - 1) // rows_per_tile
    with_rows = row_sum.size > 0
    # Narrow layers (one unpadded panel, no channel tail) requantize a group of rows per call, on the
    # per-channel
    # values repeated row after row, so that each call's loop is long enough to be worth vectorising.
    group = max(1, 256 // cols) if width == cols and tail_start >= cols else 1
    corr, zw = _repeat(correction, group), _repeat(w_zp, group)
    mult, sh, sc = _repeat(multiplier, group), _repeat(shift, group), _repeat(scale, group)
    flat_out = out.reshape(rows * cols)
    flat_x = x.reshape(rows * depth)
    for tile in numba.prange(row_tiles * n_panels):
        r0 = (tile // n_panels) * rows_per_tile
        r1 = min(r0 + rows_per_tile, rows)
        p = tile % n_panels
        n0 = p * width
        n1 = min(n0 + width, cols)
        xb = np.empty((r1 - r0) * depth, np.float32)
        rows_in = flat_x[
            r0 * depth : r1 * depth
        ]  # the tile's rows are contiguous: one long loop converts them
        for j in range(rows_in.size):
            xb[j] = rows_in[j]
        products = np.dot(xb.reshape((r1 - r0, depth)), panels[p])
        if group > 1:
            flat = products.reshape((r1 - r0) * cols)
            acc = np.empty(group * cols, correction.dtype)
            for g0 in range(0, r1 - r0, group):
                count = min(group, r1 - r0 - g0) * cols
                seg = flat[g0 * cols : g0 * cols + count]
                for j in range(count):
                    acc[j] = seg[j]
                    acc[j] += corr[j]
                if with_rows:
                    for j in range(count):
                        acc[j] -= zw[j] * np.int64(row_sum[r0 + g0 + j // cols])
                start = (r0 + g0) * cols
                requantize_span(
                    acc, mult, sh, sc, zero_point, qmin, qmax, kind, flat_out[start : start + count], 0, count
                )
            continue
        # this panel's channels as views that start at 0 (indices from 0 let the row loops vectorise); with
        # group 1 the repeated arrays are plain copies, writable like the grouped path's, so both paths call
        # requantize_span with one type signature (one compilation less; callers pass read-only arrays)
        pcorr, pzw = corr[n0:n1], zw[n0:n1]
        pmult, psh, psc = mult[n0:n1], sh[n0:n1], sc[n0:n1]
        split = min(max(tail_start - n0, 0), n1 - n0)
        acc = np.empty(n1 - n0, correction.dtype)
        for i in range(r1 - r0):
            src = products[i]
            for j in range(n1 - n0):
                acc[j] = src[j]
                acc[j] += pcorr[j]
            if with_rows:
                rs = np.int64(row_sum[r0 + i])
                for j in range(n1 - n0):
                    acc[j] -= pzw[j] * rs
            dst = out[r0 + i, n0:n1]
            requantize_span(acc, pmult, psh, psc, zero_point, qmin, qmax, kind, dst, 0, split)
            requantize_span(acc, pmult, psh, psc, zero_point, qmin, qmax, tail_kind, dst, split, n1 - n0)
    return out


@numba.njit(cache=True, nogil=True)
def _interior(pad, stride, dilation, kernel, size, out_size):
    """[lo, hi): the output positions along one axis whose every tap lies inside the input."""
    lo = min((pad + stride - 1) // stride, out_size)
    last = size - 1 + pad - (kernel - 1) * dilation
    hi = min(last // stride + 1, out_size) if last >= 0 else 0
    return lo, max(hi, lo)


_SPAN = 512  # int32 sums per call of _depthwise_3x3 (whole pixels): long enough to repay its setup


@numba.njit(cache=True, nogil=True)
def _repeated_taps(wz, bias, x_zp, pixels):
    """(each tap's centered weights, the bias less x_zp times each channel's weight sum), int32, repeated
    ``pixels`` times (views of ``wz`` for one): the operands of ``_depthwise_3x3``. Not in the parallel
    kernel, whose array expressions numba would turn into parallel loops of their own."""
    kernel_h, kernel_w, out_c = wz.shape
    taps = wz.reshape(kernel_h * kernel_w, out_c)
    folded = np.empty(out_c, np.int32)
    for o in range(out_c):
        total = np.int64(0)
        for k in range(kernel_h * kernel_w):
            total += taps[k, o]
        folded[o] = np.int32(np.int64(bias[o]) - np.int64(x_zp) * total)  # wraps, as int32 arithmetic does
    if pixels == 1:
        return taps, folded
    wrep = np.empty((kernel_h * kernel_w, pixels * out_c), np.int32)
    frep = np.empty(pixels * out_c, np.int32)
    for p in range(pixels):
        wrep[:, p * out_c : (p + 1) * out_c] = taps
        frep[p * out_c : (p + 1) * out_c] = folded
    return wrep, frep


@numba.njit(cache=True, nogil=True)
def _three_taps(flat_x, start, tap_x, n):
    """The ``n`` inputs of one kernel row's three taps, the first at ``start``."""
    middle, last = start + tap_x, start + 2 * tap_x
    return flat_x[start : start + n], flat_x[middle : middle + n], flat_x[last : last + n]


@numba.njit(cache=True, nogil=True)
def _depthwise_3x3(flat_x, start, tap_x, tap_y, wrep, frep, acc):
    """acc[j] = frep[j] + the sum over the 9 taps k of flat_x[start + offset_k + j] * wrep[k, j]: a run of
    interior output values at stride 1 with depth multiplier 1, whose inputs follow one another in memory
    for every tap. ``tap_x`` and ``tap_y`` are the flat distances between taps along a row and a column;
    ``wrep`` holds each tap's centered weights and ``frep`` the bias less x_zp times the channel's weight
    sum, both repeated pixel after pixel. So no tap subtracts the zero point, and one loop with every tap in
    it runs over the whole run: it vectorises on int32 lanes with the sum in a register, and is long enough
    to repay its runtime alias checks (a loop over one pixel's 32 channels is not). int32 arithmetic wraps,
    so the result is the exact sum whenever that fits int32, as the callers proved."""
    n = acc.size
    x0, x1, x2 = _three_taps(flat_x, start, tap_x, n)
    x3, x4, x5 = _three_taps(flat_x, start + tap_y, tap_x, n)
    x6, x7, x8 = _three_taps(flat_x, start + 2 * tap_y, tap_x, n)
    w0, w1, w2, w3, w4 = wrep[0], wrep[1], wrep[2], wrep[3], wrep[4]
    w5, w6, w7, w8 = wrep[5], wrep[6], wrep[7], wrep[8]
    for j in range(n):
        acc[j] = (
            frep[j]
            + np.int32(x0[j]) * w0[j]
            + np.int32(x1[j]) * w1[j]
            + np.int32(x2[j]) * w2[j]
            + np.int32(x3[j]) * w3[j]
            + np.int32(x4[j]) * w4[j]
            + np.int32(x5[j]) * w5[j]
            + np.int32(x6[j]) * w6[j]
            + np.int32(x7[j]) * w7[j]
            + np.int32(x8[j]) * w8[j]
        )


@numba.njit(cache=True, nogil=True, parallel=True)
def depthwise_requantize(x, w, x_zp, w_zp, bias, window, depth_multiplier, stage, out):
    """Depthwise conv (NHWC, weights [kh, kw, C*m]) straight to output codes: int32 sums, channel innermost.

    ``window`` is the conv geometry as one record (``geometry.KernelWindow``: stride, dilation, top and left
    padding, output size), ``stage`` the requantizer (as in ``requantize_gemm``). Each output pixel's channel
    row is summed over the valid taps (padded taps contribute zero), then requantized while it is in cache;
    output rows run in parallel. Interior pixels of a 3x3 kernel with depth multiplier 1 (every depthwise
    layer of the MobileNets) at stride 1 take ``_depthwise_3x3``, in runs of pixels. At stride 2 a run
    would need its inputs deinterleaved; the per-tap loops of ``depthwise_pixel`` were as fast on the
    stride-2 layers of MobileNetV2 (96 or more channels).
    """
    stride_h, stride_w, dil_h, dil_w, pad_top, pad_left, out_h, out_w = window
    multiplier, shift, scale, zero_point, qmin, qmax, kind, tail_start, tail_kind = stage
    batch, height, width = x.shape[0], x.shape[1], x.shape[2]
    kernel_h, kernel_w, out_c = w.shape
    wz = _centered_weights(w, w_zp)
    bias32 = np.empty(out_c, np.int32)
    for o in range(out_c):
        bias32[o] = np.int32(bias[o])
    fast = kernel_h == 3 and kernel_w == 3 and depth_multiplier == 1 and stride_w == 1
    top_row, end_row = _interior(pad_top, stride_h, dil_h, kernel_h, height, out_h)
    left, right = _interior(pad_left, stride_w, dil_w, kernel_w, width, out_w)
    pixels = max(1, _SPAN // out_c)
    wrep, frep = _repeated_taps(wz, bias, x_zp, pixels if fast else 1)
    tap_x, tap_y = dil_w * out_c, dil_h * width * out_c
    # without a channel tail, a whole output row is requantized in one call, on the per-channel values
    # repeated pixel after pixel (narrow layers would otherwise spend their time entering short loops)
    whole_rows = tail_start >= out_c
    reps = out_w if whole_rows else 1
    mult, sh, sc = _repeat(multiplier, reps), _repeat(shift, reps), _repeat(scale, reps)
    flat_out = out.reshape(batch * out_h * out_w * out_c)
    for r in numba.prange(batch * out_h):
        b = r // out_h
        oy = r % out_h
        row = np.empty(out_w * out_c, np.int32)
        inside = fast and top_row <= oy < end_row
        lo, hi = (left, right) if inside else (out_w, out_w)
        if inside:
            flat_x = x[b].reshape(height * width * out_c)
            top = (oy * stride_h - pad_top) * width
            for p0 in range(lo, hi, pixels):
                count = min(pixels, hi - p0) * out_c
                _depthwise_3x3(
                    flat_x,
                    (top + p0 - pad_left) * out_c,
                    tap_x,
                    tap_y,
                    wrep,
                    frep,
                    row[p0 * out_c : p0 * out_c + count],
                )
        for ox in range(out_w):
            if lo <= ox < hi:
                continue
            acc = row[ox * out_c : (ox + 1) * out_c]
            acc[:] = bias32
            _depthwise_pixel(
                x,
                b,
                oy,
                ox,
                wz,
                x_zp,
                stride_h,
                stride_w,
                dil_h,
                dil_w,
                pad_top,
                pad_left,
                depth_multiplier,
                acc,
            )
        if whole_rows:
            start = r * out_w * out_c
            requantize_span(
                row,
                mult,
                sh,
                sc,
                zero_point,
                qmin,
                qmax,
                kind,
                flat_out[start : start + out_w * out_c],
                0,
                out_w * out_c,
            )
        else:
            for ox in range(out_w):
                acc = row[ox * out_c : (ox + 1) * out_c]
                dst = out[b, oy, ox]
                requantize_span(
                    acc, multiplier, shift, scale, zero_point, qmin, qmax, kind, dst, 0, tail_start
                )
                requantize_span(
                    acc, multiplier, shift, scale, zero_point, qmin, qmax, tail_kind, dst, tail_start, out_c
                )
    return out


jit_cache.adopt(globals())  # every kernel above: hwsim's checked cache (see jit_cache)
