"""Plain twin of :mod:`hwsim.numerics.kernels_simd`: unpack the column blocks, exact products, requantize."""

from __future__ import annotations

import numpy as np

from hwsim.numerics.reference_fused import requantize_gemm


def unpack_simd(packed: np.ndarray, depth: int, cols: int) -> np.ndarray:
    """The weights [K, N] held by SIMD column blocks [N/16, steps * k_step * 16] (see ``simd.pack``): 4 k's
    per step in int8 blocks (VNNI), 2 in int16 blocks (AVX2)."""
    k_step = 2 if packed.dtype == np.int16 else 4
    blocks, size = packed.shape
    steps = size // (16 * k_step)
    w = packed.reshape(blocks, steps, 16, k_step).transpose(1, 3, 0, 2).reshape(steps * k_step, blocks * 16)
    return (w.view(np.int8) if packed.dtype == np.uint8 else w)[:depth, :cols]


def _sums(x, packed, depth, cols) -> np.ndarray:
    """The micro-kernel's sums for ``packed``: exact, or (uint8-typed blocks) ONNX Runtime's AVX2 pairs of
    adjacent products, each saturated to int16, summed exactly."""
    w = unpack_simd(packed, depth, cols).astype(np.int64)
    if packed.dtype != np.uint8:
        return x @ w
    if depth % 2:
        x, w = np.pad(x, ((0, 0), (0, 1))), np.pad(w, ((0, 1), (0, 0)))
    pairs = x[:, 0::2, None] * w[None, 0::2] + x[:, 1::2, None] * w[None, 1::2]
    return np.clip(pairs, -32768, 32767).sum(axis=1)


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
    """sum_k (x[m, k] + offset) w[k, n] (exact, or ONNX Runtime's AVX2 pairs for uint8-typed blocks), then
    ``requantize_gemm`` (the tiling only shapes the kernel)."""
    xu = np.asarray(x, np.int64) + offset
    raw = _sums(xu, packed, depth, out.shape[1])
    row_sum = xu.sum(axis=1) if with_rows else np.zeros(0, np.int64)
    stage = (multiplier, shift, scale, zero_point, qmin, qmax, kind, tail_start, tail_kind)
    return requantize_gemm(raw, correction, w_zp, row_sum, stage, out)


def dot_simd(x, offset, packed, depth, rows_per_tile, chunks):
    """sum_k (x[m, k] + offset) w[k, n] as the micro-kernel gives it, int32 [M, 16 * blocks] (padded columns
    hold zeros)."""
    return _sums(np.asarray(x, np.int64) + offset, packed, depth, packed.shape[0] * 16).astype(np.int32)
