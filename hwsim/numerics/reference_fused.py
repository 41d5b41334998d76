"""Plain twins of :mod:`hwsim.numerics.kernels_fused`: the unfused reference accumulators, then the
requantizer."""

from __future__ import annotations

import numpy as np

from hwsim.numerics.formats import OverflowMode
from hwsim.numerics.reference import depthwise_acc, requantize_span


def requantize_gemm(raw, correction, w_zp, row_sum, stage, out):
    """out[m, n] = clamp(R(raw[m, n] + correction[n] - w_zp[n] row_sum[m]) + zero_point), by rows."""
    multiplier, shift, scale, zero_point, qmin, qmax, kind, tail_start, tail_kind = stage
    rows, cols = raw.shape
    for m in range(rows):
        rs = int(row_sum[m]) if len(row_sum) else 0
        acc = [int(raw[m, n]) + int(correction[n]) - int(w_zp[n]) * rs for n in range(cols)]
        requantize_span(acc, multiplier, shift, scale, zero_point, qmin, qmax, kind, out[m], 0, tail_start)
        requantize_span(
            acc, multiplier, shift, scale, zero_point, qmin, qmax, tail_kind, out[m], tail_start, cols
        )
    return out


def gemm_requantize(x, panels, rows_per_tile, correction, w_zp, row_sum, stage, out):
    """Exact integer products of ``x`` and the weights the panels hold, then ``requantize_gemm``."""
    cols = out.shape[1]
    w = np.concatenate(list(panels), axis=1)[:, :cols].astype(np.int64)
    raw = np.asarray(x, np.int64) @ w
    return requantize_gemm(raw, correction, w_zp, row_sum, stage, out)


def depthwise_requantize(x, w, x_zp, w_zp, bias, window, depth_multiplier, stage, out):
    """Exact depthwise accumulators (``reference.depthwise_acc``), then each pixel's row requantized."""
    multiplier, shift, scale, zero_point, qmin, qmax, kind, tail_start, tail_kind = stage
    acc, _ = depthwise_acc(
        x, w, x_zp, w_zp, bias, *window, depth_multiplier, -(1 << 63), (1 << 63) - 1, int(OverflowMode.EXACT)
    )
    flat_acc, flat_out = acc.reshape(-1, acc.shape[-1]), out.reshape(-1, out.shape[-1])
    for row, dst in zip(flat_acc, flat_out):
        requantize_span(row, multiplier, shift, scale, zero_point, qmin, qmax, kind, dst, 0, tail_start)
        requantize_span(
            row, multiplier, shift, scale, zero_point, qmin, qmax, tail_kind, dst, tail_start, len(row)
        )
    return np.asarray(out)
