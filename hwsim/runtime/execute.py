"""Run a quantized graph through the bit-accurate kernels under a runtime's semantics.

Each op kind has one implementation here, registered in :data:`OP_IMPLS`; it reads its inputs' codes and
quantization from the graph and writes its output codes, exactly as the named runtime computes them.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from hwsim.errors import ConfigError
from hwsim.numerics import ops
from hwsim.numerics import quantized as Q
from hwsim.numerics.formats import IntFormat
from hwsim.numerics.requant_kinds import RequantKind, quantize_multiplier
from hwsim.numerics.semantics import Semantics, resolve
from hwsim.numerics.threads import single_threaded_blas
from hwsim.registry import Registry
from hwsim.runtime.prepared import prepared
from hwsim.workload.graph import Graph, Op, Tensor

OpImpl = Callable[[Graph, Op, dict, Semantics], np.ndarray]
OP_IMPLS: Registry[OpImpl] = Registry("op")


def run_graph(graph: Graph, inputs: dict[str, np.ndarray] | list[np.ndarray],
              semantics: str | Semantics) -> dict[str, np.ndarray]:
    """Execute ``graph`` on ``inputs`` (by name, or in graph-input order) and return every tensor's value."""
    sem = resolve(semantics)
    for op in graph.ops:
        if op.kind not in OP_IMPLS:
            raise ConfigError(f"{graph.source}: {op.describe()} has no bit-exact kernel in hwsim yet; the model "
                              "loads for simulate and energy only (the scheduler still times it)")
    inputs = graph.named_inputs(inputs)
    values: dict[str, np.ndarray] = {}
    for name in graph.inputs:
        values[name] = check_input(graph.tensor(name), np.asarray(inputs[name]))
    with single_threaded_blas():  # entered once here rather than by each fused GEMM
        for op in graph.ops:
            values[op.outputs[0]] = OP_IMPLS.get(op.kind)(graph, op, values, sem)
    return values


def check_input(t: Tensor, x: np.ndarray) -> np.ndarray:
    """``x`` if its dtype and shape are those of input ``t`` (None matches any size); else an error."""
    if x.dtype != t.dtype:
        raise ConfigError(f"input {t.name!r}: expected dtype {t.dtype} (got {x.dtype})")
    if len(x.shape) != len(t.shape) or any(d is not None and d != s for d, s in zip(t.shape, x.shape)):
        shape = tuple("?" if d is None else d for d in t.shape)
        raise ConfigError(f"input {t.name!r}: expected shape {shape} (got {tuple(x.shape)})")
    return x


def input_value(graph: Graph, values: dict, name: str) -> np.ndarray:
    """An op input's codes: a constant's data, else the value computed so far (one of ``values``)."""
    t = graph.tensor(name)
    return t.data if t.is_constant else values[name]


def _qp(t: Tensor) -> Q.QParams:
    if t.quant is None:
        raise ConfigError(f"tensor {t.name!r} is not quantized; hwsim runs integer graphs here")
    return Q.QParams(t.quant.scale, t.quant.zero_point)


def int_format(t: Tensor) -> IntFormat:
    """The tensor's integer format: ``bits`` wide when set (4-bit codes in int8), else its dtype's width."""
    return IntFormat(t.bits or t.dtype.itemsize * 8, np.issubdtype(t.dtype, np.signedinteger))


def _accumulator(op: Op) -> ops.Accumulator:
    """The op's accumulator register (``attrs["accumulator"]``, set by hwsim.quant), else int32 exact."""
    return op.attrs.get("accumulator") or ops.Accumulator()


def output_tensor(graph: Graph, op: Op) -> Tensor:
    """The op's (first) output tensor: its shape, dtype and quantization."""
    return graph.tensor(op.outputs[0])


def _bias(graph: Graph, op: Op) -> np.ndarray | None:
    return graph.tensor(op.inputs[2]).data if len(op.inputs) > 2 and op.inputs[2] else None


def _to_nhwc(x: np.ndarray, op: Op) -> np.ndarray:
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)) if op.attrs.get("layout") == "NCHW" else x


def _from_nhwc(y: np.ndarray, op: Op) -> np.ndarray:
    return np.ascontiguousarray(y.transpose(0, 3, 1, 2)) if op.attrs.get("layout") == "NCHW" else y


def _mac_layer_kwargs(graph: Graph, op: Op, sem: Semantics) -> dict:
    """The quantization and runtime arguments of a conv / depthwise / fully-connected layer."""
    x_t, w_t, y_t = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]), output_tensor(graph, op)
    return dict(x_q=_qp(x_t), w_q=_qp(w_t), y_q=_qp(y_t), y_fmt=int_format(y_t),
                activation=op.attrs["activation"], semantics=sem.name, weight_bits=w_t.bits or 8,
                accumulator=_accumulator(op))


