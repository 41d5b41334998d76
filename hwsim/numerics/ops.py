"""Public integer operations: validate, expand parameters, allocate, then call a kernel.

The split follows stumpy: these wrappers check every argument and raise errors that name it; the numba
kernels in :mod:`hwsim.numerics.kernels` trust what they get. Set ``HWSIM_REFERENCE=1`` to route every call
to the plain reference in :mod:`hwsim.numerics.reference` instead (slow, for cross-checking user data).

The layer functions (:func:`matmul`, :func:`conv2d`, :func:`depthwise_conv2d`, ...) are built from public
steps that the fused layers of :mod:`hwsim.numerics.fused` share: checked operands (:func:`gemm_operands`,
:func:`conv_operands`, :func:`depthwise_operands`), the im2col view (:func:`conv_columns`,
:func:`conv_weights`), the largest partial sum (:func:`gemm_bound`, :func:`depthwise_bound`) and whether it
makes the order of the additions irrelevant (:func:`order_free`), the exact raw products
(:func:`raw_products`) and the zero-point terms (:func:`zero_point_correction`).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import threading
import weakref
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import numba
import numpy as np

from hwsim.errors import ConfigError
from hwsim.numerics import (
    kernels,
    kernels_fused,
    kernels_ordered,
    kernels_simd,
    reference,
    reference_fused,
    simd,
)
from hwsim.numerics.accumulator import Accumulator, MacResult
from hwsim.numerics.geometry import ConvGeometry, conv_geometry, pair
from hwsim.numerics.kernel_records import StageArgs, read_only
from hwsim.numerics.formats import IntFormat, OverflowMode, RoundingMode, parse_enum

FLOAT32_EXACT = 1 << 24  # every integer of magnitude <= 2**24 is exact in float32
BLAS_MIN_ROWS = 32  # below, streaming int8 weights beats BLAS on their float32 copy (hwsim bench kernels)
_ACC_BYTES = 1 << 16  # int32 accumulators per block of the int32 kernel


def kernel_module():
    """:mod:`~hwsim.numerics.kernels`, or its plain twin :mod:`~hwsim.numerics.reference` when
    ``HWSIM_REFERENCE=1``."""
    return reference if os.environ.get("HWSIM_REFERENCE") == "1" else kernels


def _ordered_impl():
    """The ordered (narrow-register) kernels: all outputs as vector lanes, or the scalar reference."""
    return reference if os.environ.get("HWSIM_REFERENCE") == "1" else kernels_ordered


def _stage_impl():
    return reference_fused if os.environ.get("HWSIM_REFERENCE") == "1" else kernels_fused


def _as_format(fmt: IntFormat | str) -> IntFormat:
    return fmt if isinstance(fmt, IntFormat) else IntFormat.parse(fmt)


def _require_int(name: str, a: np.ndarray) -> None:
    if not np.issubdtype(a.dtype, np.integer):
        raise ConfigError(f"{name}: expected an integer array (got dtype {a.dtype})")


# ---------------------------------------------------------------- quantization parameters
def expand_params(
    shape: Sequence[int], values, axis: int | None, group_size: int | None, group_axis: int | None, name: str
) -> np.ndarray:
    """Broadcast per-tensor, per-channel or per-group parameters to a tensor's full ``shape``.

    Per-tensor: a scalar. Per-channel: a 1-D array of ``shape[axis]`` values. Per-group: an array of shape
    (shape[axis], ceil(shape[group_axis] / group_size)) (or 1-D of the group count when ``axis`` is None);
    each value covers ``group_size`` consecutive elements along ``group_axis`` (the reduction axis).
    """
    arr = np.asarray(values)
    ndim = len(shape)
    if arr.size == 1:  # one value serves any granularity (a symmetric zero point, say)
        return np.broadcast_to(arr.reshape(()), shape)
    if group_size is None:
        if axis is None:
            raise ConfigError(
                f"{name}: per-tensor needs one value (got {arr.size}); pass axis= for per-channel"
            )
        axis = _check_axis(axis, ndim, "axis")
        if arr.shape != (shape[axis],):
            raise ConfigError(
                f"{name}: per-channel along axis {axis} needs shape ({shape[axis]},) (got {arr.shape})"
            )
        view = [1] * ndim
        view[axis] = shape[axis]
        return np.broadcast_to(arr.reshape(view), shape)
    if group_size < 1:
        raise ConfigError(f"group_size: expected a positive integer (got {group_size})")
    if group_axis is None:
        raise ConfigError("group_axis: per-group parameters need the axis the groups run along")
    group_axis = _check_axis(group_axis, ndim, "group_axis")
    groups = -(-shape[group_axis] // group_size)
    expected = (groups,) if axis is None else (shape[_check_axis(axis, ndim, "axis")], groups)
    if arr.shape != expected:
        raise ConfigError(f"{name}: per-group (size {group_size}) needs shape {expected} (got {arr.shape})")
    per_element = np.repeat(arr, group_size, axis=arr.ndim - 1)
    per_element = np.take(per_element, np.arange(shape[group_axis]), axis=arr.ndim - 1)
    view = [1] * ndim
    if axis is None:
        view[group_axis] = shape[group_axis]
        return np.broadcast_to(per_element.reshape(view), shape)
    axis = _check_axis(axis, ndim, "axis")
    if axis == group_axis:
        raise ConfigError("group_axis: must differ from the channel axis")
    order = sorted([axis, group_axis])
    if order[0] != axis:
        per_element = per_element.T
    view[axis], view[group_axis] = shape[axis], shape[group_axis]
    return np.broadcast_to(per_element.reshape(view), shape)


def _check_axis(axis: int, ndim: int, name: str) -> int:
    if not -ndim <= axis < ndim:
        raise ConfigError(f"{name}: {axis} is out of range for a {ndim}-D tensor")
    return axis % ndim


def qparams_from_range(
    lo, hi, fmt: IntFormat | str = "int8", *, symmetric: bool = False, power_of_two: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Scale and zero point mapping the real range [lo, hi] (extended to include 0) onto ``fmt``.

    Symmetric: zero point 0 (the middle code for unsigned) and scale max(|lo|, |hi|) / max positive code.
    Asymmetric: scale (hi - lo) / (qmax - qmin), zero point round_half_even(qmin - lo / scale), clamped.
    ``power_of_two`` rounds each scale up to the next power of two (shift-only requantization).
    """
    fmt = _as_format(fmt)
    lo = np.minimum(np.asarray(lo, np.float64), 0.0)
    hi = np.maximum(np.asarray(hi, np.float64), 0.0)
    if symmetric:
        half = (fmt.max - fmt.min) / 2.0 if not fmt.signed else float(fmt.max)
        scale = np.maximum(np.abs(lo), np.abs(hi)) / half
        zero = np.full(scale.shape, 0 if fmt.signed else (fmt.max + 1) // 2, np.int64)
    else:
        scale = (hi - lo) / float(fmt.max - fmt.min)
        zero = None
    scale = np.where(scale > 0, scale, 1.0)
    if power_of_two:
        scale = np.exp2(np.ceil(np.log2(scale)))
    scale = scale.astype(np.float32)
    if zero is None:
        zero = np.clip(np.rint(fmt.min - lo / scale.astype(np.float64)), fmt.min, fmt.max).astype(np.int64)
    return scale, zero


# ---------------------------------------------------------------- quantize / dequantize
def quantize(
    x,
    scale,
    zero_point=0,
    fmt: IntFormat | str = "int8",
    *,
    axis: int | None = None,
    group_size: int | None = None,
    group_axis: int | None = None,
    rounding: RoundingMode | str = RoundingMode.HALF_EVEN,
    overflow: OverflowMode | str = OverflowMode.SATURATE,
    seed: int | None = None,
    method: str = "divide",
) -> np.ndarray:
    """q = fit(round(x / scale) + zero_point) into ``fmt``, stored in its smallest numpy dtype.

    The division happens in the dtype of ``x`` (float32 as in ONNX QuantizeLinear and TFLite). STOCHASTIC
    rounding needs ``seed``: the same seed gives the same codes, with or without the JIT.
    ``method="reciprocal-fma"`` is PyTorch's (fbgemm's) rule instead: q = fit(round(float32(x * float32(1 /
    scale) + zero_point))), the multiply-add fused into one rounding, so the zero point is added before
    rounding (ties with an odd zero point go the other way) and x is scaled by a float32 reciprocal.

    >>> quantize(np.array([-1.5, -0.5, 0.5, 1.5, 300.0], np.float32), 1.0)
    array([ -2,   0,   0,   2, 127], dtype=int8)
    >>> quantize(np.array([-0.5, 0.5, 2.5], np.float32), 1.0, rounding="half_away")
    array([-1,  1,  3], dtype=int8)
    >>> quantize(np.array([130.0], np.float32), 1.0, overflow="wrap")
    array([-126], dtype=int8)
    """
    fmt = _as_format(fmt)
    rounding = parse_enum(RoundingMode, rounding, "rounding")
    overflow = parse_enum(OverflowMode, overflow, "overflow")
    if overflow == OverflowMode.EXACT:
        raise ConfigError("overflow: a stored code must fit its format; use saturate or wrap")
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        raise ConfigError(f"x: expected a float array (got dtype {x.dtype})")
    if np.isnan(x).any():
        raise ConfigError(f"x: contains NaN at index {np.argwhere(np.isnan(x))[0].tolist()}")
    s = expand_params(x.shape, scale, axis, group_size, group_axis, "scale").astype(x.dtype)
    if not (s > 0).all():
        raise ConfigError("scale: every scale must be > 0")
    z = expand_params(x.shape, zero_point, axis, group_size, group_axis, "zero_point").astype(np.int64)
    if method == "reciprocal-fma":  # the kernel then only rounds and fits: scale 1, zero point 0
        from hwsim.numerics.mlas import fma_f32

        x = fma_f32(x, np.float32(1) / s.astype(np.float32), z.astype(np.float32))
        s, z = np.ones_like(s), np.zeros_like(z)
    elif method != "divide":
        raise ConfigError(f"method: expected 'divide' or 'reciprocal-fma' (got {method!r})")
    if rounding == RoundingMode.STOCHASTIC:
        if seed is None:
            raise ConfigError("seed: stochastic rounding needs a seed, so that results are reproducible")
        noise = np.random.default_rng(seed).random(x.size)
    else:
        noise = np.empty(0)
    q = kernel_module().quantize(
        np.ascontiguousarray(x).ravel(),
        np.ascontiguousarray(s).ravel(),
        np.ascontiguousarray(z).ravel(),
        fmt.min,
        fmt.max,
        int(rounding),
        int(overflow),
        noise,
    )
    return q.reshape(x.shape).astype(fmt.storage_dtype)


def dequantize(
    q,
    scale,
    zero_point=0,
    *,
    axis: int | None = None,
    group_size: int | None = None,
    group_axis: int | None = None,
) -> np.ndarray:
    """x = float32(q - zero_point) * scale (float32), the ONNX DequantizeLinear formula.

    >>> dequantize(np.array([-128, 0, 127], np.int8), 0.5, 1)
    array([-64.5,  -0.5,  63. ], dtype=float32)
    """
    q = np.asarray(q)
    _require_int("q", q)
    s = expand_params(q.shape, scale, axis, group_size, group_axis, "scale").astype(np.float32)
    z = expand_params(q.shape, zero_point, axis, group_size, group_axis, "zero_point").astype(np.int64)
    out = kernel_module().dequantize(
        np.ascontiguousarray(q).ravel(), np.ascontiguousarray(s).ravel(), np.ascontiguousarray(z).ravel()
    )
    return out.reshape(q.shape)


def fake_quantize(x, scale, zero_point=0, fmt: IntFormat | str = "int8", **options) -> np.ndarray:
    """dequantize(quantize(x)): the float a quantized tensor stands for (QAT's forward pass)."""
    q = quantize(x, scale, zero_point, fmt, **options)
    keep = {k: options[k] for k in ("axis", "group_size", "group_axis") if k in options}
    return dequantize(q, scale, zero_point, **keep)


def requantize(
    acc,
    multiplier,
    shift,
    zero_point: int,
    fmt: IntFormat | str,
    kind,
    scale=None,
    clamp: tuple[int, int] | None = None,
) -> np.ndarray:
    """Per-channel (last axis) fixed-point or float requantization of accumulators, then clamp to ``fmt``.

    ``multiplier``/``shift`` encode m = M * 2**(shift - 31) (see ``quantize_multiplier``); ``scale`` is the
    float32 multiplier for the float kinds. ``clamp`` narrows the output range inside ``fmt`` (a fused
    activation's). For the op-level version with scales, see :func:`hwsim.numerics.quantized.requantize`.
    """
    from hwsim.numerics.requant_kinds import RequantKind

    fmt = _as_format(fmt)
    kind = parse_enum(RequantKind, kind, "kind")
    acc = np.asarray(acc)
    _require_int("acc", acc)
    mult = np.atleast_1d(np.asarray(multiplier, np.int64))
    shifts = np.broadcast_to(np.atleast_1d(np.asarray(shift, np.int64)), mult.shape)
    scales = np.broadcast_to(
        np.atleast_1d(np.asarray(0.0 if scale is None else scale, np.float32)), mult.shape
    )
    if acc.size and acc.shape[-1] % mult.size:
        raise ConfigError(f"multiplier: {mult.size} channels do not match the last axis of acc {acc.shape}")
    if kind == RequantKind.INT16_MULTIPLIER and shifts.max(initial=0) > 14:
        raise ConfigError(
            "shift: the 16-bit multiplier path needs shift <= 14 (a real multiplier below 2**14)"
        )
    lo, hi = (fmt.min, fmt.max) if clamp is None else (max(fmt.min, clamp[0]), min(fmt.max, clamp[1]))
    stage = OutputStage(
        np.ascontiguousarray(mult),
        np.ascontiguousarray(shifts),
        np.ascontiguousarray(scales),
        int(zero_point),
        lo,
        hi,
        int(kind),
        int(kind),
        mult.size,
        np.dtype(fmt.storage_dtype),
    )
    return requantize_stage(np.asarray(acc, np.int64).reshape(-1, mult.size), stage).reshape(acc.shape)


# ---------------------------------------------------------------- int4 packing
def pack_int4(values) -> np.ndarray:
    """Pack 4-bit codes two per byte: element 2i in the low nibble, 2i+1 in the high nibble.

    This is the order of ONNX INT4/UINT4 tensors and TFLite int4 buffers. An odd count pads a zero nibble.

    >>> pack_int4(np.array([1, -2, 7], np.int8))
    array([225,   7], dtype=uint8)
    """
    v = np.asarray(values)
    _require_int("values", v)
    if v.size and (v.min() < -8 or v.max() > 15):
        raise ConfigError(f"values: 4-bit codes must lie in [-8, 7] or [0, 15] (got {v.min()}..{v.max()})")
    return kernel_module().pack_int4(np.ascontiguousarray(v).ravel())


def unpack_int4(packed, count: int, signed: bool = True) -> np.ndarray:
    """Unpack ``count`` 4-bit codes (low nibble first) to int8 (signed) or uint8.

    >>> unpack_int4(np.array([225, 7], np.uint8), 3)
    array([ 1, -2,  7], dtype=int8)
    """
    p = np.asarray(packed)
    if p.dtype != np.uint8:
        raise ConfigError(f"packed: expected uint8 bytes (got dtype {p.dtype})")
    if not 0 <= count <= 2 * p.size:
        raise ConfigError(f"count: {count} codes do not fit in {p.size} bytes")
    out = kernel_module().unpack_int4(np.ascontiguousarray(p).ravel(), int(count), bool(signed))
    return out.astype(np.int8 if signed else np.uint8)


# ---------------------------------------------------------------- accumulation
@dataclass(frozen=True)
class OutputStage:
    """A layer's requantizer, applied to each accumulator row: y[c] = clamp(R(acc[c]) + zero_point, lo, hi).

    ``multiplier``/``shift`` (fixed-point kinds, m = M 2**(shift - 31)) and ``scale`` (float kinds) hold one
    value per output channel. Channels from ``tail_start`` on use ``tail_kind``, for runtimes whose kernels
    requantize the last channels past a whole block differently. ``dtype`` is the output's storage type.
    """

    multiplier: np.ndarray
    shift: np.ndarray
    scale: np.ndarray
    zero_point: int
    lo: int
    hi: int
    kind: int
    tail_kind: int
    tail_start: int
    dtype: np.dtype

    def check(self, channels: int) -> "OutputStage":
        """This stage, after checking it serves ``channels`` output channels (the kernels trust it)."""
        if self.multiplier.size != channels or not 0 <= self.tail_start <= channels:
            raise ConfigError(
                f"stage: built for {self.multiplier.size} channels (tail from "
                f"{self.tail_start}), "
                f"used for {channels}"
            )
        return self

    def kernel_args(self) -> "StageArgs":
        """The stage as the fused kernels take it: one record (after the accumulator operands, before
        ``out``)."""
        return StageArgs(
            read_only(self.multiplier),
            read_only(self.shift),
            read_only(self.scale),
            self.zero_point,
            self.lo,
            self.hi,
            self.kind,
            self.tail_start,
            self.tail_kind,
        )


def requantize_stage(acc, stage: OutputStage) -> np.ndarray:
    """Apply ``stage`` to integer accumulators whose last axis is the output channel."""
    acc = np.asarray(acc)
    _require_int("acc", acc)
    channels = stage.multiplier.size
    if acc.shape[-1:] != (channels,):
        raise ConfigError(
            f"acc: expected {channels} output channels on its last axis (got shape {acc.shape})"
        )
    stage.check(channels)
    rows = np.ascontiguousarray(acc).reshape(-1, channels)
    out = np.empty(rows.shape, stage.dtype)
    zeros = read_only(np.zeros(channels, np.int64))  # a correction and a weight zero point, as a layer's
    _stage_impl().requantize_gemm(rows, zeros, zeros, np.zeros(0, np.int64), stage.kernel_args(), out)
    return out.reshape(acc.shape)


ARITHMETICS = ("exact", "avx2-pairwise16")

_OVERFLOWS: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar("hwsim_overflows", default=None)


@contextlib.contextmanager
def counting_overflows() -> Iterator[list[int]]:
    """Sum the accumulator excursions of every GEMM, conv and depthwise call made inside the block.

    Layer functions return output codes, so a whole-graph run would lose each ``MacResult.overflows``; this
    context (local to the thread or task) collects them. Yields a one-element list holding the running total.
    """
    total = [0]
    token = _OVERFLOWS.set(total)
    try:
        yield total
    finally:
        _OVERFLOWS.reset(token)


_OVERFLOWS_LOCK = threading.Lock()  # a batch's threads share their caller's running total


def _note_overflows(count: int) -> None:
    total = _OVERFLOWS.get()
    if total is not None:
        with _OVERFLOWS_LOCK:
            total[0] += count


@dataclass(frozen=True)
class PackedWeights:
    """A weight matrix [K, N] prepared once for repeated products, as runtimes prepack constant weights."""

    w: np.ndarray
    w_zero_point: np.ndarray
    transposed: np.ndarray  # [N, K] contiguous, for the small-M kernel
    as_float: np.ndarray | None  # float32 [K, N] for the BLAS path (None where it would not be exact)
    col_sum: np.ndarray  # sum_k w[k, n]
    max_abs: int  # max |w|
    max_abs_centered: int  # max |w - w_zero_point|
    zw_nonzero: bool  # some column has a weight zero point: then sum_k x[m, k] enters its accumulators
    panels: dict = field(default_factory=dict, compare=False, repr=False)  # layouts made on demand, by key

    def simd_blocks(self, isa: str) -> np.ndarray:
        """The weights packed for the SIMD kernel on ``isa`` (``simd.pack``), made once."""
        if isa not in self.panels:
            self.panels[isa] = read_only(simd.pack(self.w, isa))
        return self.panels[isa]

    def float_panels(self, width: int) -> np.ndarray:
        """The float32 weights as column panels [P, K, width] (the last zero-padded), made once per width."""
        if width not in self.panels:
            depth, cols = self.w.shape
            count = -(-cols // width)
            padded = np.zeros((depth, count * width), np.float32)
            padded[:, :cols] = self.as_float
            self.panels[width] = np.ascontiguousarray(padded.reshape(depth, count, width).transpose(1, 0, 2))
        return self.panels[width]


def prepack(w, w_zero_point=0) -> PackedWeights:
    """Prepare integer weights [K, N] for :func:`matmul` (column sums, contiguous and float copies)."""
    w = np.asarray(w)
    _require_int("w", w)
    if w.ndim != 2:
        raise ConfigError(f"w: expected a 2-D [K, N] matrix (got shape {w.shape})")
    zw = read_only(per_column(w_zero_point, w.shape[1], "w_zero_point"))
    lo, hi = (int(w.min()), int(w.max())) if w.size else (0, 0)
    max_abs = max(abs(lo), abs(hi))
    max_centered = int(np.maximum(np.abs(hi - zw), np.abs(lo - zw)).max()) if w.size else 0
    w = np.ascontiguousarray(w)
    as_float = w.astype(np.float32) if max_abs <= 1 << 15 else None
    return PackedWeights(
        w,
        zw,
        np.ascontiguousarray(w.T),
        as_float,
        w.sum(axis=0, dtype=np.int64),
        max_abs,
        max_centered,
        bool(zw.any()),
    )


_PACKED: dict[tuple[int, bytes], tuple[weakref.ref, PackedWeights]] = {}


def prepack_cached(w, w_zero_point=0, owner: np.ndarray | None = None, part: int = 0) -> PackedWeights:
    """:func:`prepack`, remembered for as long as a read-only weight array lives (a model's weights are reused
    on every inference, as a runtime prepacks its constant weights once; graph tensors are frozen). Writable
    arrays are packed afresh, since they could change between calls. ``owner`` and ``part`` name the array
    that ``w`` is a view of (a conv's weights, one group), since a view is a new object on every call."""
    owner = w if owner is None else owner
    if not isinstance(owner, np.ndarray) or owner.flags.writeable:  # only frozen arrays cannot go stale
        return prepack(w, w_zero_point)
    zw = np.asarray(w_zero_point, np.int64)
    key = (id(owner), part, np.shape(w), owner.dtype.str, zw.tobytes())
    hit = _PACKED.get(key)
    if hit is not None and hit[0]() is owner:
        return hit[1]
    packed = prepack(w, w_zero_point)
    _PACKED[key] = (weakref.ref(owner, lambda _, key=key, cache=_PACKED: cache.pop(key, None)), packed)
    return packed


def per_column(values, n: int, name: str) -> np.ndarray:
    """``values`` (a scalar or ``n`` of them, argument ``name``) as ``n`` int64s, one per output column."""
    arr = np.asarray(values, np.int64)
    if arr.ndim == 0:
        return np.full(n, int(arr), np.int64)
    if arr.shape != (n,):
        raise ConfigError(f"{name}: expected a scalar or {n} values (got shape {arr.shape})")
    return np.ascontiguousarray(arr)


def matmul(
    x,
    w,
    *,
    x_zero_point: int = 0,
    w_zero_point=0,
    bias=None,
    accumulator: Accumulator = Accumulator(),
    arithmetic: str = "exact",
) -> MacResult:
    """Integer GEMM accumulators: acc[m, n] = bias[n] + sum_k (x[m, k] - zx)(w[k, n] - zw[n]).

    ``x`` [M, K] and ``w`` [K, N] (or a :class:`PackedWeights`) hold integer codes of any width. When the
    data bound the register's range (|bias| + K max|x - zx| max|w - zw| fits), order cannot matter and a
    fast exact path runs (BLAS in float32 over K chunks small enough that every partial sum is an exact
    integer, or an int32/int64 kernel for small M); otherwise the ordered kernel fits the register after every
    addition. ``arithmetic="avx2-pairwise16"`` reproduces ONNX Runtime's uint8 x int8 on CPUs without VNNI.
    """
    x, packed, b = gemm_operands(x, w, w_zero_point, bias, accumulator, arithmetic)
    zx, zw = int(x_zero_point), packed.w_zero_point
    if arithmetic == "avx2-pairwise16":
        if x.dtype != np.uint8 or packed.w.dtype != np.int8:
            raise ConfigError("arithmetic: avx2-pairwise16 models uint8 activations x int8 weights only")
        if not simd.pairwise_available(x.dtype, packed.w) or os.environ.get("HWSIM_REFERENCE") == "1":
            acc = kernel_module().matmul_acc_pairwise16(x, packed.w, zx, zw, b)
            return MacResult(acc, 0, "avx2-pairwise16")
        blocks = packed.simd_blocks("avx2-pairwise16")  # the pairs on the instruction itself
        rows_per_tile, chunks = simd.tiles(x.shape[0], blocks.shape[0])
        x = read_only(np.ascontiguousarray(x))
        acc = kernels_simd.dot_simd(x, 0, blocks, x.shape[1], rows_per_tile, chunks)
        acc = acc[:, : packed.w.shape[1]].astype(np.int64) + zero_point_correction(packed, b, zx)[None, :]
        if packed.zw_nonzero:
            acc -= zw[None, :] * x.sum(axis=1, dtype=np.int64)[:, None]
        return MacResult(acc, 0, "avx2-pairwise16")
    x_range = value_range(x)
    if order_free(gemm_bound(packed, b, zx, x_range), accumulator):
        raw, path = raw_products(x, packed, x_range)
        raw = raw.astype(np.int64)
        raw += zero_point_correction(packed, b, zx)[None, :]
        if packed.zw_nonzero:
            raw -= zw[None, :] * x.sum(axis=1, dtype=np.int64)[:, None]
        return MacResult(raw, 0, path)
    acc, count = _ordered_impl().matmul_acc(
        x,
        packed.w,
        zx,
        zw,
        b,
        accumulator.fmt.min,
        accumulator.fmt.max,
        int(accumulator.overflow),
        accumulator.k_order(x.shape[1]),
        bool(accumulator.bias_last),
    )
    _note_overflows(int(count))
    return MacResult(acc, int(count), "ordered")


def gemm_operands(x, w, w_zero_point, bias, accumulator: Accumulator, arithmetic: str):
    """Checked GEMM operands: x, packed weights and the bias per column."""
    packed = w if isinstance(w, PackedWeights) else prepack_cached(w, w_zero_point)
    x = np.asarray(x)
    _require_int("x", x)
    if x.ndim != 2 or x.shape[1] != packed.w.shape[0]:
        raise ConfigError(f"x: expected shape [M, {packed.w.shape[0]}] to match w (got {x.shape})")
    if arithmetic not in ARITHMETICS:
        raise ConfigError(f"arithmetic: expected one of {', '.join(ARITHMETICS)} (got {arithmetic!r})")
    if accumulator.order is not None:
        accumulator.k_order(x.shape[1])  # a bad order is an error even where the order cannot matter
    return x, packed, per_column(0 if bias is None else bias, packed.w.shape[1], "bias")


def value_range(x: np.ndarray) -> tuple[int, int]:
    """(min, max) of ``x``; (0, 0) when it is empty."""
    return (int(x.min()), int(x.max())) if x.size else (0, 0)


def gemm_bound(packed: PackedWeights, b: np.ndarray, zx: int, x_range: tuple[int, int]) -> int:
    """The largest |partial sum| of a GEMM whose inputs lie in ``x_range``: |bias| + K max|x - zx| max|w -
    zw|."""
    span_x = max(abs(x_range[1] - zx), abs(x_range[0] - zx))
    return int(np.abs(b).max(initial=0)) + packed.w.shape[0] * span_x * packed.max_abs_centered


def order_free(bound: int, accumulator: Accumulator) -> bool:
    """No partial sum can leave the register, so every order of the additions gives the exact sum and the
    fastest kernel may run (never under HWSIM_REFERENCE, which routes everything to the plain twins)."""
    return accumulator.fmt.min <= -bound and bound <= accumulator.fmt.max and kernel_module() is kernels


def zero_point_correction(packed: PackedWeights, b: np.ndarray, zx: int) -> np.ndarray:
    """The per-column terms of sum (x - zx)(w - zw) + b beside sum xw and -zw sum x: b - zx sum w + K zx
    zw."""
    return b - zx * packed.col_sum + packed.w.shape[0] * zx * packed.w_zero_point


def matmul_groups(
    x, w, *, group_size: int, x_zero_point: int = 0, w_zero_point=0, accumulator: Accumulator = Accumulator()
) -> MacResult:
    """Per-group partial sums for per-group weight scales: acc[g, m, n] over k in group g of ``group_size``.

    Each group's sum lives in its own accumulator (as a per-group dequantizing datapath keeps it), so the
    caller scales group g by its own weight scale. ``w_zero_point`` is a scalar or [N, G].
    """
    w = w.w if isinstance(w, PackedWeights) else np.asarray(w)
    depth, cols = w.shape
    if group_size < 1:
        raise ConfigError(f"group_size: expected a positive integer (got {group_size})")
    groups = -(-depth // group_size)
    zw = np.asarray(w_zero_point, np.int64)
    zw = (
        np.broadcast_to(zw.reshape(-1, 1) if zw.ndim == 1 else zw, (cols, groups))
        if zw.size > 1
        else np.full((cols, groups), int(zw), np.int64)
    )
    x = np.asarray(x)
    _require_int("x", x)
    if x.ndim != 2 or x.shape[1] != depth:
        raise ConfigError(f"x: expected shape [M, {depth}] to match w (got {x.shape})")
    if accumulator.order is None and _ordered_impl() is kernels_ordered and groups:
        (x_lo, x_hi), (w_lo, w_hi) = value_range(x), value_range(w)
        zx = int(x_zero_point)
        span_w = max(abs(w_hi - int(zw.min())), abs(w_lo - int(zw.max())))  # from the extremes: cheap, safe
        bound = min(group_size, depth) * max(abs(x_hi - zx), abs(x_lo - zx)) * span_w
        if not order_free(bound, accumulator):  # every group at once on the lanes kernel
            fmt = accumulator.fmt
            acc, count = kernels_ordered.matmul_groups_acc(
                x,
                w,
                int(x_zero_point),
                np.ascontiguousarray(zw),
                group_size,
                fmt.min,
                fmt.max,
                int(accumulator.overflow),
                bool(accumulator.bias_last),
            )
            _note_overflows(int(count))
            return MacResult(acc, int(count), "per-group")
    parts, overflows = [], 0
    for g in range(groups):
        sl = slice(g * group_size, min((g + 1) * group_size, depth))
        res = matmul(
            x[:, sl],
            w[sl],
            x_zero_point=x_zero_point,
            w_zero_point=np.ascontiguousarray(zw[:, g]),
            accumulator=accumulator,
        )
        parts.append(res.acc)
        overflows += res.overflows
    return MacResult(np.stack(parts), overflows, "per-group")


def raw_products(x: np.ndarray, packed: PackedWeights, x_range: tuple[int, int]) -> tuple[np.ndarray, str]:
    """sum_k x[m, k] w[k, n] exactly (x within ``x_range``), by the SIMD kernel, BLAS over exact float32
    chunks or an integer kernel.

    The result's dtype holds it exactly: float32 from one BLAS chunk, int32 when every sum is below 2**31,
    else int64 (the VNNI kernel's sums of int8 inputs come back as int64, with the +128 offset taken off).
    """
    rows, depth = x.shape
    max_x = max(abs(x_range[0]), abs(x_range[1]))
    offset = simd.input_offset(packed.w, x_range)
    if offset is not None:  # exact sums, minus what the offset added: offset * sum_k w[k, n]
        isa = simd.instruction()
        rows_per_tile, chunks = simd.tiles(rows, -(-packed.w.shape[1] // 16))
        sums = kernels_simd.dot_simd(
            read_only(np.ascontiguousarray(x)), offset, packed.simd_blocks(isa), depth, rows_per_tile, chunks
        )[:, : packed.w.shape[1]]
        return (sums - offset * packed.col_sum if offset else sums), isa
    largest = max(max_x * packed.max_abs, 1)
    chunk = FLOAT32_EXACT // largest
    fits32 = depth * largest < 1 << 31
    if rows >= BLAS_MIN_ROWS and packed.as_float is not None and chunk >= min(depth, 64):
        xf = x.astype(np.float32)
        if chunk >= depth:
            return xf @ packed.as_float, "blas-float32"
        total = np.zeros((rows, packed.w.shape[1]), np.int32 if fits32 else np.int64)
        for start in range(0, depth, chunk):
            stop = min(start + chunk, depth)
            total += (xf[:, start:stop] @ packed.as_float[start:stop]).astype(total.dtype)
        return total, "blas-float32"
    if fits32:
        cols = packed.w.shape[1]
        block = max(64, -(-cols // numba.get_num_threads() // 64) * 64)  # one block per thread
        while rows * block * 4 > _ACC_BYTES and block > 64:  # accumulators stay in L1/L2
            block //= 2
        return kernels.raw_dot_i32(np.ascontiguousarray(x), packed.w, block), "int32"
    return kernels.raw_dot_int64(np.ascontiguousarray(x), packed.transposed), "int64"


def conv2d(
    x,
    w,
    *,
    stride=1,
    padding="valid",
    dilation=1,
    groups: int = 1,
    x_zero_point: int = 0,
    w_zero_point=0,
    bias=None,
    accumulator: Accumulator = Accumulator(),
    arithmetic: str = "exact",
) -> MacResult:
    """Conv2d accumulators. ``x`` NHWC, ``w`` OHWI [out, kh, kw, in / groups], result NHWC (int64).

    The reduction runs over (ky, kx, c) in that order (TFLite's and ONNX Runtime's im2col order);
    padded taps read the input zero point, so they contribute exactly 0.
    """
    x, w, geo, zw, b = conv_operands(x, w, stride, padding, dilation, groups, w_zero_point, bias)
    out_per_group = w.shape[0] // groups
    results, overflows, path = [], 0, ""
    for g in range(groups):
        sl = slice(g * out_per_group, (g + 1) * out_per_group)
        res = matmul(
            conv_columns(x, w.shape[3], geo, g, groups, x_zero_point),
            conv_weights(w, zw, g, groups),
            x_zero_point=x_zero_point,
            bias=b[sl],
            accumulator=accumulator,
            arithmetic=arithmetic,
        )
        results.append(res.acc)
        overflows += res.overflows
        path = res.path
    acc = np.concatenate(results, axis=1) if groups > 1 else results[0]
    return MacResult(acc.reshape(x.shape[0], *geo.out_hw, w.shape[0]), overflows, path)


def conv_operands(x, w, stride, padding, dilation, groups: int, w_zero_point, bias):
    """Checked conv operands: (x, w, geometry, zw and bias per output channel)."""
    x, w = np.asarray(x), np.asarray(w)
    _require_int("x", x)
    _require_int("w", w)
    if x.ndim != 4 or w.ndim != 4:
        raise ConfigError(f"x, w: expected NHWC input and OHWI weights (got {x.shape} and {w.shape})")
    out_c, kh, kw, in_per_group = w.shape
    if groups < 1 or x.shape[3] != in_per_group * groups or out_c % groups:
        raise ConfigError(
            f"groups: {groups} groups of {in_per_group} inputs do not match {x.shape[3]} "
            f"input and {out_c} output channels"
        )
    geo = conv_geometry(x.shape[1:3], (kh, kw), stride, padding, dilation)
    return (
        x,
        w,
        geo,
        per_column(w_zero_point, out_c, "w_zero_point"),
        per_column(0 if bias is None else bias, out_c, "bias"),
    )


def conv_columns(x: np.ndarray, in_per_group: int, geo: ConvGeometry, g: int, groups: int, x_zero_point: int):
    """Group ``g``'s input as GEMM rows (n, oy, ox) by columns (ky, kx, c); padded taps read the zero
    point."""
    xg = x if groups == 1 else np.ascontiguousarray(x[..., g * in_per_group : (g + 1) * in_per_group])
    if geo.kernel == (1, 1) and geo.stride == (1, 1) and geo.pads == (0, 0, 0, 0):
        # a pointwise conv is a GEMM over the pixels
        return np.ascontiguousarray(xg).reshape(-1, in_per_group)
    cols = kernel_module().im2col(
        np.ascontiguousarray(xg),
        *geo.kernel,
        *geo.stride,
        *geo.dilation,
        geo.pads[0],
        geo.pads[2],
        *geo.out_hw,
        x_zero_point,
    )
    return cols.astype(x.dtype, copy=False)


def conv_weights(w: np.ndarray, zw: np.ndarray, g: int, groups: int) -> PackedWeights:
    """Group ``g``'s OHWI weights as a packed [kh kw in, out] GEMM operand (packed once per frozen array)."""
    per = w.shape[0] // groups
    sl = slice(g * per, (g + 1) * per)
    return prepack_cached(w[sl].reshape(per, -1).T, zw[sl], owner=w, part=g)


def depthwise_conv2d(
    x,
    w,
    *,
    stride=1,
    padding="valid",
    dilation=1,
    depth_multiplier: int = 1,
    x_zero_point: int = 0,
    w_zero_point=0,
    bias=None,
    accumulator: Accumulator = Accumulator(),
) -> MacResult:
    """Depthwise conv accumulators. ``x`` NHWC, ``w`` [kh, kw, C * depth_multiplier] (TFLite's [1, kh, kw,
    C*m]
    is accepted too); output channel o reads input channel o // depth_multiplier. Taps in (ky, kx) order."""
    x, w, geometry, zw, b = depthwise_operands(
        x, w, stride, padding, dilation, depth_multiplier, w_zero_point, bias
    )
    bound = depthwise_bound(w, zw, b, int(x_zero_point), value_range(x))
    if order_free(bound, accumulator) and bound < 1 << 31:
        acc = kernels.depthwise_acc_i32(x, w, int(x_zero_point), zw, b, *geometry, int(depth_multiplier))
        return MacResult(acc.astype(np.int64), 0, "int32")
    fmt = accumulator.fmt
    acc, count = _ordered_impl().depthwise_acc(
        x,
        w,
        int(x_zero_point),
        zw,
        b,
        *geometry,
        int(depth_multiplier),
        fmt.min,
        fmt.max,
        int(accumulator.overflow),
    )
    _note_overflows(int(count))
    return MacResult(acc, int(count), "ordered")


def depthwise_operands(x, w, stride, padding, dilation, depth_multiplier: int, w_zero_point, bias):
    """Checked depthwise operands: x, w [kh, kw, C*m], the geometry as the kernels take it, zw and bias."""
    x, w = np.asarray(x), np.asarray(w)
    _require_int("x", x)
    _require_int("w", w)
    if w.ndim == 4 and w.shape[0] == 1:
        w = w[0]
    if x.ndim != 4 or w.ndim != 3:
        raise ConfigError(
            f"x, w: expected NHWC input and [kh, kw, C*m] weights (got {x.shape} and {w.shape})"
        )
    if depth_multiplier < 1 or w.shape[2] != x.shape[3] * depth_multiplier:
        raise ConfigError(
            f"depth_multiplier: {x.shape[3]} channels x {depth_multiplier} != {w.shape[2]} outputs"
        )
    geo = conv_geometry(x.shape[1:3], w.shape[:2], stride, padding, dilation)
    zw = per_column(w_zero_point, w.shape[2], "w_zero_point")
    b = per_column(0 if bias is None else bias, w.shape[2], "bias")
    x, w = np.ascontiguousarray(x), np.ascontiguousarray(w)
    return x, w, geo.window(), zw, b


def depthwise_bound(w: np.ndarray, zw: np.ndarray, b: np.ndarray, zx: int, x_range: tuple[int, int]) -> int:
    """The largest |partial sum| of a depthwise conv whose inputs lie in ``x_range``."""
    span_x = max(abs(x_range[1] - zx), abs(x_range[0] - zx))
    w_lo, w_hi = value_range(w)
    span_w = int(np.maximum(np.abs(w_hi - zw), np.abs(w_lo - zw)).max(initial=0))
    return int(np.abs(b).max(initial=0)) + w.shape[0] * w.shape[1] * span_x * span_w


def pool2d(
    x,
    kernel,
    *,
    kind: str = "avg",
    stride=1,
    padding="valid",
    fmt: IntFormat | str = "int8",
    act_min: int | None = None,
    act_max: int | None = None,
) -> np.ndarray:
    """Average or max pooling of NHWC integer codes (same scale in and out, as TFLite requires).

    Average divides by the number of valid (unpadded) taps and rounds half away from zero, as TFLite does.
    """
    x = np.asarray(x)
    _require_int("x", x)
    if kind not in ("avg", "max"):
        raise ConfigError(f"kind: expected 'avg' or 'max' (got {kind!r})")
    fmt = _as_format(fmt)
    geo = conv_geometry(x.shape[1:3], pair(kernel, "kernel"), stride, padding, 1)
    lo = fmt.min if act_min is None else act_min
    hi = fmt.max if act_max is None else act_max
    out = kernel_module().pool2d(
        np.ascontiguousarray(x),
        *geo.kernel,
        *geo.stride,
        geo.pads[0],
        geo.pads[2],
        *geo.out_hw,
        kind == "max",
        lo,
        hi,
    )
    return out.astype(fmt.storage_dtype)
