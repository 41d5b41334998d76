"""Quantized layers as a runtime computes them: MAC accumulators, then that runtime's requantizer.

Each function takes integer codes and the quantization parameters of its tensors, and a semantics name
(see :mod:`hwsim.numerics.semantics`), and returns the output codes that runtime produces.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import numpy as np

from hwsim.errors import ConfigError
from hwsim.numerics import fused, geometry, ops
from hwsim.numerics.formats import INT8, IntFormat, RoundingMode
from hwsim.numerics.ops import Accumulator, kernel_module
from hwsim.numerics.reference import round_real
from hwsim.numerics.requant_kinds import (
    RequantKind,
    float32_multiplier,
    float32_reciprocal_multiplier,
    quantize_multiplier,
    tflite_multiplier,
)

from hwsim.numerics.semantics import Semantics, get_semantics

_FLOAT_MULTIPLIERS = {"float32": float32_multiplier, "float32-reciprocal": float32_reciprocal_multiplier}

ACTIVATIONS = {
    None: (None, None),
    "none": (None, None),
    "relu": (0.0, None),
    "relu6": (0.0, 6.0),
    "relu_n1_to_1": (-1.0, 1.0),
}


@dataclass(frozen=True)
class QParams:
    """Scale(s) and zero point of a tensor; ``scale`` may be per output channel (weights)."""

    scale: np.ndarray
    zero_point: np.ndarray

    @classmethod
    def of(cls, scale, zero_point=0) -> "QParams":
        """Build from scalars or arrays (float32 scales, int64 zero points)."""
        return cls(
            np.atleast_1d(np.asarray(scale, np.float32)), np.atleast_1d(np.asarray(zero_point, np.int64))
        )


def activation_range(activation, scale: float, zero_point: int, fmt: IntFormat) -> tuple[int, int]:
    """Output clamp [lo, hi] for a fused activation, as TFLite computes it.

    lo = max(qmin, zy + round_half_away(float32(a) / float32(scale))) and likewise hi; ``activation`` is a
    name (relu, relu6, relu_n1_to_1) or a (lo, hi) pair of reals (None for unbounded).
    """
    if isinstance(activation, tuple):
        low, high = activation
    elif activation in ACTIVATIONS:
        low, high = ACTIVATIONS[activation]
    else:
        raise ConfigError(
            f"activation: expected one of relu, relu6, relu_n1_to_1 or (lo, hi) (got {activation!r})"
        )

    def code(real: float) -> int:
        return zero_point + round_real(float(np.float32(real) / np.float32(scale)), RoundingMode.HALF_AWAY)

    lo = fmt.min if low is None else max(fmt.min, code(low))
    hi = fmt.max if high is None else min(fmt.max, code(high))
    return lo, hi


def requantize(
    acc: np.ndarray,
    *,
    input_scale: float,
    weight_scale,
    output: QParams,
    fmt: IntFormat,
    semantics: Semantics | str,
    op: str,
    activation=None,
    activation_bits: int | None = None,
) -> np.ndarray:
    """Output codes from int accumulators (last axis = output channel) under ``semantics`` for ``op``.

    Where the semantics has a ``channel_tail`` rule for ``op`` (8-bit activations), the output channels past
    the last whole block are requantized by the tail's requantizer.
    """
    acc = np.asarray(acc)
    stage = output_stage(
        acc.shape[-1],
        input_scale=input_scale,
        weight_scale=weight_scale,
        output=output,
        fmt=fmt,
        semantics=semantics,
        op=op,
        activation=activation,
        activation_bits=activation_bits,
    )
    return ops.requantize_stage(acc, stage)


def output_stage(
    channels: int,
    *,
    input_scale: float,
    weight_scale,
    output: QParams,
    fmt: IntFormat,
    semantics: Semantics | str,
    op: str,
    activation=None,
    activation_bits: int | None = None,
) -> ops.OutputStage:
    """The requantizer ``semantics`` applies to ``op``'s accumulators, for ``channels`` output channels.

    Built once per distinct set of scales (a model's layers reuse theirs on every inference) and shared: its
    arrays are read-only.
    """
    sem = get_semantics(semantics) if isinstance(semantics, str) else semantics
    bits = activation_bits or fmt.bits
    kind = tail_kind = sem.requantizer(op, bits)
    tail_start = channels
    if op in sem.channel_tail and bits <= 8:
        block, rule = sem.channel_tail[op]
        if channels % block:
            tail_start, tail_kind = channels - channels % block, rule
    sw = np.asarray(weight_scale, np.float32).ravel()
    if sw.size not in (1, channels):
        raise ConfigError(f"weight_scale: expected 1 or {channels} values (got {sw.size})")
    return _stage(
        channels,
        RequantKind(kind),
        RequantKind(tail_kind),
        tail_start,
        float(input_scale),
        sw.tobytes(),
        float(output.scale[0]),
        int(output.zero_point[0]),
        fmt,
        activation,
        sem.multiplier,
        sem.max_shift,
    )


_FLOAT_KINDS = (RequantKind.FLOAT32_SCALE, RequantKind.FLOAT64_PRODUCT)


@functools.lru_cache(maxsize=4096)
def _stage(
    channels: int,
    kind: RequantKind,
    tail_kind: RequantKind,
    tail_start: int,
    input_scale: float,
    weight_scales: bytes,
    sy: float,
    zy: int,
    fmt: IntFormat,
    activation,
    multiplier_rule: str,
    max_shift: int,
) -> ops.OutputStage:
    sw = np.broadcast_to(np.frombuffer(weight_scales, np.float32), (channels,))
    mult = np.zeros(channels, np.int64)
    shift = np.zeros(channels, np.int64)
    scale = np.zeros(channels, np.float32)
    if kind in _FLOAT_KINDS or tail_kind in _FLOAT_KINDS:
        # elementwise float32, as per scalar
        scale[:] = _FLOAT_MULTIPLIERS[multiplier_rule](input_scale, sw, sy)
    if kind not in _FLOAT_KINDS or tail_kind not in _FLOAT_KINDS:
        for c in range(channels):
            mult[c], shift[c] = _fixed_multiplier(input_scale, float(sw[c]), sy, max_shift)
    if RequantKind.INT16_MULTIPLIER in (kind, tail_kind) and shift.max(initial=0) > 14:
        raise ConfigError(
            "shift: the 16-bit multiplier path needs shift <= 14 (a real multiplier below 2**14)"
        )
    lo, hi = activation_range(activation, sy, zy, fmt)
    for a in (mult, shift, scale):
        a.flags.writeable = False
    return ops.OutputStage(
        mult, shift, scale, zy, lo, hi, int(kind), int(tail_kind), tail_start, np.dtype(fmt.storage_dtype)
    )


@functools.lru_cache(maxsize=65536)
def _fixed_multiplier(
    input_scale: float, weight_scale: float, output_scale: float, max_shift: int
) -> tuple[int, int]:
    """TFLite's (M, e) for one channel, cached: a model reuses the same scales on every inference."""
    return quantize_multiplier(tflite_multiplier(input_scale, weight_scale, output_scale), max_shift)


def _semantics_for(name: str, weight_bits: int, activation_bits: int, int4_fc: bool = False) -> Semantics:
    """The semantics that computes an op with these operand widths: a delegate's fallback takes int4
    weights and 16-bit activations (see ``Semantics.fallback``), except an int4-weight fully-connected the
    delegate runs itself (``int4_fc``: per-channel weights, even depth; see
    ``Semantics.int4_fully_connected``)."""
    sem = get_semantics(name)
    delegated_int4 = weight_bits <= 4 and int4_fc and sem.int4_fully_connected
    if sem.fallback and ((weight_bits <= 4 and not delegated_int4) or activation_bits > 8):
        return get_semantics(sem.fallback)
    return sem


def _arithmetic(x_dtype, w_dtype, sem: Semantics, depthwise_multiplier: int | None = None) -> str:
    """The dot-product arithmetic of this runtime for these operand types. ``depthwise_multiplier`` is the
    outputs per group of a depthwise conv (None for other layers): the runtime's own depthwise kernel, where
    it takes that conv (``Semantics.exact_depthwise``), keeps exact products."""
    if sem.u8s8 == "exact" or x_dtype != np.uint8 or w_dtype != np.int8:
        return "exact"
    if depthwise_multiplier == 1 and sem.exact_depthwise == "multiplier-1":
        return "exact"
    return sem.u8s8


def _depthwise_fast_path(
    sem: Semantics, x: np.ndarray, w: np.ndarray, groups: int, stride, padding, dilation
) -> bool:
    """Whether a grouped conv is the depthwise fast path of ``sem`` (see
    ``Semantics.depthwise_fast_u8s8``)."""
    if not sem.depthwise_fast_u8s8 or x.ndim != 4 or w.ndim != 4 or w.shape[3] != 1 or groups != x.shape[3]:
        return False
    if w.shape[0] not in (groups, 2 * groups):
        return False
    kernel = w.shape[1]
    if groups % 8 or w.shape[1:3] not in ((3, 3), (5, 5)) or geometry.pair(dilation, "dilation") != (1, 1):
        return False
    stride = geometry.pair(stride, "stride")
    pads = geometry.resolve_padding(padding, x.shape[1:3], w.shape[1:3], stride, (1, 1))
    return max(stride) <= 2 and pads == (kernel // 2,) * 4


@dataclass(frozen=True)
class LayerQuant:
    """How a MAC layer (conv, depthwise, fully-connected) is quantized and which runtime computes it: the
    scales and zero points of its input, weights and output, the output format and fused activation, the
    accumulator register, the weight width the runtime dispatches on (4-bit weights take a delegate's
    fallback, see ``Semantics.fallback``) and the bias type the op declares (``"int64"`` where a TFLite
    fully-connected's options say so; see ``Semantics.declared_bias_type``)."""

    x_q: QParams
    w_q: QParams
    y_q: QParams
    y_fmt: IntFormat = INT8
    activation: object = None  # a name of ACTIVATIONS, or a (lo, hi) pair of reals
    semantics: str = "tflite-reference"
    accumulator: Accumulator = Accumulator()
    weight_bits: int = 8
    bias_type: str | None = None

    def zero_points(self, channels: int) -> tuple[int, np.ndarray]:
        """The input zero point, and the weights' zero point per output channel."""
        return int(self.x_q.zero_point[0]), _zw(self.w_q, channels)


def _layer_setup(
    op: str,
    x_dtype,
    w: np.ndarray,
    channels: int,
    quant: LayerQuant,
    bias=None,
    depthwise_multiplier: int | None = None,
    fast_depthwise: bool = False,
) -> tuple[ops.OutputStage, str]:
    """A MAC layer's requantizer and dot-product arithmetic under its semantics for these operand types."""
    bits = np.dtype(x_dtype).itemsize * 8
    scales_ok = quant.w_q.scale.size > 1 or get_semantics(quant.semantics).int4_per_tensor_fc
    int4_fc = op == "fully_connected" and w.ndim == 2 and scales_ok and w.shape[1] % 2 == 0
    sem = _semantics_for(quant.semantics, quant.weight_bits, bits, int4_fc)
    declared_int64 = sem.declared_bias_type and quant.bias_type == "int64"  # LiteRT: the reference kernel
    no_bias = op == "fully_connected" and bias is None and not declared_int64
    if no_bias and bits > 8 and op in sem.no_bias_16x8:
        sem = dataclasses.replace(
            sem, requant_16x8=dict(sem.requant_16x8, fully_connected=sem.no_bias_16x8[op])
        )
    stage = output_stage(
        channels,
        input_scale=float(quant.x_q.scale[0]),
        weight_scale=quant.w_q.scale,
        output=quant.y_q,
        fmt=quant.y_fmt,
        semantics=sem,
        op=op,
        activation=quant.activation,
        activation_bits=bits,
    )
    if fast_depthwise and np.dtype(x_dtype) == np.uint8 and w.dtype == np.int8:
        return stage, sem.depthwise_fast_u8s8
    return stage, _arithmetic(np.dtype(x_dtype), w.dtype, sem, depthwise_multiplier)


def _depthwise_multiplier(w: np.ndarray, groups: int) -> int | None:
    """Outputs per group of a grouped conv with OHWI weights ``w`` that is depthwise (one input channel per
    group), else None."""
    return w.shape[0] // groups if groups > 1 and w.ndim == 4 and w.shape[3] == 1 else None


def _depthwise_as_grouped(w: np.ndarray) -> np.ndarray:
    """Depthwise weights [kh, kw, C*m] (or TFLite's [1, kh, kw, C*m]) as the OHWI weights of the same conv
    with C groups: output channel o reads input channel o // m in both."""
    w = w[0] if w.ndim == 4 and w.shape[0] == 1 else w
    return np.ascontiguousarray(np.moveaxis(w, 2, 0)[..., None])


def conv2d(
    x, w, bias, quant: LayerQuant, *, stride=1, padding="valid", dilation=1, groups: int = 1, float_bias=None
) -> np.ndarray:
    """Quantized conv2d (NHWC, OHWI weights) as ``quant.semantics`` computes it; returns output codes.

    ``float_bias`` (float32 per output channel, with ``bias=None``) is a bias the runtime keeps in float
    (``Semantics.float_bias``); modelled for ungrouped convs, which fbgemm runs through its GEMM."""
    x, w = np.asarray(x), np.asarray(w)
    sem = _semantics_for(quant.semantics, quant.weight_bits, x.dtype.itemsize * 8)
    stage, arithmetic = _layer_setup(
        "conv2d",
        x.dtype,
        w,
        w.shape[0],
        quant,
        depthwise_multiplier=_depthwise_multiplier(w, groups),
        fast_depthwise=_depthwise_fast_path(sem, x, w, groups, stride, padding, dilation),
    )
    zx, zw = quant.zero_points(w.shape[0])
    if float_bias is not None:
        _check_float_bias(sem, bias, groups)
        acc = ops.conv2d(
            x,
            w,
            stride=stride,
            padding=padding,
            dilation=dilation,
            x_zero_point=zx,
            w_zero_point=zw,
            accumulator=quant.accumulator,
            arithmetic=arithmetic,
        ).acc
        return _with_float_bias(acc, float_bias, quant.x_q, quant.w_q, stage)
    return _conv2d_codes(
        x,
        w,
        bias,
        stage,
        (zx, zw),
        quant.accumulator,
        arithmetic,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
    )


def depthwise_conv2d(
    x, w, bias, quant: LayerQuant, *, stride=1, padding="valid", dilation=1, depth_multiplier: int = 1
) -> np.ndarray:
    """Quantized depthwise conv2d (NHWC, weights [1, kh, kw, C*m]) as ``quant.semantics`` computes it.

    Where the runtime does not run it on exact products (a grouped GEMM or fbgemm's fast path with ``u8s8``
    pairs, see ``Semantics.exact_depthwise``), it runs as the conv2d with C groups that it is."""
    x, w = np.asarray(x), np.asarray(w)
    sem = _semantics_for(quant.semantics, quant.weight_bits, x.dtype.itemsize * 8)
    w3 = w[0] if w.ndim == 4 and w.shape[0] == 1 else w
    grouped = _depthwise_as_grouped(w3) if w3.ndim == 3 else None
    fast = (
        grouped is not None
        and x.ndim == 4
        and _depthwise_fast_path(sem, x, grouped, x.shape[3], stride, padding, dilation)
    )
    stage, arithmetic = _layer_setup(
        "depthwise_conv2d",
        x.dtype,
        w,
        w.shape[-1],
        quant,
        depthwise_multiplier=depth_multiplier,
        fast_depthwise=fast,
    )
    zx, zw = quant.zero_points(w.shape[-1])
    if arithmetic != "exact" and grouped is not None and x.ndim == 4:
        return _conv2d_codes(
            x,
            grouped,
            bias,
            stage,
            (zx, zw),
            quant.accumulator,
            arithmetic,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=x.shape[3],
        )
    x, w, _, zw, b = ops.depthwise_operands(x, w, stride, padding, dilation, depth_multiplier, zw, bias)
    layer = fused.FusedDepthwise.prepare(
        w,
        zw,
        b,
        zx,
        stage,
        ops.value_range(x),
        stride,
        padding,
        dilation,
        depth_multiplier,
        quant.accumulator,
    )
    if layer is not None:  # fused: the data's own range proves no partial sum can overflow
        return layer(x)
    acc = ops.depthwise_conv2d(
        x,
        w,
        stride=stride,
        padding=padding,
        dilation=dilation,
        depth_multiplier=depth_multiplier,
        x_zero_point=zx,
        w_zero_point=zw,
        bias=b,
        accumulator=quant.accumulator,
    ).acc
    return ops.requantize_stage(acc, stage)


def fully_connected(x, w, bias, quant: LayerQuant, *, float_bias=None) -> np.ndarray:
    """Quantized fully-connected: ``x`` [M, K], ``w`` [N, K] (TFLite layout); returns [M, N] codes.
    ``float_bias``: as in :func:`conv2d`."""
    x, w = np.asarray(x), np.asarray(w)
    stage, arithmetic = _layer_setup("fully_connected", x.dtype, w, w.shape[0], quant, bias)
    zx, zw = quant.zero_points(w.shape[0])
    packed = ops.prepack_cached(w.T, zw, owner=w)
    if float_bias is not None:
        _check_float_bias(_semantics_for(quant.semantics, quant.weight_bits, x.dtype.itemsize * 8), bias, 1)
        acc = ops.matmul(x, packed, x_zero_point=zx, accumulator=quant.accumulator, arithmetic=arithmetic).acc
        return _with_float_bias(acc, float_bias, quant.x_q, quant.w_q, stage)
    return _matmul_codes(
        x, packed, stage, x_zero_point=zx, bias=bias, accumulator=quant.accumulator, arithmetic=arithmetic
    )


def _matmul_codes(
    x,
    w,
    stage: ops.OutputStage,
    *,
    x_zero_point: int = 0,
    w_zero_point=0,
    bias=None,
    accumulator: Accumulator = Accumulator(),
    arithmetic: str = "exact",
) -> np.ndarray:
    """:func:`ops.matmul`, then ``stage``: output codes [M, N], fused when the data's range allows it."""
    x, packed, b = ops.gemm_operands(x, w, w_zero_point, bias, accumulator, arithmetic)
    gemm = None
    if arithmetic == "exact":
        gemm = fused.FusedGemm.prepare(packed, b, x_zero_point, stage, ops.value_range(x), accumulator)
    if gemm is None:
        acc = ops.matmul(
            x, packed, x_zero_point=x_zero_point, bias=b, accumulator=accumulator, arithmetic=arithmetic
        ).acc
        return ops.requantize_stage(acc, stage)
    return gemm.run_trusted(np.ascontiguousarray(x))


def _conv2d_codes(
    x,
    w,
    bias,
    stage: ops.OutputStage,
    zero_points: tuple[int, np.ndarray],
    accumulator: Accumulator,
    arithmetic: str,
    *,
    stride,
    padding,
    dilation,
    groups: int,
) -> np.ndarray:
    """:func:`ops.conv2d`, then ``stage``: output codes NHWC (one fused GEMM and requantizer when
    ungrouped and the data's range allows it). ``zero_points``: the input's and the weights' per channel."""
    x_zero_point, w_zero_point = zero_points
    if groups != 1:
        acc = ops.conv2d(
            x,
            w,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            x_zero_point=x_zero_point,
            w_zero_point=w_zero_point,
            bias=bias,
            accumulator=accumulator,
            arithmetic=arithmetic,
        ).acc
        return ops.requantize_stage(acc, stage)
    x, w, geo, zw, b = ops.conv_operands(x, w, stride, padding, dilation, groups, w_zero_point, bias)
    cols = ops.conv_columns(x, w.shape[3], geo, 0, 1, x_zero_point)
    y = _matmul_codes(
        cols,
        ops.conv_weights(w, zw, 0, 1),
        stage,
        x_zero_point=x_zero_point,
        bias=b,
        accumulator=accumulator,
        arithmetic=arithmetic,
    )
    return y.reshape(x.shape[0], *geo.out_hw, w.shape[0])


def prepare_layer(kind: str, x_dtype, w, bias, quant: LayerQuant, **geometry):
    """The layer ``kind`` (conv2d, depthwise_conv2d or fully_connected, with the keyword ``geometry`` of
    that function) prepared once for any input of ``x_dtype``: a fused layer of :mod:`hwsim.numerics.fused`
    whose output codes equal the function's, or None where it cannot be fused (the layer is grouped, its
    runtime pair-saturates products, or inputs of that dtype could overflow its accumulator)."""
    prepare = {
        "conv2d": _prepare_conv2d,
        "depthwise_conv2d": _prepare_depthwise,
        "fully_connected": _prepare_fully_connected,
    }.get(kind)
    if prepare is None:
        raise ConfigError(f"kind: expected conv2d, depthwise_conv2d or fully_connected (got {kind!r})")
    return prepare(x_dtype, np.asarray(w), bias, quant, **geometry)


def _prepare_conv2d(
    x_dtype, w: np.ndarray, bias, quant: LayerQuant, *, stride=1, padding="valid", dilation=1, groups: int = 1
) -> fused.FusedConv | None:
    if groups != 1 or w.ndim != 4:
        return None
    stage, arithmetic = _layer_setup("conv2d", x_dtype, w, w.shape[0], quant)
    zx, zw = quant.zero_points(w.shape[0])
    gemm = fused.FusedGemm.prepare(
        ops.conv_weights(w, zw, 0, 1),
        ops.per_column(0 if bias is None else bias, w.shape[0], "bias"),
        zx,
        stage,
        fused.dtype_range(x_dtype),
        quant.accumulator,
    )
    if gemm is None or arithmetic != "exact":
        return None
    return fused.FusedConv(gemm, w.shape[1:3], w.shape[3], stride, padding, dilation, zx)


def _prepare_depthwise(
    x_dtype,
    w: np.ndarray,
    bias,
    quant: LayerQuant,
    *,
    stride=1,
    padding="valid",
    dilation=1,
    depth_multiplier: int = 1,
) -> fused.FusedDepthwise | None:
    w = w[0] if w.ndim == 4 and w.shape[0] == 1 else w
    if w.ndim != 3:
        return None
    stage, arithmetic = _layer_setup(
        "depthwise_conv2d", x_dtype, w, w.shape[-1], quant, depthwise_multiplier=depth_multiplier
    )
    sem = _semantics_for(quant.semantics, quant.weight_bits, np.dtype(x_dtype).itemsize * 8)
    fast_u8s8 = sem.depthwise_fast_u8s8 and np.dtype(x_dtype) == np.uint8 and w.dtype == np.int8
    if arithmetic != "exact" or fast_u8s8:
        # pair-saturated products (a grouped GEMM, or fbgemm's fast path): the checked path runs them
        return None
    zx, zw = quant.zero_points(w.shape[-1])
    b = ops.per_column(0 if bias is None else bias, w.shape[-1], "bias")
    return fused.FusedDepthwise.prepare(
        np.ascontiguousarray(w),
        zw,
        b,
        zx,
        stage,
        fused.dtype_range(x_dtype),
        stride,
        padding,
        dilation,
        depth_multiplier,
        quant.accumulator,
    )


def _prepare_fully_connected(x_dtype, w: np.ndarray, bias, quant: LayerQuant) -> fused.FusedGemm | None:
    if w.ndim != 2:
        return None
    stage, arithmetic = _layer_setup("fully_connected", x_dtype, w, w.shape[0], quant, bias)
    zx, zw = quant.zero_points(w.shape[0])
    gemm = fused.FusedGemm.prepare(
        ops.prepack_cached(w.T, zw, owner=w),
        ops.per_column(0 if bias is None else bias, w.shape[0], "bias"),
        zx,
        stage,
        fused.dtype_range(x_dtype),
        quant.accumulator,
    )
    return gemm if arithmetic == "exact" else None


def _check_float_bias(sem: Semantics, bias, groups: int) -> None:
    """A float bias is taken only where the runtime has one, in place of int32 codes, on a GEMM."""
    if not sem.float_bias:
        raise ConfigError(
            f"float_bias: semantics {sem.name!r} adds int32 bias codes only (pytorch-fbgemm-* "
            "keep the bias in float)"
        )
    if bias is not None:
        raise ConfigError("float_bias: give either int32 bias codes or a float bias, not both")
    if groups != 1:
        raise ConfigError(
            f"float_bias: modelled for ungrouped convs only (got groups={groups}); fbgemm's "
            "grouped and depthwise kernels have output stages of their own"
        )


def _with_float_bias(
    acc: np.ndarray, float_bias, x_q: QParams, w_q: QParams, stage: ops.OutputStage
) -> np.ndarray:
    """Output codes from bias-free accumulators and a float bias (:mod:`hwsim.numerics.float_bias`)."""
    from hwsim.numerics.float_bias import requantize_float_bias

    return requantize_float_bias(
        acc,
        float_bias,
        float(x_q.scale[0]),
        w_q.scale,
        stage.scale,
        stage.zero_point,
        stage.lo,
        stage.hi,
        stage.dtype,
    )


def add(
    x1,
    x2,
    *,
    x1_q: QParams,
    x2_q: QParams,
    y_q: QParams,
    y_fmt: IntFormat = INT8,
    activation=None,
    semantics: str = "tflite-reference",
) -> np.ndarray:
    """Quantized elementwise add (same shapes) as ``semantics`` computes it.

    TFLite's shifted fixed-point form: inputs are shifted left by 20 bits (15 for int16), rescaled to twice
    the larger input scale, summed and rescaled to the output: y = R_o(R_1((x1 - z1) << 20) + R_2((x2 - z2)
    << 20)) + zo; its optimized kernels fold the input shift into one rounding on whole blocks of 16
    elements. XNNPACK: ``reference.add_xnnpack``. ONNX Runtime's float form: ``mlas.qlinear_add``.
    """
    x1, x2 = np.asarray(x1), np.asarray(x2)
    prepared = prepare_add(
        x1.dtype, x1_q=x1_q, x2_q=x2_q, y_q=y_q, y_fmt=y_fmt, activation=activation, semantics=semantics
    )
    return prepared(x1, x2)


def prepare_add(
    x_dtype,
    *,
    x1_q: QParams,
    x2_q: QParams,
    y_q: QParams,
    y_fmt: IntFormat = INT8,
    activation=None,
    semantics: str = "tflite-reference",
) -> "PreparedAdd":
    """``add`` for inputs of ``x_dtype`` with its multipliers and clamp computed once, as a runtime prepares
    an ADD once per model (they cost more than adding a small tensor)."""
    eight_bit = np.dtype(x_dtype).itemsize == 1
    sem = _semantics_for(semantics, 8, np.dtype(x_dtype).itemsize * 8)
    quant = (x1_q, x2_q, y_q, y_fmt, activation)
    if sem.add_form == "float":
        return PreparedAdd("float", quant, (), (), (), y_fmt.storage_dtype)
    zo = int(y_q.zero_point[0])
    clamp = activation_range(activation, float(np.float32(y_q.scale[0])), zo, y_fmt)
    zero_points = (int(x1_q.zero_point[0]), int(x2_q.zero_point[0]), zo)
    if sem.add_form == "xnnpack" and eight_bit:
        multipliers = xnnpack_add_multipliers(x1_q.scale[0], x2_q.scale[0], y_q.scale[0])
        return PreparedAdd("xnnpack", quant, zero_points, clamp, multipliers, y_fmt.storage_dtype)
    left = 20 if eight_bit else 15
    m1, e1, m2, e2, mo, eo = shifted_add_multipliers(
        *(float(np.float32(q.scale[0])) for q in (x1_q, x2_q, y_q)), left
    )
    multipliers = (left, m1, e1, m2, e2, mo, eo, int(sem.requantizer("add", y_fmt.bits)))
    form = "blocked16" if sem.add_form == "tflite-shifted-blocked16" else "shifted"
    return PreparedAdd(form, quant, zero_points, clamp, multipliers, y_fmt.storage_dtype)


@dataclass(frozen=True)
class PreparedAdd:
    """One ADD's arithmetic, set up by :func:`prepare_add`: call it on the two inputs' codes (same shapes)."""

    form: str  # "float" (ONNX Runtime), "xnnpack", "shifted" (TFLite) or "blocked16" (TFLite optimized)
    quant: tuple  # (x1_q, x2_q, y_q, y_fmt, activation): what the float form computes from
    zero_points: tuple  # (z1, z2, zo)
    clamp: tuple  # (lo, hi)
    multipliers: tuple  # xnnpack: (m1, m2, shift); shifted: (left, m1, e1, m2, e2, mo, eo, requantizer kind)
    storage_dtype: np.dtype

    def __call__(self, x1, x2) -> np.ndarray:
        x1, x2 = np.asarray(x1), np.asarray(x2)
        if x1.shape != x2.shape:
            raise ConfigError(
                f"x2: expected the shape of x1 {x1.shape} (got {x2.shape}); broadcast before adding"
            )
        if self.form == "float":
            return _add_float(x1, x2, *self.quant)
        (z1, z2, zo), (lo, hi) = self.zero_points, self.clamp
        flat1, flat2 = np.ascontiguousarray(x1).ravel(), np.ascontiguousarray(x2).ravel()
        if self.form == "xnnpack":
            out = np.empty(x1.size, self.storage_dtype)
            kernel_module().add_xnnpack(flat1, flat2, z1, z2, *self.multipliers, zo, lo, hi, out)
            return out.reshape(x1.shape)
        left, m1, e1, m2, e2, mo, eo, kind = self.multipliers
        blocked = flat1.size - flat1.size % 16 if self.form == "blocked16" else 0
        add, output = kernel_module().add_shifted, (mo, eo, zo, lo, hi, kind)
        head = add(flat1[:blocked], flat2[:blocked], z1, z2, left + e1, m1, 0, left + e2, m2, 0, *output)
        tail = add(flat1[blocked:], flat2[blocked:], z1, z2, left, m1, e1, left, m2, e2, *output)
        return np.concatenate([head, tail]).reshape(x1.shape).astype(self.storage_dtype)


def shifted_add_multipliers(
    s1: float, s2: float, so: float, left: int
) -> tuple[int, int, int, int, int, int]:
    """TFLite's (M, e) for the two inputs and the output of its shifted ADD and SUB: each input is rescaled to
    twice the larger input scale, the result from that, over 2**left, to the output scale."""
    twice_max = 2.0 * max(s1, s2)
    return (
        *quantize_multiplier(s1 / twice_max),
        *quantize_multiplier(s2 / twice_max),
        *quantize_multiplier(twice_max / ((1 << left) * so)),
    )


def xnnpack_add_multipliers(s1, s2, so) -> tuple[int, int, int]:
    """XNNPACK's qs8 add parameters: 21-bit multipliers of float32(s_i / so) and the shared right shift."""
    a, b = np.float32(np.float32(s1) / np.float32(so)), np.float32(np.float32(s2) / np.float32(so))
    shift = 20 - (int(np.frexp(max(a, b))[1]) - 1)
    return (int(np.rint(np.float32(np.ldexp(a, shift)))), int(np.rint(np.float32(np.ldexp(b, shift)))), shift)


def _add_float(
    x1, x2, x1_q: QParams, x2_q: QParams, y_q: QParams, y_fmt: IntFormat, activation
) -> np.ndarray:
    """ONNX Runtime's QLinearAdd, with the fused multiply-adds of its x86 kernel (``mlas.qlinear_add``)."""
    from hwsim.numerics.mlas import qlinear_add

    zo = int(y_q.zero_point[0])
    lo, hi = activation_range(activation, float(np.float32(y_q.scale[0])), zo, y_fmt)
    y = qlinear_add(
        x1,
        x2,
        int(x1_q.zero_point[0]),
        int(x2_q.zero_point[0]),
        zo,
        float(x1_q.scale[0]),
        float(x2_q.scale[0]),
        float(y_q.scale[0]),
        lo,
        hi,
    )
    return y.reshape(x1.shape).astype(y_fmt.storage_dtype)


def _zw(w_q: QParams, channels: int) -> np.ndarray:
    zp = w_q.zero_point
    if zp.size not in (1, channels):
        raise ConfigError(f"weight zero point: expected 1 or {channels} values (got {zp.size})")
    return np.full(channels, int(zp[0]), np.int64) if zp.size == 1 else zp
