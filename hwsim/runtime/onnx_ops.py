"""ONNX Runtime's own ops in a quantized graph, bit-exact on x86 (listed in ``execute.OP_IMPLS``).

A quantized transformer block in ONNX Runtime mixes integer ops that are not the TFLite ones of
:mod:`hwsim.runtime.nonlinear` (QLinearMatMul of two activations, the com.microsoft QLinearAdd, QLinearMul
and QLinearSoftmax) with float32 ops that run between DequantizeLinear and QuantizeLinear (LayerNormalization,
Erf, Div, and the MatMul, Add and Mul groups ONNX Runtime does not fuse on x86 because an input is int8).
The float ops mirror MLAS' order of operations (:mod:`hwsim.numerics.mlas`), so their float32 results are
equal to ONNX Runtime's to the last bit, and so are the codes quantized from them.

=================== ===========================================================================
kind                what ONNX Runtime 1.32 computes (x86-64, AVX2/AVX-512)
=================== ===========================================================================
qlinear_matmul      int32 (a - za)(b - zb) over broadcast batches, round_half_even(float32(acc) *
                    float32(float32(sa * sb) / sy)) + zy; uint8 x int8 pairs use the host's dot product
qlinear_add         fma(a, rA, fma(b, rB, zy - fma(rA, zA, rB zB))), rX = float32(sX / sy)
qlinear_mul         float32((a - za)(b - zb)) * float32(float32(sa sb) / sy) + zy, ties to even
qlinear_softmax     float32 exp table, row sum in order, nearbyint(t floor(1 / sy) / sum) + zy
layer_norm_f32      mean in float64, variance in 8 float32 FMA lanes, fma((x - mean) inv, scale, bias)
reduce_mean_f32     last axis: Eigen's 4-float packet sum from the row's 16-byte boundary, / n
pow_f32             x * x for 2, x * x * x for 3, else glibc's powf
erf_f32             MLAS' polynomial Erf (the AVX-512 or the FMA3 kernel, as the CPU dispatches)
matmul_f32          SGEMM: one fused multiply-add chain per output over k
conv2d_f32          MLAS' im2col + SGEMM Conv (NCHW): patches in (c, ky, kx) order, FMA chains, then + bias
add/sub/mul/div_f32 IEEE float32, numpy broadcasting
=================== ===========================================================================
"""

from __future__ import annotations

import numpy as np

from hwsim.errors import ConfigError
from hwsim.numerics import mlas
from hwsim.numerics import geometry, ops
from hwsim.numerics.cpu import cpu_flags, physical_cores
from hwsim.runtime import core_ops
from hwsim.runtime.op_io import input_value, int_format, output_tensor
from hwsim.workload.graph import Tensor

_F32 = np.float32


def _scale(t: Tensor) -> float:
    if t.quant is None:
        raise ConfigError(f"tensor {t.name!r} is not quantized; hwsim runs integer graphs here")
    if t.quant.per_channel:
        raise ConfigError(f"tensor {t.name!r}: per-channel quantization of an activation is not supported")
    return float(_F32(t.quant.scale[0]))


def _zero(t: Tensor) -> int:
    return int(t.quant.zero_point[0])


def _onnxruntime(sem) -> bool:
    return sem.name.startswith("onnxruntime")


def _binary(graph, op, values):
    a_t, b_t, y_t = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]), output_tensor(graph, op)
    return input_value(graph, values, op.inputs[0]), input_value(graph, values, op.inputs[1]), a_t, b_t, y_t


# ---------------------------------------------------------------- integer ops
def qlinear_matmul(graph, op, values, sem):
    """QLinearMatMul whose B is an activation (or a batched constant), broadcasting like numpy.matmul."""
    a, b, a_t, b_t, y_t = _binary(graph, op, values)
    arithmetic = sem.u8s8 if a.dtype == np.uint8 and b.dtype == np.int8 else "exact"
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    a3 = np.broadcast_to(a, batch + a.shape[-2:]).reshape(-1, *a.shape[-2:])
    b3 = np.broadcast_to(b, batch + b.shape[-2:]).reshape(-1, *b.shape[-2:])
    za, zb = _zero(a_t), _zero(b_t)
    acc = np.stack(
        [
            ops.matmul(
                np.ascontiguousarray(x), np.array(w), x_zero_point=za, w_zero_point=zb, arithmetic=arithmetic
            ).acc
            for x, w in zip(a3, b3)
        ]
    )
    scale = _F32(_F32(_F32(_scale(a_t)) * _F32(_scale(b_t))) / _F32(_scale(y_t)))
    fmt = int_format(y_t)
    y = np.rint((acc.astype(_F32) * scale).astype(_F32)).astype(np.int64) + _zero(y_t)
    return np.clip(y, fmt.min, fmt.max).astype(y_t.dtype).reshape(batch + (a.shape[-2], b.shape[-1]))


