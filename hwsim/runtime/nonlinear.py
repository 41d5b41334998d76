"""TFLite's nonlinear and remaining int8 ops, bit-exact per resolver (listed in ``execute.OP_IMPLS``).

Which arithmetic each resolver uses was measured against TensorFlow Lite 2.21 (``tests/runtimes/
test_tflite_nonlinear.py``); the semantics' ``tflite_kernels`` field picks it. Ops XNNPACK does not take run
TFLite's optimized kernels under the default resolver.

================== ================================================= =====================================
op                 BUILTIN_REF / optimized kernels                   XNNPACK delegate
================== ================================================= =====================================
LOGISTIC, TANH     256-entry table of the float32 function            same table
HARD_SWISH         int16 fixed point (``fixed_point.hard_swish``)     same
SOFTMAX            float32 exp table, float32 row sum, round away     same (no int8 softmax in XNNPACK)
MEAN               integer sum; multiplier / count, gemmlowp          float32: round(sum s + zy - n zx s),
                   (optimized, 4-D keep-dims over H, W: raw sum,      s = (sx / sy)(1 / n); ties away
                   float-rounded bias, NEON half-up on blocks of 16)  (LiteRT: to even)
MUL                (x1 - z1)(x2 - z2), gemmlowp requantizer           float32 scale, ties to even
SUB                TFLite's shifted form (left shift 20)              same (measured)
SQUARED_DIFFERENCE shifted form (left shift 7), squared in int32      same
RSQRT              gemmlowp Newton-Raphson 1/sqrt, as a table         same
BATCH_MATMUL       int32 dot products, gemmlowp requantizer           rhs zero point dropped, float32 scale
                                                                      (LiteRT: zr != 0 not delegated)
RELU, RELU6        gemmlowp rescale, QuantizedReluX clamp             same
LEAKY_RELU         gemmlowp rescale per sign                          Q8 multipliers rint(256 s), >> 8
DEQUANTIZE         float32((x - zp) s); optimized: blocks of 8 as     float32((x - zp) s)
                   float32(float32(x) s) + float32(-zp s)
QUANTIZE int->int  execute.py's requantize                            Q8 multiplier rint(256 sx / sy), >> 8
================== ================================================= =====================================

int16 inputs (16x8 models; measured against the three resolvers and TFLite Micro, which all compute them the
same way since XNNPACK takes no int16 op): SOFTMAX from two interpolated 513-entry int16 tables, LOGISTIC
and TANH from the sigmoid(i / 24) table (``fixed_point``), MEAN, MUL, SUB and LEAKY_RELU with the int8
formulas above (TFLite's reference column). The other ops here refuse int16 inputs until measured.
"""

from __future__ import annotations

import os

import numpy as np

from hwsim.errors import ConfigError
from hwsim.numerics import fixed_point as fx
from hwsim.numerics import kernels_nonlinear, reference_nonlinear
from hwsim.numerics import quantized as Q
from hwsim.numerics.formats import RoundingMode
from hwsim.numerics.requant_kinds import quantize_multiplier, tflite_multiplier
from hwsim.numerics.semantics import get_semantics
from hwsim.runtime import float_ops
from hwsim.runtime.op_io import input_value, int_format, output_tensor, xnnpack_q8_ok
from hwsim.runtime.prepared import prepared
from hwsim.workload.graph import Tensor

_F32 = np.float32


def _kernels():
    return reference_nonlinear if os.environ.get("HWSIM_REFERENCE") == "1" else kernels_nonlinear


def _scale(t: Tensor) -> float:
    if t.quant is None:
        raise ConfigError(f"tensor {t.name!r} is not quantized; hwsim runs integer graphs here")
    return float(_F32(t.quant.scale[0]))


def _zero(t: Tensor) -> int:
    return int(t.quant.zero_point[0])


def _io(graph, op, values):
    x_t, y_t = graph.tensor(op.inputs[0]), output_tensor(graph, op)
    return input_value(graph, values, op.inputs[0]), x_t, y_t


