"""An int8 GEMM on AVX-512 VNNI (``vpdpbusd``) with the requantizer fused: the twin of
:mod:`hwsim.numerics.reference_vnni`.

``vpdpbusd`` multiplies 64 unsigned by 64 signed bytes and adds each group of four products into one of 16
int32 lanes, without saturation: exact as long as the int32 sums do not wrap, which the caller proves
(``hwsim.numerics.fused``). numba cannot emit it from plain loops, so one intrinsic writes the LLVM IR of a
4-row x 16-column micro-kernel; only hosts whose CPU has AVX-512 VNNI ever compile it
(``cpu.has_avx512_vnni``). Same house rules as :mod:`hwsim.numerics.kernels`.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from hwsim.numerics import jit_cache  # noqa: F401  before any kernel: it names numba's cache folder
from hwsim.numerics.kernels import requantize_span as _requantize_span
from hwsim.numerics.kernels_fused import _repeat

ROWS = 4  # rows of a micro-kernel block
LANES = 16  # int32 lanes of a zmm register: the columns of a block
_V16 = ir.VectorType(ir.IntType(32), LANES)
_V64 = ir.VectorType(ir.IntType(8), 64)


@intrinsic
def _dot_block(typingctx, x, x_start, x_stride, w, w_start, steps, acc, acc_start, acc_stride):
    """acc[r, 0:16] = sum_k x[r, k] w[k, 0:16] for 4 rows r: x uint8 rows ``x_stride`` apart, w one packed
    column block (``steps`` groups of 4 k's, 64 bytes each: column-major within the group), acc int32."""
    sig = types.void(x, types.intp, types.intp, w, types.intp, types.intp, acc, types.intp, types.intp)

    def codegen(context, builder, signature, args):
        x_arr, x0, xs, w_arr, w0, count, acc_arr, a0, astride = args
        byte_ptr = ir.IntType(8).as_pointer()
        x_base = builder.bitcast(
            context.make_array(signature.args[0])(context, builder, x_arr).data, byte_ptr
        )
        w_base = builder.bitcast(
            context.make_array(signature.args[3])(context, builder, w_arr).data, byte_ptr
        )
        a_base = builder.bitcast(
            context.make_array(signature.args[6])(context, builder, acc_arr).data, ir.IntType(32).as_pointer()
        )
        dpbusd = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(_V16, [_V16, _V64, _V64]), "llvm.x86.avx512.vpdpbusd.512"
        )
        intp = x0.type
        sums = [cgutils.alloca_once_value(builder, ir.Constant(_V16, [0] * LANES)) for _ in range(ROWS)]
        with cgutils.for_range(builder, count) as loop:
            k = loop.index
            w_ptr = builder.gep(w_base, [builder.add(w0, builder.mul(k, ir.Constant(intp, 64)))])
            weights = builder.load(builder.bitcast(w_ptr, _V64.as_pointer()), align=1)
            for r in range(ROWS):
                offset = builder.add(
                    builder.add(x0, builder.mul(ir.Constant(intp, r), xs)),
                    builder.mul(k, ir.Constant(intp, 4)),
                )
                four = builder.load(
                    builder.bitcast(builder.gep(x_base, [offset]), ir.IntType(32).as_pointer()), align=1
                )
                lane0 = builder.insert_element(ir.Constant(_V16, None), four, ir.Constant(ir.IntType(32), 0))
                spread = builder.shuffle_vector(
                    lane0, ir.Constant(_V16, None), ir.Constant(_V16, [0] * LANES)
                )
                total = builder.call(dpbusd, [builder.load(sums[r]), builder.bitcast(spread, _V64), weights])
                builder.store(total, sums[r])
        for r in range(ROWS):
            dst = builder.gep(a_base, [builder.add(a0, builder.mul(ir.Constant(intp, r), astride))])
            builder.store(builder.load(sums[r]), builder.bitcast(dst, _V16.as_pointer()), align=1)
        return context.get_dummy_value()

    return sig, codegen


