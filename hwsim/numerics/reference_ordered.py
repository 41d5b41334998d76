"""Plain numpy twin of :mod:`hwsim.numerics.kernels_ordered`: ordered accumulation, all outputs per step.

Each step adds one product to every output's register at once (a numpy operation over all outputs), then
fits the registers and counts the excursions; the steps run in the declared order. Registers are int64
(registers narrower than 63 bits, so that no step can overflow numpy's int64). The scalar statement of the
same arithmetic, one output at a time, is :func:`hwsim.numerics.reference.matmul_acc`.
"""

from __future__ import annotations

import numpy as np

from hwsim.numerics.formats import OverflowMode


def _step(acc: np.ndarray, term, acc_min: int, acc_max: int, overflow: int) -> int:
    """acc += term for every register, then fit each one that left [acc_min, acc_max]; returns how many."""
    acc += term
    outside = (acc < acc_min) | (acc > acc_max)
    if overflow == OverflowMode.SATURATE:
        np.clip(acc, acc_min, acc_max, out=acc)
    elif overflow == OverflowMode.WRAP:
        acc[outside] = (acc[outside] - acc_min) % (acc_max - acc_min + 1) + acc_min
    return int(outside.sum())


def matmul_acc(x, w, x_zp, w_zp, bias, acc_min, acc_max, overflow, k_order, bias_last):
    """acc[m, n] = bias[n] + sum_k (x[m, k] - x_zp)(w[k, n] - w_zp[n]), one k per step in ``k_order`` for all
    (m, n) at once, the register fitted after every step; the bias first, or last when ``bias_last``.
    Returns (acc, overflow_count)."""
    xs = np.asarray(x, np.int64) - x_zp
    ws = np.asarray(w, np.int64) - np.asarray(w_zp, np.int64)[None, :]
    bias = np.asarray(bias, np.int64)
    acc = np.zeros((x.shape[0], w.shape[1]), np.int64)
    count = 0 if bias_last else _step(acc, bias[None, :], acc_min, acc_max, overflow)
    for k in k_order:
        count += _step(acc, xs[:, k, None] * ws[None, k, :], acc_min, acc_max, overflow)
    if bias_last:
        count += _step(acc, bias[None, :], acc_min, acc_max, overflow)
    return acc, count


def matmul_groups_acc(x, w, x_zp, w_zp, group_size, acc_min, acc_max, overflow, bias_last):
    """acc[g] = :func:`matmul_acc` over the ``group_size`` consecutive k of group g in ascending order, with
    that group's zero points w_zp[:, g] and a zero bias. Returns (acc [G, M, N], overflow_count)."""
    parts, count = [], 0
    for g, k0 in enumerate(range(0, x.shape[1], group_size)):
        k1 = min(k0 + group_size, x.shape[1])
        zeros = np.zeros(w.shape[1], np.int64)
        acc, n = matmul_acc(
            x[:, k0:k1],
            w[k0:k1],
            x_zp,
            np.asarray(w_zp)[:, g],
            zeros,
            acc_min,
            acc_max,
            overflow,
            range(k1 - k0),
            bias_last,
        )
        parts.append(acc)
        count += n
    return np.stack(parts), count


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
    """Depthwise accumulators (NHWC, w [kh, kw, C*multiplier], output channel o reads input o // multiplier):
    the bias, then one tap (ky, kx) per step for every output at once. A padded tap is no step for the
    outputs it pads (they add nothing and count nothing). Returns (acc, overflow_count)."""
    xs = np.repeat(np.asarray(x, np.int64) - x_zp, multiplier, axis=3)
    ws = np.asarray(w, np.int64) - np.asarray(w_zp, np.int64)
    height, width = x.shape[1], x.shape[2]
    acc = np.zeros((x.shape[0], out_h, out_w, w.shape[2]), np.int64)
    count = _step(acc, np.asarray(bias, np.int64), acc_min, acc_max, overflow)
    for ky in range(w.shape[0]):
        rows = _inside(np.arange(out_h) * stride_h - pad_top + ky * dil_h, height)
        for kx in range(w.shape[1]):
            cols = _inside(np.arange(out_w) * stride_w - pad_left + kx * dil_w, width)
            if rows is None or cols is None:
                continue
            (oy0, oy1, iy0), (ox0, ox1, ix0) = rows, cols
            taps = xs[
                :,
                iy0 : iy0 + (oy1 - oy0 - 1) * stride_h + 1 : stride_h,
                ix0 : ix0 + (ox1 - ox0 - 1) * stride_w + 1 : stride_w,
            ]
            count += _step(acc[:, oy0:oy1, ox0:ox1], taps * ws[ky, kx], acc_min, acc_max, overflow)
    return acc, count


def _inside(positions: np.ndarray, size: int) -> tuple[int, int, int] | None:
    """(first, end, first input) of the outputs whose tap lands inside [0, size): a contiguous run, since the
    positions increase with the output index; None when every tap is padding."""
    valid = np.flatnonzero((positions >= 0) & (positions < size))
    if not valid.size:
        return None
    return int(valid[0]), int(valid[-1]) + 1, int(positions[valid[0]])