def _tflite_only(sem, op) -> None:
    if sem.add_form == "float":
        raise ConfigError(
            f"op {op.name!r} ({op.kind}): hwsim models this op with TFLite's arithmetic only; "
            f"semantics {sem.name!r} is not a TFLite runtime"
        )


def _eight_bit(op, t: Tensor, int16: bool = False) -> None:
    """Refuse the input types hwsim has not measured for this op (int16 where ``int16`` is set)."""
    if t.quant is None or not (t.dtype == np.int8 or (int16 and t.dtype == np.int16)):
        allowed = "int8 and int16 (16x8)" if int16 else "int8"
        raise ConfigError(
            f"op {op.name!r} ({op.kind}): {t.dtype} inputs are not modelled; hwsim models this "
            f"op for quantized {allowed} tensors as measured against TFLite"
        )


def _symmetric16(op, *tensors: Tensor) -> None:
    """TFLite's int16 LOGISTIC, TANH and SOFTMAX take zero points 0 only (its prepare step refuses others)."""
    if any(_zero(t) != 0 for t in tensors):
        raise ConfigError(
            f"op {op.name!r} ({op.kind}): int16 tensors with a nonzero zero point; TFLite refuses them too"
        )


def _table_lookup(x: np.ndarray, table: np.ndarray, qmin: int, y_t: Tensor) -> np.ndarray:
    return table[x.astype(np.int64) - qmin].astype(y_t.dtype)


# ---------------------------------------------------------------- table activations
def _float_table_op(
    transform, kernel16: str | None = None, pot_shifts: tuple[int, ...] = (), with_attrs: bool = False
):
    """An int8 op as TFLite's 256-entry table of a float function (``transform(x, op.attrs)`` when
    ``with_attrs``); with ``kernel16``, int16 inputs run TFLite's fixed-point kernel of that name (the
    interpolated sigmoid table, in every resolver: XNNPACK takes no int16 op, and the optimized kernels use
    the reference one unless the input scale is a power of two)."""

    def impl(graph, op, values, sem):
        _tflite_only(sem, op)
        x, x_t, y_t = _io(graph, op, values)
        _eight_bit(op, x_t, int16=kernel16 is not None)
        fmt = int_format(y_t)
        if x_t.dtype == np.int16:
            _symmetric16(op, x_t, y_t)
            multiplier, shift = fx.int16_table_multiplier(_scale(x_t), pot_shifts)
            if multiplier == 0 and sem.tflite_kernels != "reference":
                raise ConfigError(
                    f"op {op.name!r} ({op.kind}): an int16 input scale that is a power of "
                    "two runs TFLite's gemmlowp fixed-point kernel in the optimized resolvers, "
                    "which hwsim does not model; use tflite-reference or tflite-micro"
                )
            kernel = getattr(_kernels(), kernel16)
            y = kernel(np.ascontiguousarray(x, np.int64), multiplier, shift, fx.SIGMOID_TABLE_UINT16)
            return y.astype(np.int16)
        fn = (lambda v: transform(v, op.attrs)) if with_attrs else transform
        table = fx.float_lut(fn, _scale(x_t), _zero(x_t), _scale(y_t), _zero(y_t), fmt.min, fmt.max)
        return _table_lookup(x, table, fmt.min, y_t)

    return impl


logistic = _float_table_op(fx.logistic_f32, "logistic_int16", (0,))
tanh = _float_table_op(fx.tanh_f32, "tanh_int16", (0, 1))
gelu = _float_table_op(lambda v, a: float_ops.gelu(v, a.get("approximate", False)), with_attrs=True)
hard_sigmoid = _float_table_op(
    lambda v, a: float_ops.hard_sigmoid(v, a.get("alpha", 1 / 6), a.get("beta", 0.5)), with_attrs=True
)


def hard_swish(graph, op, values, sem):
    _tflite_only(sem, op)
    x, x_t, y_t = _io(graph, op, values)
    _eight_bit(op, x_t)
    fmt = int_format(y_t)
    params = fx.hard_swish_params(_scale(x_t), _scale(y_t))
    return fx.hard_swish(x, _zero(x_t), _zero(y_t), params, fmt.min, fmt.max).astype(y_t.dtype)