def qlinear_add(graph, op, values, sem):
    """com.microsoft QLinearAdd (and fused QDQ Add): MLAS' AVX2 kernel under ONNX Runtime; the shared
    ``add`` arithmetic of the semantics otherwise (onnx.reference)."""
    if not _onnxruntime(sem):
        return core_ops.add(graph, op, values, sem)
    a, b, a_t, b_t, y_t = _binary(graph, op, values)
    fmt = int_format(y_t)
    y = mlas.qlinear_add(
        a, b, _zero(a_t), _zero(b_t), _zero(y_t), _scale(a_t), _scale(b_t), _scale(y_t), fmt.min, fmt.max
    )
    return y.astype(y_t.dtype)


def qlinear_mul(graph, op, values, sem):
    """com.microsoft QLinearMul (and fused QDQ Mul), MLAS' SSE2 kernel."""
    a, b, a_t, b_t, y_t = _binary(graph, op, values)
    fmt = int_format(y_t)
    y = mlas.qlinear_mul(
        a, b, _zero(a_t), _zero(b_t), _zero(y_t), _scale(a_t), _scale(b_t), _scale(y_t), fmt.min, fmt.max
    )
    return y.astype(y_t.dtype)


def qlinear_softmax(graph, op, values, sem):
    """com.microsoft QLinearSoftmax: opset >= 13 normalizes along ``axis``, older opsets over the flattened
    dimensions from ``axis`` on (ONNX Runtime transposes the axis last, as done here)."""
    x = input_value(graph, values, op.inputs[0])
    x_t, y_t = graph.tensor(op.inputs[0]), output_tensor(graph, op)
    axis = op.attrs["axis"] % x.ndim
    if op.attrs["opset"] < 13:
        rows = x.reshape(int(np.prod(x.shape[:axis])), -1)
        return mlas.qlinear_softmax(rows, _scale(x_t), _scale(y_t), _zero(y_t)).reshape(x.shape)
    moved = np.ascontiguousarray(np.moveaxis(x, axis, -1))
    y = mlas.qlinear_softmax(moved, _scale(x_t), _scale(y_t), _zero(y_t))
    return np.ascontiguousarray(np.moveaxis(y, -1, axis))


# ---------------------------------------------------------------- float32 ops between DQ and Q
def _float_inputs(graph, op, values) -> list[np.ndarray]:
    out = []
    for name in op.inputs:
        v = input_value(graph, values, name) if name else None
        if v is not None and not np.issubdtype(v.dtype, np.floating):
            raise ConfigError(f"op {op.name!r} ({op.kind}): input {name!r} is {v.dtype}, expected float32")
        out.append(None if v is None else np.asarray(v, _F32))
    return out


def _elementwise(fn):
    def impl(graph, op, values, sem):
        a, b = _float_inputs(graph, op, values)
        return np.asarray(fn(a, b), _F32)

    return impl


add_f32 = _elementwise(np.add)
sub_f32 = _elementwise(np.subtract)
mul_f32 = _elementwise(np.multiply)
div_f32 = _elementwise(np.divide)


def sqrt_f32(graph, op, values, sem):
    (x,) = _float_inputs(graph, op, values)
    return np.sqrt(x)


def pow_f32(graph, op, values, sem):
    """Pow with a constant scalar exponent (ONNX Runtime's special cases 2 and 3, else powf)."""
    x, e = _float_inputs(graph, op, values)
    if e.size != 1:
        raise ConfigError(
            f"op {op.name!r} (pow_f32): only a scalar exponent is supported (got shape {e.shape})"
        )
    return mlas.power(x, float(e.ravel()[0]))


