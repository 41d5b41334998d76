"""The core integer ops of a quantized graph: MAC layers, add, pooling, data movement, (de)quantization.

Each function here is the implementation of one op kind, listed in :data:`hwsim.runtime.execute.OP_IMPLS`:
it reads its inputs' codes and quantization from the graph and returns its output codes, exactly as the
runtime named by its :class:`~hwsim.numerics.semantics.Semantics` computes them.
"""

from __future__ import annotations

import numpy as np

from hwsim.errors import ConfigError
from hwsim.numerics import ops
from hwsim.numerics import quantized as Q
from hwsim.numerics.requant_kinds import RequantKind, quantize_multiplier
from hwsim.numerics.semantics import Semantics
from hwsim.runtime.op_io import (
    constant_bias,
    from_nhwc,
    input_value,
    int_format,
    op_accumulator,
    output_tensor,
    qparams,
    shape_like,
    to_nhwc,
    xnnpack_q8_ok,
)
from hwsim.runtime.prepared import prepared
from hwsim.workload.graph import Graph, Op, Tensor


def _layer_quant(graph: Graph, op: Op, sem: Semantics) -> Q.LayerQuant:
    """The quantization and runtime of a conv / depthwise / fully-connected layer."""
    x_t, w_t, y_t = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]), output_tensor(graph, op)
    return Q.LayerQuant(
        qparams(x_t),
        qparams(w_t),
        qparams(y_t),
        int_format(y_t),
        op.attrs["activation"],
        sem.name,
        op_accumulator(op),
        w_t.bits or 8,
        op.attrs.get("bias_type"),
    )


def _prepared_layer(graph: Graph, op: Op, sem: Semantics, x: np.ndarray, **geometry):
    """The op's fused layer (built once, see :mod:`hwsim.runtime.prepared`) when ``x`` has the dtype it was
    prepared for; None where the layer cannot be fused (the checked path then runs)."""
    x_t, w_t = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1])
    if x.dtype != x_t.dtype or w_t.data is None:
        return None
    return prepared(
        graph,
        op,
        sem.name,
        lambda: Q.prepare_layer(
            op.kind, x_t.dtype, w_t.data, constant_bias(graph, op), _layer_quant(graph, op, sem), **geometry
        ),
    )


def conv2d(graph, op, values, sem):
    a = op.attrs
    geometry = dict(stride=a["stride"], padding=a["padding"], dilation=a["dilation"], groups=a["groups"])
    x = to_nhwc(input_value(graph, values, op.inputs[0]), op)
    layer = _prepared_layer(graph, op, sem, x, **geometry)
    if layer is not None:  # the layer checks x's shape and range itself
        return from_nhwc(layer(x), op)
    return from_nhwc(
        Q.conv2d(
            x,
            graph.tensor(op.inputs[1]).data,
            constant_bias(graph, op),
            _layer_quant(graph, op, sem),
            **geometry,
        ),
        op,
    )


def depthwise_conv2d(graph, op, values, sem):
    a = op.attrs
    geometry = dict(
        stride=a["stride"],
        padding=a["padding"],
        dilation=a["dilation"],
        depth_multiplier=a["depth_multiplier"],
    )
    x = to_nhwc(input_value(graph, values, op.inputs[0]), op)
    layer = _prepared_layer(graph, op, sem, x, **geometry)
    if layer is not None:  # the layer checks x's shape and range itself
        return from_nhwc(layer(x), op)
    return from_nhwc(
        Q.depthwise_conv2d(
            x,
            graph.tensor(op.inputs[1]).data,
            constant_bias(graph, op),
            _layer_quant(graph, op, sem),
            **geometry,
        ),
        op,
    )


def fully_connected(graph, op, values, sem):
    w_t, y_t = graph.tensor(op.inputs[1]), output_tensor(graph, op)
    x = input_value(graph, values, op.inputs[0])
    rows = np.ascontiguousarray(x).reshape(-1, w_t.shape[1])
    layer = _prepared_layer(graph, op, sem, x)
    if layer is not None:
        y = layer(rows)
    else:
        y = Q.fully_connected(rows, w_t.data, constant_bias(graph, op), _layer_quant(graph, op, sem))
    if graph.format == "onnx":  # Gemm / MatMul keep the leading dimensions
        return y.reshape(*x.shape[:-1], y.shape[-1])
    return y.reshape(shape_like(y_t, y.size, x.shape[0]))


def add(graph, op, values, sem):
    a_t, b_t, y_t = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]), output_tensor(graph, op)
    a, b = input_value(graph, values, op.inputs[0]), input_value(graph, values, op.inputs[1])
    if a.shape != b.shape:
        a, b = (np.ascontiguousarray(v) for v in np.broadcast_arrays(a, b))

    def build():
        return Q.prepare_add(
            a.dtype,
            x1_q=qparams(a_t),
            x2_q=qparams(b_t),
            y_q=qparams(y_t),
            y_fmt=int_format(y_t),
            activation=op.attrs["activation"],
            semantics=sem.name,
        )

    # prepared once per op, for the inputs' own dtype (the form of the add depends on it)
    return (prepared(graph, op, sem.name, build) if a.dtype == a_t.dtype else build())(a, b)


