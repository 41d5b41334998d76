"""Per-group weight scales: ``conv2d_per_group`` and ``fully_connected_per_group``, which hwsim.quant emits.

A per-group dequantizing datapath, as accelerators and LLM kernels with group-wise weight scales compute it.
Each group of ``group_size`` consecutive reduction elements accumulates in its own register
(:func:`hwsim.numerics.ops.matmul_groups`); the group sums are scaled by float32(sx * sw[c, g]) and added
in float32 with the float bias, and the sum is quantized to the output grid (round half to even, clamp to
the activation range).
"""

from __future__ import annotations

import numpy as np

from hwsim.numerics import ops
from hwsim.numerics import quantized as Q
from hwsim.runtime import float_core as F
from hwsim.runtime.op_io import input_value, int_format, op_accumulator, output_tensor


def _im2col_codes(x: np.ndarray, op, kernel, fill: int) -> tuple[np.ndarray, tuple[int, ...]]:
    """Integer NHWC input -> [N*OH*OW, kh*kw*C] in (ky, kx, c) order, padded with ``fill``."""
    a = op.attrs
    win, geo = F.patches(x, kernel, a["stride"], a["padding"], a["dilation"], fill=fill)
    return np.ascontiguousarray(win.reshape(-1, int(np.prod(win.shape[3:])))), (x.shape[0], *geo.out_hw)


def _per_group(graph, op, values, sem, conv: bool):
    x_t, w_t, y_t = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]), output_tensor(graph, op)
    x = input_value(graph, values, op.inputs[0])
    zx = int(x_t.quant.zero_point[0])
    w = w_t.data
    rows = w.reshape(w.shape[0], -1)
    if conv:
        cols, lead = _im2col_codes(F.to_nhwc(x, op), op, w.shape[1:3], zx)
    else:
        cols, lead = x.reshape(-1, rows.shape[1]), x.shape[:-1]
    gs = op.attrs["group_size"]
    res = ops.matmul_groups(
        cols,
        rows.T,
        group_size=gs,
        x_zero_point=zx,
        w_zero_point=w_t.quant.zero_point,
        accumulator=op_accumulator(op),
    )
    sw = w_t.quant.scale.reshape(rows.shape[0], -1)  # [C, G]
    scale = (np.float32(x_t.quant.scale[0]) * sw.T.astype(np.float32)).astype(np.float32)  # [G, C]
    real = (res.acc.astype(np.float32) * scale[:, None, :]).sum(axis=0, dtype=np.float32)
    if len(op.inputs) > 2 and op.inputs[2]:
        real = real + graph.tensor(op.inputs[2]).data.astype(np.float32)
    fmt = int_format(y_t)
    sy, zy = float(y_t.quant.scale[0]), int(y_t.quant.zero_point[0])
    lo, hi = Q.activation_range(op.attrs.get("activation"), sy, zy, fmt)
    y = np.clip(np.rint(real / np.float32(sy)).astype(np.int64) + zy, lo, hi).astype(y_t.dtype)
    if conv:
        return F.from_nhwc(y.reshape(*lead, -1), op)
    return y.reshape(*lead, -1)


def conv2d_per_group(graph, op, values, sem):
    return _per_group(graph, op, values, sem, True)


def fully_connected_per_group(graph, op, values, sem):
    return _per_group(graph, op, values, sem, False)