def softmax(graph, op, values, sem):
    _tflite_only(sem, op)
    x, x_t, y_t = _io(graph, op, values)
    _eight_bit(op, x_t, int16=True)
    fmt = int_format(y_t)
    rows = np.ascontiguousarray(x.astype(np.int64).reshape(-1, x.shape[-1]))
    if x_t.dtype == np.int16:  # TFLite's int16 kernel (every resolver): two interpolated int16 tables
        _symmetric16(op, x_t, y_t)
        if y_t.dtype != np.int16:
            raise ConfigError(f"op {op.name!r} (softmax): int16 input, {y_t.dtype} output is not modelled")
        beta = float(np.float32(op.attrs.get("beta", 1.0)))
        mult, shift = quantize_multiplier(_scale(x_t) * beta / (10.0 / 65535.0))
        y = _kernels().softmax_rows_int16(rows, *fx.softmax_int16_tables(), mult, shift)
        return y.reshape(x.shape).astype(np.int16)
    # the table as TFLite's Prepare makes it: once per op (it costs more than the rows of a classifier)
    beta = op.attrs.get("beta", 1.0)
    table = prepared(graph, op, sem.name, lambda: fx.softmax_exp_table(_scale(x_t), beta))
    y = _kernels().softmax_rows(rows, table, _F32(_scale(y_t)), _zero(y_t), fmt.min, fmt.max)
    return y.reshape(x.shape).astype(y_t.dtype)


def rsqrt(graph, op, values, sem):
    _tflite_only(sem, op)
    x, x_t, y_t = _io(graph, op, values)
    _eight_bit(op, x_t)
    fmt = int_format(y_t)
    if np.any(x.astype(np.int64) < _zero(x_t)):
        raise ConfigError(
            f"op {op.name!r} (rsqrt): inputs below the zero point (negative reals) have no "
            "square root; TFLite rejects them too"
        )
    # the table as TFLite's Prepare makes it: once per op (256 fixed-point Newton-Raphson inverse roots)
    table = prepared(
        graph,
        op,
        sem.name,
        lambda: fx.rsqrt_table(_scale(x_t), _zero(x_t), _scale(y_t), _zero(y_t), fmt.min, fmt.max),
    )
    return _table_lookup(x, table, fmt.min, y_t)


# ---------------------------------------------------------------- standalone ReLUs
def _relu_op(low, high):
    def impl(graph, op, values, sem):
        _tflite_only(sem, op)
        x, x_t, y_t = _io(graph, op, values)
        _eight_bit(op, x_t)
        fmt = int_format(y_t)
        lo, hi = _relu_range(low, high, _scale(y_t), _zero(y_t), fmt)
        mult, shift = quantize_multiplier(_scale(x_t) / _scale(y_t))
        y = fx.multiply_by_quantized_multiplier(x.astype(np.int64) - _zero(x_t), mult, shift) + _zero(y_t)
        return np.clip(y, lo, hi).astype(y_t.dtype)

    return impl


def _relu_range(low, high, scale: float, zero: int, fmt) -> tuple[int, int]:
    """TFLite's QuantizedReluX clamp: zy + roundf(a / sy) for each finite bound, clipped to the type."""

    def code(a: float) -> int:
        return zero + int(fx.round_half_away(_F32(_F32(a) / _F32(scale))))

    return fmt.min if low is None else max(fmt.min, code(low)), fmt.max if high is None else min(
        fmt.max, code(high)
    )


relu = _relu_op(0.0, None)
relu6 = _relu_op(0.0, 6.0)
relu_n1_to_1 = _relu_op(-1.0, 1.0)


def clip(graph, op, values, sem):
    """ONNX Clip with other bounds: the same rescale and clamp (TFLite's RELU kernels at those bounds)."""
    return _relu_op(op.attrs["low"], op.attrs["high"])(graph, op, values, sem)