def _prepared_layer(graph: Graph, op: Op, sem: Semantics, x: np.ndarray, prepare, **geometry):
    """The op's fused layer (built once, see :mod:`hwsim.runtime.prepared`) when ``x`` has the dtype it was
    prepared for; None where the layer cannot be fused (the checked path then runs)."""
    x_t, w_t = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1])
    if x.dtype != x_t.dtype or w_t.data is None:
        return None
    return prepared(graph, op, sem.name, lambda: prepare(x_t.dtype, w_t.data, _bias(graph, op), **geometry,
                                                         **_mac_layer_kwargs(graph, op, sem)))


@OP_IMPLS.register("conv2d")
def _conv2d(graph, op, values, sem):
    a = op.attrs
    geometry = dict(stride=a["stride"], padding=a["padding"], dilation=a["dilation"], groups=a["groups"])
    x = _to_nhwc(input_value(graph, values, op.inputs[0]), op)
    layer = _prepared_layer(graph, op, sem, x, Q.prepare_conv2d, **geometry)
    if layer is not None:  # the layer checks x's shape and range itself
        return _from_nhwc(layer(x), op)
    return _from_nhwc(Q.conv2d(x, graph.tensor(op.inputs[1]).data, _bias(graph, op), **geometry,
                               **_mac_layer_kwargs(graph, op, sem)), op)


@OP_IMPLS.register("depthwise_conv2d")
def _depthwise(graph, op, values, sem):
    a = op.attrs
    geometry = dict(stride=a["stride"], padding=a["padding"], dilation=a["dilation"],
                    depth_multiplier=a["depth_multiplier"])
    x = _to_nhwc(input_value(graph, values, op.inputs[0]), op)
    layer = _prepared_layer(graph, op, sem, x, Q.prepare_depthwise_conv2d, **geometry)
    if layer is not None:  # the layer checks x's shape and range itself
        return _from_nhwc(layer(x), op)
    return _from_nhwc(Q.depthwise_conv2d(x, graph.tensor(op.inputs[1]).data, _bias(graph, op), **geometry,
                                         **_mac_layer_kwargs(graph, op, sem)), op)


@OP_IMPLS.register("fully_connected")
def _fully_connected(graph, op, values, sem):
    w_t, y_t = graph.tensor(op.inputs[1]), output_tensor(graph, op)
    x = input_value(graph, values, op.inputs[0])
    rows = np.ascontiguousarray(x).reshape(-1, w_t.shape[1])
    layer = _prepared_layer(graph, op, sem, x, Q.prepare_fully_connected)
    if layer is not None:
        y = layer(rows)
    else:
        y = Q.fully_connected(rows, w_t.data, _bias(graph, op), **_mac_layer_kwargs(graph, op, sem))
    if graph.format == "onnx":  # Gemm / MatMul keep the leading dimensions
        return y.reshape(*x.shape[:-1], y.shape[-1])
    return y.reshape(_shape_like(y_t, y.size, x.shape[0]))


def _shape_like(t: Tensor, size: int, batch: int) -> tuple[int, ...]:
    """``t``'s shape for ``size`` values: one unknown dimension takes what the others leave (it need not be
    the input's first dimension, after a reshape folded at import), several take ``batch``."""
    known = int(np.prod([d for d in t.shape if d is not None]))
    if sum(d is None for d in t.shape) == 1 and known and size % known == 0:
        batch = size // known
    shape = [batch if d is None else d for d in t.shape]
    if int(np.prod(shape)) != size:
        raise ConfigError(f"tensor {t.name!r}: computed {size} values for declared shape {t.shape}")
    return tuple(shape)


@OP_IMPLS.register("add")
def _add(graph, op, values, sem):
    a_t, b_t, y_t = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]), output_tensor(graph, op)
    a, b = np.broadcast_arrays(input_value(graph, values, op.inputs[0]),
                               input_value(graph, values, op.inputs[1]))
    return Q.add(np.ascontiguousarray(a), np.ascontiguousarray(b), x1_q=_qp(a_t), x2_q=_qp(b_t), y_q=_qp(y_t),
                 y_fmt=int_format(y_t), activation=op.attrs["activation"], semantics=sem.name)