def _pool(kind: str):
    def impl(graph, op, values, sem):
        x_t, y_t = graph.tensor(op.inputs[0]), output_tensor(graph, op)
        if (
            x_t.quant is not None
            and y_t.quant is not None
            and (
                not np.array_equal(x_t.quant.scale, y_t.quant.scale)
                or not np.array_equal(x_t.quant.zero_point, y_t.quant.zero_point)
            )
        ):
            raise ConfigError(f"op {op.name!r}: pooling with different input and output quantization")
        fmt = int_format(y_t)
        lo, hi = Q.activation_range(
            op.attrs["activation"], float(y_t.quant.scale[0]), int(y_t.quant.zero_point[0]), fmt
        )
        y = ops.pool2d(
            to_nhwc(input_value(graph, values, op.inputs[0]), op),
            op.attrs["kernel"],
            kind=kind,
            stride=op.attrs["stride"],
            padding=op.attrs["padding"],
            fmt=fmt,
            act_min=lo,
            act_max=hi,
        )
        return from_nhwc(y, op)

    return impl


avg_pool2d = _pool("avg")
max_pool2d = _pool("max")


def reshape(graph, op, values, sem):
    x = input_value(graph, values, op.inputs[0])
    return x.reshape(shape_like(output_tensor(graph, op), x.size, x.shape[0]))


def pad(graph, op, values, sem):
    x = input_value(graph, values, op.inputs[0])
    pads = graph.tensor(op.inputs[1]).data
    if pads is None:
        raise ConfigError(f"op {op.name!r}: the paddings must be constant")
    y_t = output_tensor(graph, op)
    if len(op.inputs) > 2 and op.inputs[2]:
        fill = int(graph.tensor(op.inputs[2]).data.ravel()[0])
    else:
        fill = int(y_t.quant.zero_point[0]) if y_t.quant is not None else 0
    return np.pad(x, [tuple(int(v) for v in row) for row in pads], constant_values=fill)


def concat(graph, op, values, sem):
    y_t = output_tensor(graph, op)
    parts = []
    for name in op.inputs:
        t = graph.tensor(name)
        x = input_value(graph, values, name)
        if t.quant is not None and (
            not np.array_equal(t.quant.scale, y_t.quant.scale)
            or not np.array_equal(t.quant.zero_point, y_t.quant.zero_point)
        ):
            x = _rescale_float(x, t, y_t)
        parts.append(x)
    return np.concatenate(parts, axis=op.attrs["axis"]).astype(y_t.dtype)


def _rescale_float(x: np.ndarray, t: Tensor, y_t: Tensor) -> np.ndarray:
    """TFLite's concatenation with scaling: round_half_away(x * s + b) + zy, with s, b in float32."""
    scale = np.float32(t.quant.scale[0]) * (np.float32(1.0) / np.float32(y_t.quant.scale[0]))
    bias = np.float32(-int(t.quant.zero_point[0])) * scale
    fmt = int_format(y_t)
    real = (x.astype(np.float32) * scale + bias).astype(np.float64)  # float32 product and sum, as TFLite
    rounded = np.sign(real) * np.floor(np.abs(real) + 0.5)  # half away from zero (exact for float32 values)
    y = rounded.astype(np.int64) + int(y_t.quant.zero_point[0])
    return np.clip(y, fmt.min, fmt.max).astype(y_t.dtype)


def quantize(graph, op, values, sem):
    x_t, y_t = graph.tensor(op.inputs[0]), output_tensor(graph, op)
    x = input_value(graph, values, op.inputs[0])
    fmt = int_format(y_t)
    if np.issubdtype(x.dtype, np.floating):
        if sem.tflite_kernels == "xnnpack" and not y_t.quant.per_channel:
            # XNNPACK's convert multiplies by the float32 reciprocal and rounds half to even
            inverse = np.float32(np.float32(1) / np.float32(y_t.quant.scale[0]))
            y = np.rint(x.astype(np.float32) * inverse).astype(np.int64) + int(y_t.quant.zero_point[0])
            return np.clip(y, fmt.min, fmt.max).astype(fmt.storage_dtype)
        return ops.quantize(
            x.astype(np.float32),
            y_t.quant.scale,
            y_t.quant.zero_point,
            fmt,
            axis=y_t.quant.axis,
            rounding=sem.quantize_rounding,
            method=sem.quantize_method,
        )
    acc = x.astype(np.int64) - int(x_t.quant.zero_point[0])
    ratio = np.float32(np.float32(x_t.quant.scale[0]) / np.float32(y_t.quant.scale[0]))
    if (
        sem.tflite_kernels == "xnnpack"
        and x.dtype == y_t.dtype
        and x.dtype.itemsize == 1
        and xnnpack_q8_ok(ratio)
    ):
        # XNNPACK's qs8 convert: a Q8 multiplier rint(256 * sx / sy), one rounding, ties up
        y = ((acc * int(np.rint(np.float32(256) * ratio)) + 128) >> 8) + int(y_t.quant.zero_point[0])
        return np.clip(y, fmt.min, fmt.max).astype(fmt.storage_dtype)
    # TFLite's Requantize: a fixed-point multiplier by s_in / s_out
    m, e = quantize_multiplier(float(np.float32(x_t.quant.scale[0])) / float(np.float32(y_t.quant.scale[0])))
    return ops.requantize(acc, m, e, int(y_t.quant.zero_point[0]), fmt, RequantKind.GEMMLOWP_DOUBLE)