def leaky_relu(graph, op, values, sem):
    _tflite_only(sem, op)
    x, x_t, y_t = _io(graph, op, values)
    _eight_bit(op, x_t, int16=True)
    fmt = int_format(y_t)
    sx, sy, alpha = _F32(_scale(x_t)), _F32(_scale(y_t)), _F32(op.attrs["alpha"])
    m_id, e_id = quantize_multiplier(float(_F32(sx / sy)))
    m_alpha, e_alpha = quantize_multiplier(float(_F32(_F32(sx * alpha) / sy)))
    v = x.astype(np.int64) - _zero(x_t)
    positive, negative = _F32(sx / sy), _F32(_F32(sx / sy) * alpha)
    if (
        sem.tflite_kernels == "xnnpack"
        and fmt.bits == 8
        and xnnpack_q8_ok(positive)
        and xnnpack_q8_ok(negative)
    ):
        # XNNPACK qs8 leaky ReLU: Q8 multipliers rint(256 s), one rounding (ties up) in the arithmetic shift
        m_pos, m_neg = int(np.rint(_F32(256) * positive)), int(np.rint(_F32(256) * negative))
        y = ((v * np.where(v >= 0, m_pos, m_neg) + 128) >> 8) + _zero(y_t)
    else:
        y = np.where(
            v >= 0,
            fx.multiply_by_quantized_multiplier(v, m_id, e_id),
            fx.multiply_by_quantized_multiplier(v, m_alpha, e_alpha),
        ) + _zero(y_t)
    return np.clip(y, fmt.min, fmt.max).astype(y_t.dtype)


# ---------------------------------------------------------------- binary elementwise
def _binary_inputs(graph, op, values, sem, int16: bool = False):
    """The two int8 (or, with ``int16``, int16) inputs of a TFLite binary op, broadcast, as int64 codes, with
    the three tensors."""
    _tflite_only(sem, op)
    a_t, b_t, y_t = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]), output_tensor(graph, op)
    a, b = np.broadcast_arrays(
        input_value(graph, values, op.inputs[0]), input_value(graph, values, op.inputs[1])
    )
    _eight_bit(op, a_t, int16)
    return a.astype(np.int64), b.astype(np.int64), a_t, b_t, y_t


def mul(graph, op, values, sem):
    """(x1 - z1)(x2 - z2) requantized by s1 s2 / so: gemmlowp in TFLite's kernels (the multiplier from
    float32 scales in float32 arithmetic, in double in TFLite Micro), float32 in XNNPACK."""
    a, b, a_t, b_t, y_t = _binary_inputs(graph, op, values, sem, int16=True)
    fmt = int_format(y_t)
    lo, hi = Q.activation_range(op.attrs.get("activation"), _scale(y_t), _zero(y_t), fmt)
    prod = (a - _zero(a_t)) * (b - _zero(b_t))
    if sem.tflite_kernels == "xnnpack" and fmt.bits == 8:
        scale = _F32(_F32(_F32(_scale(a_t)) * _F32(_scale(b_t))) / _F32(_scale(y_t)))
        y = np.rint((prod.astype(np.float32) * scale).astype(np.float32)).astype(np.int64) + _zero(y_t)
    else:
        sa, sb, sy = _scale(a_t), _scale(b_t), _scale(y_t)
        real = (
            tflite_multiplier(sa, sb, sy)
            if sem.mul_multiplier == "double"
            else float(_F32(_F32(_F32(sa) * _F32(sb)) / _F32(sy)))
        )
        y = fx.multiply_by_quantized_multiplier(prod, *quantize_multiplier(real)) + _zero(y_t)
    return np.clip(y, lo, hi).astype(y_t.dtype)