def _pool(kind: str) -> OpImpl:
    def impl(graph, op, values, sem):
        x_t, y_t = graph.tensor(op.inputs[0]), output_tensor(graph, op)
        if x_t.quant is not None and y_t.quant is not None and (
                not np.array_equal(x_t.quant.scale, y_t.quant.scale)
                or not np.array_equal(x_t.quant.zero_point, y_t.quant.zero_point)):
            raise ConfigError(f"op {op.name!r}: pooling with different input and output quantization")
        fmt = int_format(y_t)
        lo, hi = Q.activation_range(op.attrs["activation"], float(y_t.quant.scale[0]),
                                    int(y_t.quant.zero_point[0]), fmt)
        y = ops.pool2d(_to_nhwc(input_value(graph, values, op.inputs[0]), op), op.attrs["kernel"], kind=kind,
                       stride=op.attrs["stride"], padding=op.attrs["padding"], fmt=fmt, act_min=lo, act_max=hi)
        return _from_nhwc(y, op)
    return impl


OP_IMPLS.add("avg_pool2d", _pool("avg"))
OP_IMPLS.add("max_pool2d", _pool("max"))


@OP_IMPLS.register("reshape")
def _reshape(graph, op, values, sem):
    x = input_value(graph, values, op.inputs[0])
    return x.reshape(_shape_like(output_tensor(graph, op), x.size, x.shape[0]))


@OP_IMPLS.register("pad")
def _pad(graph, op, values, sem):
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


@OP_IMPLS.register("concat")
def _concat(graph, op, values, sem):
    y_t = output_tensor(graph, op)
    parts = []
    for name in op.inputs:
        t = graph.tensor(name)
        x = input_value(graph, values, name)
        if t.quant is not None and (not np.array_equal(t.quant.scale, y_t.quant.scale)
                                    or not np.array_equal(t.quant.zero_point, y_t.quant.zero_point)):
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


@OP_IMPLS.register("quantize")
def _quantize(graph, op, values, sem):
    x_t, y_t = graph.tensor(op.inputs[0]), output_tensor(graph, op)
    x = input_value(graph, values, op.inputs[0])
    fmt = int_format(y_t)
    if np.issubdtype(x.dtype, np.floating):
        if sem.tflite_kernels == "xnnpack" and not y_t.quant.per_channel:
            # XNNPACK's convert multiplies by the float32 reciprocal and rounds half to even
            inverse = np.float32(np.float32(1) / np.float32(y_t.quant.scale[0]))
            y = np.rint(x.astype(np.float32) * inverse).astype(np.int64) + int(y_t.quant.zero_point[0])
            return np.clip(y, fmt.min, fmt.max).astype(fmt.storage_dtype)
        return ops.quantize(x.astype(np.float32), y_t.quant.scale, y_t.quant.zero_point, fmt,
                            axis=y_t.quant.axis, rounding=sem.quantize_rounding, method=sem.quantize_method)
    acc = x.astype(np.int64) - int(x_t.quant.zero_point[0])
    ratio = np.float32(np.float32(x_t.quant.scale[0]) / np.float32(y_t.quant.scale[0]))
    if sem.tflite_kernels == "xnnpack" and x.dtype == y_t.dtype and x.dtype.itemsize == 1 and xnnpack_q8_ok(ratio):
        # XNNPACK's qs8 convert: a Q8 multiplier rint(256 * sx / sy), one rounding, ties up
        y = ((acc * int(np.rint(np.float32(256) * ratio)) + 128) >> 8) + int(y_t.quant.zero_point[0])
        return np.clip(y, fmt.min, fmt.max).astype(fmt.storage_dtype)
    # TFLite's Requantize: a fixed-point multiplier by s_in / s_out
    m, e = quantize_multiplier(float(np.float32(x_t.quant.scale[0])) / float(np.float32(y_t.quant.scale[0])))
    return ops.requantize(acc, m, e, int(y_t.quant.zero_point[0]), fmt, RequantKind.GEMMLOWP_DOUBLE)


def xnnpack_q8_ok(scale: float) -> bool:
    """XNNPACK's Q8 elementwise kernels take |scale| in [2**-8, 2**7]; others stay with TFLite's kernels."""
    return 2.0 ** -8 <= abs(float(scale)) <= 2.0 ** 7


@OP_IMPLS.register("global_avg_pool")
def _global_avg_pool(graph, op, values, sem):
    """Mean over H and W of NCHW codes: (sum - zx * HW) requantized by float32(sx / float32(sy * HW))."""
    x_t, y_t = graph.tensor(op.inputs[0]), output_tensor(graph, op)
    x = input_value(graph, values, op.inputs[0])
    size = x.shape[2] * x.shape[3]
    acc = x.reshape(*x.shape[:2], size).sum(axis=2, dtype=np.int64) - int(x_t.quant.zero_point[0]) * size
    scale = np.float32(np.float32(x_t.quant.scale[0]) / np.float32(np.float32(y_t.quant.scale[0]) * np.float32(size)))
    y = ops.requantize(acc, 0, 0, int(y_t.quant.zero_point[0]), int_format(y_t), RequantKind.FLOAT32_SCALE,
                       scale)
    return y.reshape(*x.shape[:2], 1, 1)


