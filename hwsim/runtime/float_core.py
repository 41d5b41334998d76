"""The float32 ops of a CNN (convolutions, pooling, activations, reshapes) and the helpers every float
implementation shares (a tensor's value, NHWC views, sliding windows, fused activations).

The implementations take ``(graph, op, values)`` and are registered, with the others, in the one table
:data:`hwsim.runtime.float_exec.FLOAT_OPS`. Tensors keep their file's layout; spatial ops with
``layout="NCHW"`` compute in NHWC and transpose back, as the integer executor does. A fused ``activation``
attribute (relu, relu6) is applied to the op's output, so graphs where
:func:`hwsim.quant.ptq.fuse_activations` merged ReLUs into convs run unchanged.
"""

from __future__ import annotations

import numpy as np

from hwsim.errors import ConfigError
from hwsim.numerics.ops import conv_geometry
from hwsim.workload.graph import Graph, Op


def value(graph: Graph, values: dict, name: str) -> np.ndarray:
    """The value of tensor ``name``: its constant data or what an earlier op computed."""
    t = graph.tensor(name)
    return t.data if t.is_constant else values[name]


def activate(y: np.ndarray, activation) -> np.ndarray:
    """Apply a fused activation (None, relu, relu6, relu_n1_to_1)."""
    if activation in (None, "none"):
        return y
    bounds = {"relu": (0.0, None), "relu6": (0.0, 6.0), "relu_n1_to_1": (-1.0, 1.0)}
    if activation not in bounds:
        raise ConfigError(f"activation: {activation!r} is not supported by the float executor")
    lo, hi = bounds[activation]
    return np.clip(y, lo, hi).astype(np.float32)


def to_nhwc(x: np.ndarray, op: Op) -> np.ndarray:
    """The NHWC view of a spatial op's input."""
    return x.transpose(0, 2, 3, 1) if op.attrs.get("layout") == "NCHW" else x


def from_nhwc(y: np.ndarray, op: Op) -> np.ndarray:
    """Back to the op's layout."""
    return np.ascontiguousarray(y.transpose(0, 3, 1, 2)) if op.attrs.get("layout") == "NCHW" else y


def patches(x: np.ndarray, kernel, stride, padding, dilation=1, fill: float = 0.0):
    """Sliding windows of an NHWC tensor: [N, OH, OW, kh, kw, C] (a view where possible) and the geometry."""
    geo = conv_geometry(x.shape[1:3], tuple(kernel), stride, padding, dilation)
    top, bottom, left, right = geo.pads
    xp = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=fill)
    (kh, kw), (sh, sw), (dh, dw) = geo.kernel, geo.stride, geo.dilation
    span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    win = np.lib.stride_tricks.sliding_window_view(xp, (span_h, span_w), axis=(1, 2))
    win = win[:, ::sh, ::sw][:, : geo.out_hw[0], : geo.out_hw[1], :, ::dh, ::dw]  # [N, OH, OW, C, kh, kw]
    return win.transpose(0, 1, 2, 4, 5, 3), geo


def conv2d_nhwc(
    x: np.ndarray, w: np.ndarray, bias, *, stride=1, padding="valid", dilation=1, groups: int = 1
) -> np.ndarray:
    """Float conv2d: x NHWC, w OHWI [out, kh, kw, in / groups]."""
    win, geo = patches(x, w.shape[1:3], stride, padding, dilation)
    out_c, kh, kw, cin_g = w.shape
    per_group = out_c // groups
    outs = []
    for g in range(groups):
        cols = win[..., g * cin_g : (g + 1) * cin_g].reshape(*win.shape[:3], -1)
        wg = w[g * per_group : (g + 1) * per_group].reshape(per_group, -1)
        outs.append(cols @ wg.T)
    y = np.concatenate(outs, axis=-1) if groups > 1 else outs[0]
    if bias is not None:
        y = y + bias
    return y.astype(np.float32)


def depthwise_nhwc(
    x: np.ndarray, w: np.ndarray, bias, *, stride=1, padding="valid", dilation=1, depth_multiplier: int = 1
) -> np.ndarray:
    """Float depthwise conv: x NHWC, w [kh, kw, C * m]."""
    w = w[0] if w.ndim == 4 else w
    if depth_multiplier > 1:
        x = np.repeat(x, depth_multiplier, axis=3)
    win, _ = patches(x, w.shape[:2], stride, padding, dilation)
    y = np.einsum("nijabc,abc->nijc", win, w, optimize=True)
    if bias is not None:
        y = y + bias
    return y.astype(np.float32)