def sub(graph, op, values, sem):
    """TFLite's shifted form: y = R_o(R_1((x1 - z1) << 20) - R_2((x2 - z2) << 20)) + zo (15 for int16)."""
    a, b, a_t, b_t, y_t = _binary_inputs(graph, op, values, sem, int16=True)
    fmt = int_format(y_t)
    lo, hi = Q.activation_range(op.attrs.get("activation"), _scale(y_t), _zero(y_t), fmt)
    left = 20 if fmt.bits == 8 else 15
    m1, e1, m2, e2, mo, eo = Q.shifted_add_multipliers(_scale(a_t), _scale(b_t), _scale(y_t), left)
    r1 = fx.multiply_by_quantized_multiplier((a - _zero(a_t)) << left, m1, e1)
    r2 = fx.multiply_by_quantized_multiplier((b - _zero(b_t)) << left, m2, e2)
    y = fx.multiply_by_quantized_multiplier(r1 - r2, mo, eo) + _zero(y_t)
    return np.clip(y, lo, hi).astype(y_t.dtype)


def squared_difference(graph, op, values, sem):
    """TFLite's int8 SQUARED_DIFFERENCE: inputs shifted left by 7, rescaled to twice the larger scale,
    the difference squared in int32 and rescaled by (2 max)**2 / (2**14 so) (every resolver)."""
    a, b, a_t, b_t, y_t = _binary_inputs(graph, op, values, sem)
    fmt = int_format(y_t)
    s1, s2, so = _scale(a_t), _scale(b_t), _scale(y_t)
    twice_max = float(_F32(2.0 * max(s1, s2)))
    m1, e1 = quantize_multiplier(s1 / twice_max)
    m2, e2 = quantize_multiplier(s2 / twice_max)
    mo, eo = quantize_multiplier(twice_max * twice_max / ((1 << 14) * so))
    r1 = fx.multiply_by_quantized_multiplier((a - _zero(a_t)) << 7, m1, e1)
    r2 = fx.multiply_by_quantized_multiplier((b - _zero(b_t)) << 7, m2, e2)
    diff = r1 - r2
    y = fx.multiply_by_quantized_multiplier(fx.wrap32(diff * diff), mo, eo) + _zero(y_t)
    return np.clip(y, fmt.min, fmt.max).astype(y_t.dtype)


# ---------------------------------------------------------------- MEAN
def mean(graph, op, values, sem):
    """TFLite's MEAN; an NCHW op (from ONNX) runs on the NHWC view, as the converted model would."""
    _tflite_only(sem, op)
    x, x_t, y_t = _io(graph, op, values)
    _eight_bit(op, x_t, int16=True)
    if op.attrs.get("layout") != "NCHW":
        return _mean_codes(x, op.attrs["axes"], op.attrs["keep_dims"], x_t, y_t, sem)
    nhwc = (0, 3, 1, 2)  # NCHW axis -> NHWC axis
    axes = tuple(sorted({a % 4 for a in op.attrs["axes"]}))
    y = _mean_codes(
        np.ascontiguousarray(x.transpose(0, 2, 3, 1)),
        tuple(nhwc[a] for a in axes),
        True,
        x_t,
        y_t,
        sem,
        op.attrs["keep_dims"],
    )
    y = np.ascontiguousarray(y.transpose(0, 3, 1, 2))
    return y if op.attrs["keep_dims"] else y.reshape([d for i, d in enumerate(y.shape) if i not in axes])


def _mean_codes(x, axes, keep_dims: bool, x_t, y_t, sem, optimized_keep_dims: bool | None = None):
    """The codes of TFLite's MEAN of ``x`` over ``axes``; ``optimized_keep_dims`` is the keep_dims the
    optimized kernel's choice sees (the op's own, when the layout wrapper keeps dimensions for itself)."""
    fmt = int_format(y_t)
    axes = tuple(sorted({a % x.ndim for a in axes}))
    count = int(np.prod([x.shape[a] for a in axes]))
    total = _sum_codes(x, axes, count)
    sx, zx, sy, zy = _scale(x_t), _zero(x_t), _scale(y_t), _zero(y_t)
    if sem.tflite_kernels == "xnnpack" and fmt.bits == 8:
        y = _mean_xnnpack(total, count, sx, zx, sy, zy, sem.xnnpack_convert_rounding)
    elif (
        sem.tflite_kernels == "optimized"
        and fmt.bits == 8
        and x.ndim == 4
        and axes == (1, 2)
        and (keep_dims if optimized_keep_dims is None else optimized_keep_dims)
    ):
        y = _mean_hw_optimized(total, count, sx, zx, sy, zy)
    else:
        mult, shift = fx.mean_multiplier(*quantize_multiplier(sx / sy), count)
        y = fx.multiply_by_quantized_multiplier(total - count * zx, mult, shift) + zy
    y = np.clip(y, fmt.min, fmt.max)
    if not keep_dims:
        y = y.reshape([d for i, d in enumerate(y.shape) if i not in axes])
    return y.astype(y_t.dtype)


