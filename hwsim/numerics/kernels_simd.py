"""An integer GEMM on SIMD dot-product instructions with the requantizer fused: the twin of
:mod:`hwsim.numerics.reference_simd`.

Three micro-kernels of 4 rows x 16 columns, chosen by how the weights are packed (``simd.pack``): int8
weights run on AVX-512 VNNI ``vpdpbusd`` (64 unsigned by 64 signed bytes, each group of four products added
into one of 16 int32 lanes), int16 weights on AVX2 ``vpmaddwd`` (16 by 16 int16, pairs of products added
into 8 int32 lanes, two registers per row). Neither saturates: the sums are exact as long as no int32 lane
wraps, which the caller proves (``hwsim.numerics.fused``). The third is ONNX Runtime's own AVX2 uint8 x
int8 arithmetic, not the exact sum: ``vpmaddubsw`` saturates each pair of adjacent products to int16
(int8 weight bytes, typed uint8 to select it; ``simd.pack(w, "avx2-pairwise16")``). numba cannot emit
these from plain loops, so one intrinsic writes the LLVM IR of the micro-kernel; a host compiles only the
forms its CPU runs (``simd.instruction``). Same house rules as :mod:`hwsim.numerics.kernels`.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from hwsim.numerics import jit_cache  # noqa: F401  before any kernel: it names numba's cache folder
from hwsim.numerics.kernels import requantize_span as _requantize_span
from hwsim.numerics.kernels_fused import _repeat

ROWS = 4  # rows of a micro-kernel block
LANES = 16  # columns of a block: one zmm of int32 sums (VNNI), two ymm (AVX2)
_I32 = ir.IntType(32)
_V16 = ir.VectorType(_I32, LANES)
_V64 = ir.VectorType(ir.IntType(8), 64)
_V8 = ir.VectorType(_I32, 8)
_V16H = ir.VectorType(ir.IntType(16), 16)


def _vnni_step(builder, weights_ptr, inputs, sums):
    """One k step of 4: each row's four input bytes against the 64 weight bytes (16 columns x 4 k's)."""
    dpbusd = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(_V16, [_V16, _V64, _V64]), "llvm.x86.avx512.vpdpbusd.512"
    )
    weights = builder.load(builder.bitcast(weights_ptr, _V64.as_pointer()), align=1)
    for r, four in enumerate(inputs):
        lane0 = builder.insert_element(ir.Constant(_V16, None), four, ir.Constant(_I32, 0))
        spread = builder.shuffle_vector(lane0, ir.Constant(_V16, None), ir.Constant(_V16, [0] * LANES))
        builder.store(
            builder.call(dpbusd, [builder.load(sums[r][0]), builder.bitcast(spread, _V64), weights]),
            sums[r][0],
        )


def _halves(builder, weights_ptr, vector):
    """A 64-byte weight step as two 32-byte ``vector`` loads: columns 0-7 and 8-15."""
    return [
        builder.load(
            builder.bitcast(builder.gep(weights_ptr, [ir.Constant(_I32, 32 * h)]), vector.as_pointer()),
            align=1,
        )
        for h in range(2)
    ]


def _spread8(builder, value, vector):
    """A row's 32-bit group of inputs repeated over the 8 int32 lanes of a ymm, seen as ``vector``."""
    lane0 = builder.insert_element(ir.Constant(_V8, None), value, ir.Constant(_I32, 0))
    return builder.bitcast(
        builder.shuffle_vector(lane0, ir.Constant(_V8, None), ir.Constant(_V8, [0] * 8)), vector
    )


def _avx2_step(builder, weights_ptr, inputs, sums):
    """One k step of 2: each row's two int16 inputs against 16 columns x 2 k's of int16 weights, as two
    8-column halves."""
    madd = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(_V8, [_V16H, _V16H]), "llvm.x86.avx2.pmadd.wd"
    )
    halves = _halves(builder, weights_ptr, _V16H)
    for r, pair in enumerate(inputs):
        spread = _spread8(builder, pair, _V16H)
        for h, half in enumerate(halves):
            total = builder.add(builder.load(sums[r][h]), builder.call(madd, [spread, half]))
            builder.store(total, sums[r][h])


_V32B = ir.VectorType(ir.IntType(8), 32)


def _pairwise_step(builder, weights_ptr, inputs, sums):
    """One k step of 4 as ONNX Runtime's AVX2 kernel takes it: ``vpmaddubsw`` multiplies each row's four
    unsigned input bytes by 8 columns x 4 k's of signed weight bytes and adds adjacent products into int16
    with saturation, ``vpmaddwd`` by ones adds each column's two saturated pairs into its int32 lane; two
    8-column halves."""
    pmaddubsw = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(_V16H, [_V32B, _V32B]), "llvm.x86.avx2.pmadd.ub.sw"
    )
    madd = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(_V8, [_V16H, _V16H]), "llvm.x86.avx2.pmadd.wd"
    )
    ones = ir.Constant(_V16H, [1] * 16)
    halves = _halves(builder, weights_ptr, _V32B)
    for r, four in enumerate(inputs):
        spread = _spread8(builder, four, _V32B)
        for h, half in enumerate(halves):
            pairs = builder.call(pmaddubsw, [spread, half])
            total = builder.add(builder.load(sums[r][h]), builder.call(madd, [pairs, ones]))
            builder.store(total, sums[r][h])