@numba.njit(cache=True, nogil=True)
def _tile_bounds(tile, chunks, rows_per_tile, rows, per_chunk, n_blocks):
    """Tile ``tile``'s first row, row count and column-block range (b0 >= b1: an empty tile)."""
    r0 = (tile // chunks) * rows_per_tile
    b0 = (tile % chunks) * per_chunk
    return r0, min(rows_per_tile, rows - r0), b0, min(b0 + per_chunk, n_blocks)


@numba.njit(cache=True, nogil=True)
def _tile_sums(x, offset, flat_w, block_bytes, depth, r0, count, b0, b1, with_rows):
    """Byte sums of one tile: rows r0 .. r0 + count converted (+ offset, K zero-padded, rows padded to a
    multiple of 4), then the micro-kernel on each 4-row block and column block b0 .. b1. Returns the int32
    sums (rows of (b1 - b0) * 16) and, when ``with_rows``, each row's sum of its offset inputs."""
    padded = block_bytes // 16
    width = (b1 - b0) * LANES
    blocks4 = (count + ROWS - 1) // ROWS
    xu = np.zeros(blocks4 * ROWS * padded, np.uint8)
    sums_x = np.zeros(blocks4 * ROWS, np.int64)
    for i in range(count):
        src = x[r0 + i]
        dst = xu[i * padded : i * padded + depth]
        for k in range(depth):
            dst[k] = np.uint8(np.int32(src[k]) + offset)
        if with_rows:
            for k in range(depth):
                sums_x[i] += dst[k]
    raw = np.empty(blocks4 * ROWS * width, np.int32)
    for q in range(blocks4):
        for b in range(b0, b1):
            _dot_block(
                xu,
                q * ROWS * padded,
                padded,
                flat_w,
                b * block_bytes,
                block_bytes // 64,
                raw,
                q * ROWS * width + (b - b0) * LANES,
                width,
            )
    return raw, sums_x


@numba.njit(cache=True, nogil=True, parallel=True)
def dot_vnni(x, offset, packed, depth, rows_per_tile, chunks):
    """sum_k (x[m, k] + offset) w[k, n] in int32 [M, N], for the weights ``packed`` as in
    ``gemm_requantize_vnni``; the caller proved that no sum wraps. Tiles run in parallel."""
    rows = x.shape[0]
    n_blocks, block_bytes = packed.shape
    cols = n_blocks * LANES
    flat_w = packed.reshape(n_blocks * block_bytes)
    out = np.empty((rows, cols), np.int32)
    row_tiles = (rows + rows_per_tile - 1) // rows_per_tile
    per_chunk = (n_blocks + chunks - 1) // chunks
    for tile in numba.prange(row_tiles * chunks):
        r0, count, b0, b1 = _tile_bounds(tile, chunks, rows_per_tile, rows, per_chunk, n_blocks)
        if b0 >= b1:
            continue
        raw, _ = _tile_sums(x, offset, flat_w, block_bytes, depth, r0, count, b0, b1, False)
        width = (b1 - b0) * LANES
        for i in range(count):
            out[r0 + i, b0 * LANES : b1 * LANES] = raw[i * width : (i + 1) * width]
    return out


@numba.njit(cache=True, nogil=True, parallel=True)
def gemm_requantize_vnni(
    x,
    offset,
    packed,
    depth,
    rows_per_tile,
    chunks,
    correction,
    w_zp,
    with_rows,
    multiplier,
    shift,
    scale,
    zero_point,
    qmin,
    qmax,
    kind,
    tail_start,
    tail_kind,
    out,
):
    """out = requantized sum_k (x[m, k] + offset) w[k, n], for x rows whose values plus ``offset`` are bytes.

    ``packed`` [N/16, K/4 * 64] holds int8 weights in column blocks of 16 (K and N zero-padded);
    ``correction`` and ``w_zp`` are as in ``requantize_gemm`` for the offset input (zero point zx + offset),
    and ``with_rows`` subtracts w_zp[n] sum_k (x[m, k] + offset). Tiles of ``rows_per_tile`` rows (a multiple
    of
    4) by one of ``chunks`` column ranges run in parallel: each converts its rows, runs the micro-kernel on
    every 4-row block and column block of its range, and requantizes the int32 sums while they are in cache
    (all its rows in one call where they cover whole, untailed rows).
    """
    rows = x.shape[0]
    cols = out.shape[1]
    n_blocks, block_bytes = packed.shape
    flat_w = packed.reshape(n_blocks * block_bytes)
    flat_out = out.reshape(rows * cols)
    row_tiles = (rows + rows_per_tile - 1) // rows_per_tile
    per_chunk = (n_blocks + chunks - 1) // chunks
    whole = chunks == 1 and cols % LANES == 0 and tail_start >= cols
    reps = rows_per_tile if whole else 1
    corr_rows, zw_rows = _repeat(correction, reps), _repeat(w_zp, reps)
    mult_rows, sh_rows, sc_rows = _repeat(multiplier, reps), _repeat(shift, reps), _repeat(scale, reps)
    for tile in numba.prange(row_tiles * chunks):
        r0, count, b0, b1 = _tile_bounds(tile, chunks, rows_per_tile, rows, per_chunk, n_blocks)
        if b0 >= b1:
            continue
        raw, sums_x = _tile_sums(x, offset, flat_w, block_bytes, depth, r0, count, b0, b1, with_rows)
        n0 = b0 * LANES
        n1 = min(b1 * LANES, cols)
        width = (b1 - b0) * LANES
        if whole:  # rows are contiguous in raw and in out: one call for the tile
            total = count * cols
            acc = np.empty(total, correction.dtype)
            for j in range(total):
                acc[j] = raw[j]
                acc[j] += corr_rows[j]
            if with_rows:
                for j in range(total):
                    acc[j] -= zw_rows[j] * sums_x[j // cols]
            _requantize_span(
                acc,
                mult_rows,
                sh_rows,
                sc_rows,
                zero_point,
                qmin,
                qmax,
                kind,
                flat_out[r0 * cols : r0 * cols + total],
                0,
                total,
            )
            continue
        corr, zw = correction[n0:n1], w_zp[n0:n1]
        mult, sh, sc = multiplier[n0:n1], shift[n0:n1], scale[n0:n1]
        split = min(max(tail_start - n0, 0), n1 - n0)
        acc = np.empty(n1 - n0, correction.dtype)
        for i in range(count):
            src_row = raw[i * width : i * width + n1 - n0]
            for j in range(n1 - n0):
                acc[j] = src_row[j]
                acc[j] += corr[j]
            if with_rows:
                for j in range(n1 - n0):
                    acc[j] -= zw[j] * sums_x[i]
            dst_row = out[r0 + i, n0:n1]
            _requantize_span(acc, mult, sh, sc, zero_point, qmin, qmax, kind, dst_row, 0, split)
            _requantize_span(acc, mult, sh, sc, zero_point, qmin, qmax, tail_kind, dst_row, split, n1 - n0)
    return out


jit_cache.adopt(globals())  # every kernel above: hwsim's checked cache (see jit_cache)