def _sum_codes(x: np.ndarray, axes: tuple, count: int) -> np.ndarray:
    """The exact sum of integer codes over ``axes`` (kept), as int64: accumulated in int32 where ``count``
    codes cannot leave it (twice numpy's lanes, and no int64 copy of ``x``)."""
    info = np.iinfo(x.dtype)
    wide = count * max(-int(info.min), int(info.max)) >= 1 << 31
    return x.sum(axis=axes, keepdims=True, dtype=np.int64 if wide else np.int32).astype(np.int64)


def _mean_hw_optimized(total: np.ndarray, count: int, sx: float, zx: int, sy: float, zy: int) -> np.ndarray:
    """TFLite's optimized int8 mean over H and W of NHWC (keep_dims): the sum of raw codes times
    float32(sx / (count * sy)) with the NEON half-up requantizer on whole blocks of 16 channels, the
    remaining channels with the gemmlowp one; the input zero point enters as a bias rounded in float32."""
    temp = _F32(_F32(_F32(zx) * _F32(sx)) / _F32(sy))
    temp = _F32(temp + _F32(0.5)) if temp > 0 else _F32(temp - _F32(0.5))
    bias = zy - int(temp)
    mult, shift = quantize_multiplier(float(_F32(_F32(sx) / _F32(_F32(count) * _F32(sy)))))
    channels = total.shape[-1]
    blocked = channels - channels % 16
    head = fx.multiply_by_quantized_multiplier_half_up(total[..., :blocked], mult, shift)
    tail = fx.multiply_by_quantized_multiplier(total[..., blocked:], mult, shift)
    return np.concatenate([head, tail], axis=-1) + bias


def _mean_xnnpack(total, count: int, sx: float, zx: int, sy: float, zy: int, rounding) -> np.ndarray:
    """XNNPACK's qs8 mean: the raw int32 sum of codes goes through its float convert to int8. The scale is
    float32(float32(sx / sy) * float32(1 / count)); the input zero point is folded into a float32 output zero
    point zy - float32(count * zx) * scale; one float32 multiply and one add (not fused), then ``rounding``
    (``Semantics.xnnpack_convert_rounding``: the two part on sums landing on x.5 exactly)."""
    scale = _F32(_F32(_F32(sx) / _F32(sy)) * _F32(_F32(1.0) / _F32(count)))
    bias = _F32(_F32(zy) - _F32(_F32(_F32(count) * _F32(zx)) * scale))
    y = (total.astype(np.float32) * scale).astype(np.float32) + bias
    return fx.round_half_away(y) if rounding == RoundingMode.HALF_AWAY else np.rint(y).astype(np.int64)


