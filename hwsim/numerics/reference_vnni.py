"""Plain twin of :mod:`hwsim.numerics.kernels_vnni`: unpack the column blocks, exact products, requantize."""

from __future__ import annotations

import numpy as np

from hwsim.numerics.reference_fused import requantize_gemm


def unpack_vnni(packed: np.ndarray, depth: int, cols: int) -> np.ndarray:
    """The int8 weights [K, N] held by VNNI column blocks [N/16, K/4 * 64] (see ``vnni.pack``)."""
    blocks, block_bytes = packed.shape
    w = (
        packed.reshape(blocks, block_bytes // 64, 16, 4)
        .transpose(1, 3, 0, 2)
        .reshape(block_bytes // 16, blocks * 16)
    )
    return w[:depth, :cols]


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
    """Exact sum_k (x[m, k] + offset) w[k, n], then ``requantize_gemm`` (the tiling only shapes the
    kernel)."""
    xu = np.asarray(x, np.int64) + offset
    raw = xu @ unpack_vnni(packed, depth, out.shape[1]).astype(np.int64)
    row_sum = xu.sum(axis=1) if with_rows else np.zeros(0, np.int64)
    stage = (multiplier, shift, scale, zero_point, qmin, qmax, kind, tail_start, tail_kind)
    return requantize_gemm(raw, correction, w_zp, row_sum, stage, out)


def dot_vnni(x, offset, packed, depth, rows_per_tile, chunks):
    """sum_k (x[m, k] + offset) w[k, n] exactly, as int32 [M, 16 * blocks] (padded columns hold zeros)."""
    w = unpack_vnni(packed, packed.shape[1] // 16, packed.shape[0] * 16).astype(np.int64)[:depth]
    return ((np.asarray(x, np.int64) + offset) @ w).astype(np.int32)