@intrinsic
def _dot_block(typingctx, x, x_start, x_stride, w, w_start, steps, acc, acc_start, acc_stride):
    """acc[r, 0:16] = sum_k x[r, k] w[k, 0:16] for 4 rows r: x rows ``x_stride`` elements apart (uint8 for
    int8 or uint8-typed weights, int16 for int16 weights), w one packed column block (``steps`` 64-byte steps
    from element ``w_start``), acc int32. The weights' type names the micro-kernel: int8 VNNI, int16 AVX2
    pairs of int16, uint8 (int8 bytes, typed unsigned) AVX2 with ONNX Runtime's saturating pairs."""
    sig = types.void(x, types.intp, types.intp, w, types.intp, types.intp, acc, types.intp, types.intp)
    step, vector, k_per_step = {
        types.int8: (_vnni_step, _V16, 4),
        types.int16: (_avx2_step, _V8, 2),
        types.uint8: (_pairwise_step, _V8, 4),
    }[w.dtype]
    per_row = LANES // vector.count  # accumulator registers per row

    def codegen(context, builder, signature, args):
        x_arr, x0, xs, w_arr, w0, count, acc_arr, a0, astride = args
        byte_ptr = ir.IntType(8).as_pointer()
        width = signature.args[0].dtype.bitwidth // 8  # bytes per input (and per weight)
        x_base = builder.bitcast(
            context.make_array(signature.args[0])(context, builder, x_arr).data, byte_ptr
        )
        w_base = builder.bitcast(
            context.make_array(signature.args[3])(context, builder, w_arr).data, byte_ptr
        )
        a_base = builder.bitcast(
            context.make_array(signature.args[6])(context, builder, acc_arr).data, _I32.as_pointer()
        )
        intp = x0.type
        zero = ir.Constant(vector, [0] * vector.count)
        sums = [[cgutils.alloca_once_value(builder, zero) for _ in range(per_row)] for _ in range(ROWS)]
        w_bytes0 = builder.mul(w0, ir.Constant(intp, width))
        with cgutils.for_range(builder, count) as loop:
            k = loop.index
            w_ptr = builder.gep(w_base, [builder.add(w_bytes0, builder.mul(k, ir.Constant(intp, 64)))])
            inputs = []
            for r in range(ROWS):
                element = builder.add(
                    builder.add(x0, builder.mul(ir.Constant(intp, r), xs)),
                    builder.mul(k, ir.Constant(intp, k_per_step)),
                )
                at = builder.gep(x_base, [builder.mul(element, ir.Constant(intp, width))])
                inputs.append(builder.load(builder.bitcast(at, _I32.as_pointer()), align=1))
            step(builder, w_ptr, inputs, sums)
        for r in range(ROWS):
            row = builder.add(a0, builder.mul(ir.Constant(intp, r), astride))
            for h in range(per_row):
                dst = builder.gep(a_base, [builder.add(row, ir.Constant(intp, h * vector.count))])
                builder.store(builder.load(sums[r][h]), builder.bitcast(dst, vector.as_pointer()), align=1)
        return context.get_dummy_value()

    return sig, codegen


def _input_codes(count, w):
    """A zeroed buffer of ``count`` inputs in the type the micro-kernel for ``w``'s packing reads."""


@overload(_input_codes)
def _input_codes_impl(count, w):
    dtype = np.int16 if w.dtype == types.int16 else np.uint8
    return lambda count, w: np.zeros(count, dtype)