# ---------------------------------------------------------------- BATCH_MATMUL
def batch_matmul(graph, op, values, sem):
    """int32 dot products of (lhs - zl)(rhs - zr) over broadcast batches, requantized by sl * sr / sy.

    TFLite's reference and optimized kernels: the gemmlowp requantizer (multiplier from double). XNNPACK
    drops the rhs zero point (it takes rhs as symmetric): acc = sum (lhs - zl) * rhs, then
    round_half_even(float32(acc) * float32(float32(sl * sr) / sy)) + zy. With a softmax lhs (rows summing to
    1 / sl codes) that shifts every output by about zr * sr / sy. LiteRT 2.3's XNNPACK delegate refuses an
    rhs with a nonzero zero point (``Semantics.asymmetric_rhs_bmm``): its optimized kernels run that node.
    """
    _tflite_only(sem, op)
    l_t, r_t, y_t = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]), output_tensor(graph, op)
    _eight_bit(op, l_t)
    if sem.tflite_kernels == "xnnpack" and not sem.asymmetric_rhs_bmm and _zero(r_t) != 0:
        sem = get_semantics(sem.fallback)
    xnnpack = sem.tflite_kernels == "xnnpack"
    lhs = input_value(graph, values, op.inputs[0]).astype(np.int64) - _zero(l_t)
    rhs = input_value(graph, values, op.inputs[1]).astype(np.int64) - (0 if xnnpack else _zero(r_t))
    if op.attrs.get("adj_x"):
        lhs = np.swapaxes(lhs, -1, -2)
    if op.attrs.get("adj_y"):
        rhs = np.swapaxes(rhs, -1, -2)
    acc = np.matmul(lhs, rhs)  # int64: exact (int32 in TFLite, which cannot overflow for int8 depths < 2**16)
    fmt = int_format(y_t)
    sl, sr, sy = _scale(l_t), _scale(r_t), _scale(y_t)
    if xnnpack:
        scale = _F32(_F32(_F32(sl) * _F32(sr)) / _F32(sy))
        y = np.rint((acc.astype(np.float32) * scale).astype(np.float32)).astype(np.int64)
    else:
        y = fx.multiply_by_quantized_multiplier(acc, *quantize_multiplier(tflite_multiplier(sl, sr, sy)))
    return np.clip(y + _zero(y_t), fmt.min, fmt.max).astype(y_t.dtype)


# ---------------------------------------------------------------- data movement and float helpers
def transpose(graph, op, values, sem):
    return np.ascontiguousarray(np.transpose(input_value(graph, values, op.inputs[0]), op.attrs["perm"]))


def expand_dims(graph, op, values, sem):
    return np.expand_dims(input_value(graph, values, op.inputs[0]), op.attrs["axis"])


def slice_(graph, op, values, sem):
    x = input_value(graph, values, op.inputs[0])
    index = tuple(
        slice(b, x.shape[i] if s == -1 else b + s)
        for i, (b, s) in enumerate(zip(op.attrs["begin"], op.attrs["size"]))
    )
    return np.ascontiguousarray(x[index])


def strided_slice(graph, op, values, sem):
    x = input_value(graph, values, op.inputs[0])
    a = op.attrs
    index, squeeze = [], []
    for i, dim in enumerate(x.shape):
        if i >= len(a["begin"]):
            index.append(slice(None))
            continue
        begin, end, stride = a["begin"][i], a["end"][i], a["strides"][i]
        if a["offset"]:
            end = begin + end
        if a["shrink_axis_mask"] >> i & 1:
            index.append(slice(begin % dim, begin % dim + 1))
            squeeze.append(i)
            continue
        index.append(
            slice(
                None if a["begin_mask"] >> i & 1 else begin, None if a["end_mask"] >> i & 1 else end, stride
            )
        )
    y = x[tuple(index)]
    return np.ascontiguousarray(y.squeeze(axis=tuple(squeeze)) if squeeze else y)


def gather(graph, op, values, sem):
    if op.attrs.get("batch_dims", 0):
        raise ConfigError(f"op {op.name!r} (gather): batch_dims {op.attrs['batch_dims']} is not supported")
    x = input_value(graph, values, op.inputs[0])
    idx = input_value(graph, values, op.inputs[1]).astype(np.int64)
    return np.ascontiguousarray(np.take(x, idx, axis=op.attrs["axis"]))


def neg(graph, op, values, sem):
    x = input_value(graph, values, op.inputs[0])
    if np.issubdtype(x.dtype, np.floating):
        return np.negative(x)
    y_t = output_tensor(graph, op)
    if y_t.quant is not None:
        raise ConfigError(f"op {op.name!r} (neg): quantized NEG is not modelled")
    return (-x.astype(np.int64)).astype(x.dtype)  # wraps like the C negation of the stored type
