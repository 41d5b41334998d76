"""Dynamic (run-time range) layers, which hwsim.quant's dynamic recipes make. (Its per-group weight scales
run in :mod:`hwsim.runtime.per_group`.)

- ``dynamic_conv2d`` / ``dynamic_depthwise_conv2d`` / ``dynamic_fully_connected`` (in
  :data:`~hwsim.runtime.float_exec.FLOAT_OPS`; graphs with them run under ``run_float``): weights are
  static integers; each input sample's range is measured at run time, the sample is quantized, the
  accumulators come from hwsim's integer kernels, and the output is float32 (acc * sx * sw + bias), as
  ONNX Runtime's dynamic quantization computes it. With ``outlier_threshold`` (LLM.int8, Dettmers et al.
  2022) the reduction columns holding any |x| >= threshold are computed apart at 16 bits (symmetric,
  per-sample activation scale, per-channel weight scale, int64 accumulator), the rest at the layer's bits.
  With ``fake=True`` the same arithmetic runs in float (the fake-quant counterpart).
"""

from __future__ import annotations

import numpy as np

from hwsim.numerics import ops
from hwsim.numerics.formats import IntFormat
from hwsim.runtime import float_core as F
from hwsim.runtime.op_io import op_accumulator


# ---------------------------------------------------------------- dynamic quantization
def sample_qparams(x: np.ndarray, fmt: IntFormat, symmetric: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample (first axis) scale and zero point from the sample's own min and max."""
    flat = x.reshape(x.shape[0], -1)
    return ops.qparams_from_range(flat.min(axis=1), flat.max(axis=1), fmt, symmetric=symmetric)


def _quantize_rows(x2d: np.ndarray, scale: np.ndarray, zero: np.ndarray, fmt: IntFormat) -> np.ndarray:
    return ops.quantize(np.ascontiguousarray(x2d, np.float32), scale, zero, fmt, axis=0)


def _dynamic_matmul(cols: np.ndarray, sample_of_row: np.ndarray, w_t, op) -> np.ndarray:
    """float32 [R, C] = dynamic-quantized cols [R, K] times integer weights rows [C, K] (+ outliers)."""
    a = op.attrs
    w_rows = w_t.data.reshape(w_t.data.shape[0], -1) if op.kind != "dynamic_depthwise_conv2d" else None
    sw = np.broadcast_to(w_t.quant.scale.astype(np.float32), (w_rows.shape[0],))
    zw = w_t.quant.zero_point
    threshold = a.get("outlier_threshold")
    outlier_cols = np.zeros(cols.shape[1], bool)
    if threshold is not None:
        outlier_cols = (np.abs(cols) >= threshold).any(axis=0)
    regular = ~outlier_cols
    n_samples = int(sample_of_row.max()) + 1 if sample_of_row.size else 0
    out = np.zeros((cols.shape[0], w_rows.shape[0]), np.float32)
    for part, bits in ((regular, a["activation_bits"]), (outlier_cols, a.get("outlier_bits", 16))):
        if not part.any():
            continue
        sub = cols[:, part]
        pfmt = IntFormat(bits)
        per_sample = sub.reshape(n_samples, -1)  # rows of one sample are contiguous
        lo, hi = per_sample.min(axis=1, initial=0.0), per_sample.max(axis=1, initial=0.0)
        sx, zx = ops.qparams_from_range(lo, hi, pfmt, symmetric=a["symmetric"] or part is outlier_cols)
        sx_r, zx_r = sx[sample_of_row], zx[sample_of_row]
        if part is outlier_cols:  # 16-bit weights for the outlier columns (LLM.int8's fp16 part)
            w_sub, sw_sub, zw_sub = _outlier_weights(op, part)
        else:
            w_sub, sw_sub, zw_sub = w_rows[:, part], sw, zw
        if a.get("fake"):
            xq = ops.fake_quantize(np.ascontiguousarray(sub), sx_r, zx_r, pfmt, axis=0)
            wq = (w_sub.astype(np.float32) - np.asarray(zw_sub, np.float32).reshape(-1, 1)) * np.asarray(
                sw_sub, np.float32
            ).reshape(-1, 1)
            out += (xq @ wq.T).astype(np.float32)
            continue
        codes = _quantize_rows(sub, sx_r, zx_r, pfmt)
        accumulator = op_accumulator(op) if part is regular else ops.Accumulator(IntFormat(64))
        zw_vec = np.broadcast_to(np.asarray(zw_sub, np.int64).ravel(), (w_sub.shape[0],))
        # One GEMM for all samples, then each row's own input zero point is taken out with the weights'
        # column sums (as ONNX Runtime's dynamic MatMulInteger does): acc = sum x (w - zw) - zx sum (w - zw).
        acc = ops.matmul(
            codes, w_sub.T, x_zero_point=0, w_zero_point=np.ascontiguousarray(zw_vec), accumulator=accumulator
        ).acc
        acc -= (
            zx_r[:, None].astype(np.int64) * (w_sub.astype(np.int64) - zw_vec[:, None]).sum(axis=1)[None, :]
        )
        out += acc.astype(np.float32) * (
            sx_r[:, None].astype(np.float32) * np.asarray(sw_sub, np.float32)[None, :]
        )
    return out


def _outlier_weights(op, part: np.ndarray):
    """16-bit symmetric per-channel weights of the outlier columns, from the float weights kept on the op."""
    wf = op.attrs["float_weight_rows"][:, part]
    fmt = IntFormat(op.attrs.get("outlier_bits", 16), narrow_range=True)
    scale, zero = ops.qparams_from_range(wf.min(axis=1), wf.max(axis=1), fmt, symmetric=True)
    return ops.quantize(wf, scale, zero, fmt, axis=0).astype(np.int64), scale, zero


def _dynamic(kind: str):
    def impl(graph, op, values):
        x = values[op.inputs[0]]
        w_t = graph.tensor(op.inputs[1])
        a = op.attrs
        if kind == "fully_connected":
            cols = x.reshape(-1, w_t.data.shape[1])
            sample = np.repeat(np.arange(x.shape[0]), cols.shape[0] // max(x.shape[0], 1))
            y = _dynamic_matmul(cols, sample, w_t, op)
            lead = x.shape[:-1]
        elif kind == "conv2d":
            xn = F.to_nhwc(x, op)
            win, geo = F.patches(xn, w_t.data.shape[1:3], a["stride"], a["padding"], a["dilation"])
            if a.get("groups", 1) != 1:
                raise NotImplementedError("dynamic grouped conv")
            cols = np.ascontiguousarray(win.reshape(-1, int(np.prod(win.shape[3:]))))
            sample = np.repeat(np.arange(x.shape[0]), geo.out_hw[0] * geo.out_hw[1])
            y = _dynamic_matmul(cols, sample, w_t, op)
            lead = (x.shape[0], *geo.out_hw)
        else:  # depthwise: each channel its own 1-column GEMM over the kh*kw taps
            xn = F.to_nhwc(x, op)
            fmt = IntFormat(a["activation_bits"])
            sx, zx = sample_qparams(xn, fmt, a["symmetric"])
            w = w_t.data
            sw = np.broadcast_to(w_t.quant.scale.astype(np.float32), (w.shape[-1],))
            zw = np.broadcast_to(w_t.quant.zero_point, (w.shape[-1],))
            if a.get("fake"):
                xf = ops.dequantize(
                    ops.quantize(np.ascontiguousarray(xn), sx, zx, fmt, axis=0), sx, zx, axis=0
                )
                wf = ((w.astype(np.float32) - zw.astype(np.float32)) * sw).astype(np.float32)
                y = F.depthwise_nhwc(
                    xf,
                    wf,
                    None,
                    stride=a["stride"],
                    padding=a["padding"],
                    dilation=a["dilation"],
                    depth_multiplier=a.get("depth_multiplier", 1),
                )
            else:
                codes = ops.quantize(np.ascontiguousarray(xn), sx, zx, fmt, axis=0)
                y = None
                for z in np.unique(zx):  # one kernel call per distinct input zero point (padding reads it)
                    pick = np.flatnonzero(zx == z)
                    res = ops.depthwise_conv2d(
                        codes[pick],
                        w,
                        stride=a["stride"],
                        padding=a["padding"],
                        dilation=a["dilation"],
                        depth_multiplier=a.get("depth_multiplier", 1),
                        x_zero_point=int(z),
                        w_zero_point=zw,
                        accumulator=op_accumulator(op),
                    )
                    part = res.acc.astype(np.float32) * (
                        sx[pick].astype(np.float32)[:, None, None, None] * sw
                    )
                    if y is None:
                        y = np.zeros((xn.shape[0], *part.shape[1:]), np.float32)
                    y[pick] = part
            lead = y.shape[:-1]
        if len(op.inputs) > 2 and op.inputs[2]:
            y = y + graph.tensor(op.inputs[2]).data.astype(np.float32)
        y = F.activate(y.reshape(*lead, -1).astype(np.float32), a.get("activation"))
        return F.from_nhwc(y, op) if kind != "fully_connected" else y

    return impl


dynamic_conv2d = _dynamic("conv2d")
dynamic_depthwise_conv2d = _dynamic("depthwise_conv2d")
dynamic_fully_connected = _dynamic("fully_connected")