@OP_IMPLS.register("flatten")
def _flatten(graph, op, values, sem):
    x = input_value(graph, values, op.inputs[0])
    axis = op.attrs["axis"] % x.ndim if x.ndim else 0
    return x.reshape(int(np.prod(x.shape[:axis])), -1)


@OP_IMPLS.register("reshape_to")
def _reshape_to(graph, op, values, sem):
    """ONNX Reshape: 0 copies the input dimension, -1 is inferred."""
    x = input_value(graph, values, op.inputs[0])
    shape = [x.shape[i] if d == 0 else d for i, d in enumerate(op.attrs["shape"])]
    return x.reshape(shape)


def _zero_point(graph: Graph, name: str) -> np.ndarray:
    return np.zeros(1, np.int64) if not name else np.atleast_1d(graph.tensor(name).data).astype(np.int64)


@OP_IMPLS.register("matmul_integer")
def _matmul_integer(graph, op, values, sem):
    """ONNX MatMulInteger: int32 accumulators of (a - za)(b - zb), the host CPU's dot-product arithmetic."""
    a, b = input_value(graph, values, op.inputs[0]), input_value(graph, values, op.inputs[1])
    za = int(_zero_point(graph, op.attrs["x_zero_point"])[0])
    zb = _zero_point(graph, op.attrs["w_zero_point"])
    arithmetic = sem.u8s8 if a.dtype == np.uint8 and b.dtype == np.int8 else "exact"
    res = ops.matmul(a.reshape(-1, a.shape[-1]), b, x_zero_point=za, w_zero_point=zb if zb.size > 1 else int(zb[0]),
                     arithmetic=arithmetic)
    return res.acc.reshape(*a.shape[:-1], b.shape[-1]).astype(np.int32)


@OP_IMPLS.register("conv_integer")
def _conv_integer(graph, op, values, sem):
    """ONNX ConvInteger (NCHW / OIHW): int32 accumulators, exact on every CPU. ONNX Runtime's GEMM takes the
    weights as its A operand and the activations as B (an s8 x u8 GEMM, which has no pair-saturating AVX2
    kernel): measured exact on an AVX2-only AMD Zen1 where MatMulInteger's u8 x s8 saturates."""
    x, w = input_value(graph, values, op.inputs[0]), input_value(graph, values, op.inputs[1])
    a = op.attrs
    zx = int(_zero_point(graph, a["x_zero_point"])[0])
    zw = _zero_point(graph, a["w_zero_point"])
    res = ops.conv2d(_to_nhwc(x, op), np.ascontiguousarray(w.transpose(0, 2, 3, 1)), stride=a["stride"],
                     padding=a["padding"], dilation=a["dilation"], groups=a["groups"], x_zero_point=zx,
                     w_zero_point=zw if zw.size > 1 else int(zw[0]))
    return _from_nhwc(res.acc.astype(np.int32), op)


@OP_IMPLS.register("dequantize")
def _dequantize(graph, op, values, sem):
    """float32(x - zp) * s; TFLite's optimized int8 kernel computes whole blocks of 8 elements as
    float32(float32(x) * s) + float32(-zp * s), two roundings (its NEON loop, emulated on x86)."""
    x_t = graph.tensor(op.inputs[0])
    x = input_value(graph, values, op.inputs[0])
    y = ops.dequantize(x, x_t.quant.scale, x_t.quant.zero_point, axis=x_t.quant.axis)
    if sem.tflite_kernels == "optimized" and x.dtype == np.int8 and not x_t.quant.per_channel:
        scale, zero = np.float32(x_t.quant.scale[0]), int(x_t.quant.zero_point[0])
        flat = x.ravel()
        blocked = flat.size - flat.size % 8
        head = (flat[:blocked].astype(np.float32) * scale).astype(np.float32) + np.float32(-zero * float(scale))
        y = y.reshape(-1)
        y[:blocked] = head.astype(np.float32)
        y = y.reshape(x.shape)
    return y
from hwsim.runtime import nonlinear  # noqa: E402,F401  (registers the nonlinear ops)
from hwsim.runtime import onnx_ops  # noqa: E402,F401  (registers ONNX Runtime's own ops)
from hwsim.runtime import island  # noqa: E402,F401  (registers float islands and nearest resize)