def conv2d(graph, op, values):
    a = op.attrs
    bias = value(graph, values, op.inputs[2]) if len(op.inputs) > 2 and op.inputs[2] else None
    y = conv2d_nhwc(
        to_nhwc(values[op.inputs[0]], op),
        value(graph, values, op.inputs[1]),
        bias,
        stride=a["stride"],
        padding=a["padding"],
        dilation=a["dilation"],
        groups=a.get("groups", 1),
    )
    return from_nhwc(activate(y, a.get("activation")), op)


def depthwise_conv2d(graph, op, values):
    a = op.attrs
    bias = value(graph, values, op.inputs[2]) if len(op.inputs) > 2 and op.inputs[2] else None
    y = depthwise_nhwc(
        to_nhwc(values[op.inputs[0]], op),
        value(graph, values, op.inputs[1]),
        bias,
        stride=a["stride"],
        padding=a["padding"],
        dilation=a["dilation"],
        depth_multiplier=a.get("depth_multiplier", 1),
    )
    return from_nhwc(activate(y, a.get("activation")), op)


def fully_connected(graph, op, values):
    x = values[op.inputs[0]]
    w = value(graph, values, op.inputs[1])
    y = x.reshape(-1, w.shape[1]) @ w.T
    if len(op.inputs) > 2 and op.inputs[2]:
        y = y + value(graph, values, op.inputs[2])
    y = activate(y.astype(np.float32), op.attrs.get("activation"))
    return y.reshape(*x.shape[:-1], w.shape[0]) if graph.format == "onnx" else y


def batchnorm(graph, op, values):
    x = values[op.inputs[0]]
    gamma, beta, mean, var = (value(graph, values, n) for n in op.inputs[1:5])
    scale = gamma / np.sqrt(var + np.float32(op.attrs.get("epsilon", 1e-5)))
    shape = [1] * x.ndim
    shape[1 if op.attrs.get("layout") == "NCHW" else -1] = -1
    return ((x - mean.reshape(shape)) * scale.reshape(shape) + beta.reshape(shape)).astype(np.float32)


def relu(graph, op, values):
    return np.maximum(values[op.inputs[0]], np.float32(0))


def relu6(graph, op, values):
    return np.clip(values[op.inputs[0]], np.float32(0), np.float32(6))


def add(graph, op, values):
    y = value(graph, values, op.inputs[0]) + value(graph, values, op.inputs[1])
    return activate(y.astype(np.float32), op.attrs.get("activation"))


def mul(graph, op, values):
    return (value(graph, values, op.inputs[0]) * value(graph, values, op.inputs[1])).astype(np.float32)


def _pool(kind: str):
    def impl(graph, op, values):
        a = op.attrs
        x = to_nhwc(values[op.inputs[0]], op)
        fill = -np.inf if kind == "max" else np.nan
        win, _ = patches(x, a["kernel"], a["stride"], a["padding"], 1, fill=fill)
        y = win.max(axis=(3, 4)) if kind == "max" else np.nanmean(win, axis=(3, 4))
        return from_nhwc(activate(y.astype(np.float32), a.get("activation")), op)

    return impl


max_pool2d = _pool("max")
avg_pool2d = _pool("avg")


def global_avg_pool(graph, op, values):
    x = values[op.inputs[0]]
    axes = (2, 3) if op.attrs.get("layout") == "NCHW" else (1, 2)
    return x.mean(axis=axes, keepdims=True, dtype=np.float32)


def flatten(graph, op, values):
    x = values[op.inputs[0]]
    axis = op.attrs["axis"] % x.ndim if x.ndim else 0
    return x.reshape(int(np.prod(x.shape[:axis])), -1)


def reshape_to(graph, op, values):
    x = values[op.inputs[0]]
    return x.reshape([x.shape[i] if d == 0 else d for i, d in enumerate(op.attrs["shape"])])


def reshape(graph, op, values):
    x = values[op.inputs[0]]
    shape = graph.tensor(op.outputs[0]).shape
    if shape.count(None) == 1:  # the unknown batch, wherever a transpose moved it
        return x.reshape([-1 if d is None else d for d in shape])
    return x.reshape([x.shape[0] if d is None else d for d in shape])


def softmax(graph, op, values):
    x = values[op.inputs[0]].astype(np.float64)
    axis = op.attrs.get("axis", -1)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return (e / e.sum(axis=axis, keepdims=True)).astype(np.float32)