def global_avg_pool(graph, op, values, sem):
    """Mean over H and W of NCHW codes: (sum - zx * HW) requantized by float32(sx / float32(sy * HW))."""
    x_t, y_t = graph.tensor(op.inputs[0]), output_tensor(graph, op)
    x = input_value(graph, values, op.inputs[0])
    size = x.shape[2] * x.shape[3]
    acc = x.reshape(*x.shape[:2], size).sum(axis=2, dtype=np.int64) - int(x_t.quant.zero_point[0]) * size
    scale = np.float32(
        np.float32(x_t.quant.scale[0]) / np.float32(np.float32(y_t.quant.scale[0]) * np.float32(size))
    )
    y = ops.requantize(
        acc, 0, 0, int(y_t.quant.zero_point[0]), int_format(y_t), RequantKind.FLOAT32_SCALE, scale
    )
    return y.reshape(*x.shape[:2], 1, 1)


def flatten(graph, op, values, sem):
    x = input_value(graph, values, op.inputs[0])
    axis = op.attrs["axis"] % x.ndim if x.ndim else 0
    return x.reshape(int(np.prod(x.shape[:axis])), -1)


def reshape_to(graph, op, values, sem):
    """ONNX Reshape: 0 copies the input dimension, -1 is inferred."""
    x = input_value(graph, values, op.inputs[0])
    shape = [x.shape[i] if d == 0 else d for i, d in enumerate(op.attrs["shape"])]
    return x.reshape(shape)


def _zero_point(graph: Graph, name: str) -> np.ndarray:
    return np.zeros(1, np.int64) if not name else np.atleast_1d(graph.tensor(name).data).astype(np.int64)


def matmul_integer(graph, op, values, sem):
    """ONNX MatMulInteger: int32 accumulators of (a - za)(b - zb), the host CPU's dot-product arithmetic."""
    a, b = input_value(graph, values, op.inputs[0]), input_value(graph, values, op.inputs[1])
    za = int(_zero_point(graph, op.attrs["x_zero_point"])[0])
    zb = _zero_point(graph, op.attrs["w_zero_point"])
    arithmetic = sem.u8s8 if a.dtype == np.uint8 and b.dtype == np.int8 else "exact"
    res = ops.matmul(
        a.reshape(-1, a.shape[-1]),
        b,
        x_zero_point=za,
        w_zero_point=zb if zb.size > 1 else int(zb[0]),
        arithmetic=arithmetic,
    )
    return res.acc.reshape(*a.shape[:-1], b.shape[-1]).astype(np.int32)


def conv_integer(graph, op, values, sem):
    """ONNX ConvInteger (NCHW / OIHW): int32 accumulators, exact on every CPU. ONNX Runtime's GEMM takes the
    weights as its A operand and the activations as B (an s8 x u8 GEMM, which has no pair-saturating AVX2
    kernel): measured exact on an AVX2-only AMD Zen1 where MatMulInteger's u8 x s8 saturates."""
    x, w = input_value(graph, values, op.inputs[0]), input_value(graph, values, op.inputs[1])
    a = op.attrs
    zx = int(_zero_point(graph, a["x_zero_point"])[0])
    zw = _zero_point(graph, a["w_zero_point"])
    res = ops.conv2d(
        to_nhwc(x, op),
        np.ascontiguousarray(w.transpose(0, 2, 3, 1)),
        stride=a["stride"],
        padding=a["padding"],
        dilation=a["dilation"],
        groups=a["groups"],
        x_zero_point=zx,
        w_zero_point=zw if zw.size > 1 else int(zw[0]),
    )
    return from_nhwc(res.acc.astype(np.int32), op)


def dequantize(graph, op, values, sem):
    """float32(x - zp) * s; TFLite's optimized int8 kernel computes whole blocks of 8 elements as
    float32(float32(x) * s) + float32(-zp * s), two roundings (its NEON loop, emulated on x86)."""
    x_t = graph.tensor(op.inputs[0])
    x = input_value(graph, values, op.inputs[0])
    y = ops.dequantize(x, x_t.quant.scale, x_t.quant.zero_point, axis=x_t.quant.axis)
    if sem.tflite_kernels == "optimized" and x.dtype == np.int8 and not x_t.quant.per_channel:
        scale, zero = np.float32(x_t.quant.scale[0]), int(x_t.quant.zero_point[0])
        flat = x.ravel()
        blocked = flat.size - flat.size % 8
        head = (flat[:blocked].astype(np.float32) * scale).astype(np.float32) + np.float32(
            -zero * float(scale)
        )
        y = y.reshape(-1)
        y[:blocked] = head.astype(np.float32)
        y = y.reshape(x.shape)
    return y