def reduce_mean_f32(graph, op, values, sem):
    """ReduceMean over the last axis (Eigen's vectorized row sum / n), keepdims or not."""
    (x,) = _float_inputs(graph, op, values)
    if op.attrs["axis"] % x.ndim != x.ndim - 1:
        raise ConfigError(
            f"op {op.name!r} (reduce_mean_f32): only the last axis is supported "
            f"(axis {op.attrs['axis']} of a rank-{x.ndim} tensor)"
        )
    y = mlas.reduce_mean_last(x)
    return y if op.attrs["keepdims"] else y.reshape(x.shape[:-1])


def relu_f32(graph, op, values, sem):
    (x,) = _float_inputs(graph, op, values)
    return np.maximum(x, _F32(0))


def erf_kernel(sem) -> str:
    """Which MLAS Erf kernel ONNX Runtime dispatches to: the AVX-512 one on CPUs with AVX-512F (measured),
    the FMA3 one on AVX2 CPUs (``onnxruntime-avx2`` semantics, or a host without AVX-512F). In ONNX Runtime
    1.32 both clamp at 3.925 and give the same float32 for every input (measured on an AMD Zen1 host against
    3 million random bit patterns; see ``mlas.erf``): the choice is kept to name the kernel that runs."""
    return "fma3" if sem.name.endswith("avx2") or "avx512f" not in cpu_flags() else "avx512"


def conv2d_f32(graph, op, values, sem):
    """ONNX Runtime's float Conv between DequantizeLinear and QuantizeLinear (a Conv group its x86 QDQ rules
    do not fuse), NCHW, as ``mlas.conv2d_nchw`` computes it with the session's intra-op threads (the
    semantics', else ONNX Runtime's default, one per physical core: they decide how the output pixels are
    segmented, and
    so how K is blocked)."""
    x, w, bias = (_float_inputs(graph, op, values) + [None])[:3]
    a = op.attrs
    pads = geometry.resolve_padding(a["padding"], x.shape[2:4], w.shape[2:4], a["stride"], a["dilation"])
    return mlas.conv2d_nchw(
        x,
        w,
        bias,
        tuple(a["stride"]),
        pads,
        tuple(a["dilation"]),
        int(a.get("groups", 1)),
        threads=sem.intra_op_threads or physical_cores(),
    )


def erf_f32(graph, op, values, sem):
    (x,) = _float_inputs(graph, op, values)
    return mlas.erf(x, erf_kernel(sem))


def layer_norm_f32(graph, op, values, sem):
    """LayerNormalization over the dimensions from ``axis`` on (flattened), MLAS' AVX2 kernel."""
    x, scale, bias = (_float_inputs(graph, op, values) + [None])[:3]
    axis = op.attrs["axis"] % x.ndim
    rows = x.reshape(int(np.prod(x.shape[:axis])), -1)
    if rows.shape[1] < 8:
        raise ConfigError(
            f"op {op.name!r} (layer_norm_f32): normalizing {rows.shape[1]} < 8 elements takes "
            "another MLAS path, which hwsim does not model"
        )
    scale = np.broadcast_to(scale, x.shape[axis:]).reshape(-1)
    bias = None if bias is None else np.broadcast_to(bias, x.shape[axis:]).reshape(-1)
    return mlas.layer_norm(rows, scale, bias, op.attrs["epsilon"]).reshape(x.shape)


def matmul_f32(graph, op, values, sem):
    """float MatMul (MLAS SGEMM); a product with one row and a computed B takes MLAS' GEMV, not modelled."""
    a, b = _float_inputs(graph, op, values)
    rows = int(np.prod(a.shape[:-1])) if b.ndim == 2 else a.shape[-2]
    if rows == 1 and not graph.tensor(op.inputs[1]).is_constant:
        raise ConfigError(
            f"op {op.name!r} (matmul_f32): a one-row float MatMul runs MLAS' GEMV, which hwsim does not model"
        )
    if b.ndim == 2:
        return mlas.sgemm(a.reshape(-1, a.shape[-1]), b).reshape(*a.shape[:-1], b.shape[-1])
    return mlas.sgemm(a, b)