@numba.njit(cache=True, nogil=True)
def _tile_bounds(tile, chunks, rows_per_tile, rows, per_chunk, n_blocks):
    """Tile ``tile``'s first row, row count and column-block range (b0 >= b1: an empty tile)."""
    r0 = (tile // chunks) * rows_per_tile
    b0 = (tile % chunks) * per_chunk
    return r0, min(rows_per_tile, rows - r0), b0, min(b0 + per_chunk, n_blocks)


@numba.njit(cache=True, nogil=True)
def _tile_sums(x, offset, flat_w, block_size, depth, r0, count, b0, b1, with_rows):
    """Sums of one tile: rows r0 .. r0 + count converted to the micro-kernel's input type (+ offset, K
    zero-padded, rows padded to a multiple of 4), then the micro-kernel on each 4-row block and column
    block b0 .. b1. Returns the int32 sums (rows of (b1 - b0) * 16) and, when ``with_rows``, each row's sum
    of its offset inputs."""
    padded = block_size // 16
    width = (b1 - b0) * LANES
    blocks4 = (count + ROWS - 1) // ROWS
    xu = _input_codes(blocks4 * ROWS * padded, flat_w)
    sums_x = np.zeros(blocks4 * ROWS, np.int64)
    for i in range(count):
        src = x[r0 + i]
        dst = xu[i * padded : i * padded + depth]
        for k in range(depth):
            dst[k] = np.int32(src[k]) + offset  # in range for xu's type
        if with_rows:
            for k in range(depth):
                sums_x[i] += dst[k]
    raw = np.empty(blocks4 * ROWS * width, np.int32)
    for b in range(b0, b1):  # a column block's weights stay in L1 while every row block passes
        for q in range(blocks4):
            _dot_block(
                xu,
                q * ROWS * padded,
                padded,
                flat_w,
                b * block_size,
                block_size * flat_w.itemsize // 64,
                raw,
                q * ROWS * width + (b - b0) * LANES,
                width,
            )
    return raw, sums_x


@numba.njit(cache=True, nogil=True, parallel=True)
def dot_simd(x, offset, packed, depth, rows_per_tile, chunks):
    """sum_k (x[m, k] + offset) w[k, n] in int32 [M, N], for the weights ``packed`` as in
    ``gemm_requantize_simd``; the caller proved that no sum wraps. Tiles run in parallel."""
    rows = x.shape[0]
    n_blocks, block_size = packed.shape
    cols = n_blocks * LANES
    flat_w = packed.reshape(n_blocks * block_size)
    out = np.empty((rows, cols), np.int32)
    row_tiles = (rows + rows_per_tile - 1) // rows_per_tile
    per_chunk = (n_blocks + chunks - 1) // chunks
    for tile in numba.prange(row_tiles * chunks):
        r0, count, b0, b1 = _tile_bounds(tile, chunks, rows_per_tile, rows, per_chunk, n_blocks)
        if b0 >= b1:
            continue
        raw, _ = _tile_sums(x, offset, flat_w, block_size, depth, r0, count, b0, b1, False)
        width = (b1 - b0) * LANES
        for i in range(count):
            out[r0 + i, b0 * LANES : b1 * LANES] = raw[i * width : (i + 1) * width]
    return out


@numba.njit(cache=True, nogil=True, parallel=True)
def gemm_requantize_simd(
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
    """out = requantized sum_k (x[m, k] + offset) w[k, n], for x rows whose values plus ``offset`` the
    micro-kernel takes (bytes for VNNI, int16 for AVX2).

    ``packed`` holds the weights in column blocks of 16 as ``simd.pack`` makes them (K and N zero-padded);
    ``correction`` and ``w_zp`` are as in ``requantize_gemm`` for the offset input (zero point zx + offset),
    and ``with_rows`` subtracts w_zp[n] sum_k (x[m, k] + offset). Tiles of ``rows_per_tile`` rows (a multiple
    of
    4) by one of ``chunks`` column ranges run in parallel: each converts its rows, runs the micro-kernel on
    every 4-row block and column block of its range, and requantizes the int32 sums while they are in cache
    (all its rows in one call where they cover whole, untailed rows).
    """
    rows = x.shape[0]
    cols = out.shape[1]
    n_blocks, block_size = packed.shape
    flat_w = packed.reshape(n_blocks * block_size)
    flat_out = out.reshape(rows * cols)
    row_tiles = (rows + rows_per_tile - 1) // rows_per_tile
    per_chunk = (n_blocks + chunks - 1) // chunks
    whole = chunks == 1 and tail_start >= cols
    reps = rows_per_tile if whole else 1
    corr_rows, zw_rows = _repeat(correction, reps), _repeat(w_zp, reps)
    mult_rows, sh_rows, sc_rows = _repeat(multiplier, reps), _repeat(shift, reps), _repeat(scale, reps)
    for tile in numba.prange(row_tiles * chunks):
        r0, count, b0, b1 = _tile_bounds(tile, chunks, rows_per_tile, rows, per_chunk, n_blocks)
        if b0 >= b1:
            continue
        raw, sums_x = _tile_sums(x, offset, flat_w, block_size, depth, r0, count, b0, b1, with_rows)
        n0 = b0 * LANES
        n1 = min(b1 * LANES, cols)
        width = (b1 - b0) * LANES
        if whole:  # rows are contiguous in out (in raw too, but for padding columns): one call for the tile
            total = count * cols
            acc = np.empty(total, correction.dtype)
            for i in range(count):  # stored, then corrected, as in kernels_fused.gemm_requantize
                src, dst = raw[i * width : i * width + cols], acc[i * cols : (i + 1) * cols]
                corr_row = corr_rows[i * cols : (i + 1) * cols]
                for j in range(cols):
                    dst[j] = src[j]
                    dst[j] += corr_row[j]
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
