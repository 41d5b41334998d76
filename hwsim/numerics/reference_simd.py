"""Plain twin of :mod:`hwsim.numerics.kernels_simd`: unpack the column blocks, exact products, requantize."""

from __future__ import annotations

import numpy as np

from hwsim.numerics.reference_fused import requantize_gemm


def unpack_simd(packed: np.ndarray, depth: int, cols: int) -> np.ndarray:
    """The weights [K, N] held by SIMD column blocks [N/16, steps * k_step * 16] (see ``simd.pack``): 4 k's
    per step in int8 blocks (VNNI), 2 in int16 blocks (AVX2)."""
    k_step = 4 if packed.dtype == np.int8 else 2
    blocks, size = packed.shape
    steps = size // (16 * k_step)
    w = packed.reshape(blocks, steps, 16, k_step).transpose(1, 3, 0, 2).reshape(steps * k_step, blocks * 16)
    return w[:depth, :cols]


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
    """Exact sum_k (x[m, k] + offset) w[k, n], then ``requantize_gemm`` (the tiling only shapes the
    kernel)."""
    xu = np.asarray(x, np.int64) + offset
    raw = xu @ unpack_simd(packed, depth, out.shape[1]).astype(np.int64)
    row_sum = xu.sum(axis=1) if with_rows else np.zeros(0, np.int64)
    stage = (multiplier, shift, scale, zero_point, qmin, qmax, kind, tail_start, tail_kind)
    return requantize_gemm(raw, correction, w_zp, row_sum, stage, out)


def dot_simd(x, offset, packed, depth, rows_per_tile, chunks):
    """sum_k (x[m, k] + offset) w[k, n] exactly, as int32 [M, 16 * blocks] (padded columns hold zeros)."""
    w = unpack_simd(packed, depth, packed.shape[0] * 16).astype(np.int64)
    return ((np.asarray(x, np.int64) + offset) @ w).astype(np.int32)
