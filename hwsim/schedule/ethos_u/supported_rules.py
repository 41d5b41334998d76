"""Vela 5.2.0's supported-operator rules, one function each, and which of them apply to which op kind.

Each rule takes a :class:`~hwsim.schedule.ethos_u.supported.Check` and returns None when the op passes, else a
one-line reason ending in the rule as Vela states it. :func:`for_kind` lists a kind's rules in the order Vela
runs them (``TfLiteSupportedOperators`` pushes the shared rules, then the per-operator ones, then the U55 or
U85 subclass its own), so the reason is the one Vela would print first. Written from
``ethosu/regor/tflite/tflite_supported_operators{,_u55,_u85}.cpp`` of ethos-u-vela 5.2.0.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from itertools import combinations
from typing import TYPE_CHECKING

from hwsim.workload.graph import flat_values

if TYPE_CHECKING:
    from hwsim.schedule.ethos_u.supported import Check
    from hwsim.workload.graph import Tensor

Rule = Callable[["Check"], "str | None"]

FM_TYPES = {
    "u55": {"uint8", "int8", "int16", "int32", "int64"},
    "u85": {"uint8", "int8", "int16", "int32", "int64", "bool"},
}
MAX_WEIGHT_SUM = {"u55": (127 << 16, 127 << 16), "u85": (127 << 16, 127 << 24)}  # (8-bit IFM, 16-bit IFM)
MAX_BIAS = {"u55": (1 << 40) - 1, "u85": (1 << 48) - 1}  # largest int64 bias
NO_QUANT = frozenset({"mirror_pad", "quantize", "transpose", "gather", "pad", "expand_dims"})
WEIGHTED = frozenset({"conv2d", "depthwise_conv2d", "fully_connected"})
U55_32BIT = frozenset(
    {
        "sum",
        "transpose",
        "mirror_pad",
        "add",
        "mul",
        "sub",
        "batch_matmul",
        "fully_connected",
        "reshape",
        "expand_dims",
        "neg",
    }
)  # the only kinds a U55 runs with 32-bit feature maps
CONST_PARAMS = frozenset({"slice", "strided_slice", "mean", "pad", "mirror_pad", "transpose"})
MAX_MEAN_ELEMENTS = {"int8": 1 << 24, "uint8": 1 << 23, "int16": 1 << 16}
# Vela's TransposeType for the permutations of the last three axes it names; any other is "other".
TRANSPOSE_TYPES = {
    (0, 1, 2, 3): "NHWC",
    (0, 2, 1, 3): "NWHC",
    (0, 1, 3, 2): "NHCW",
    (0, 2, 3, 1): "NWCH",
    (0, 3, 1, 2): "NCHW",
    (0, 3, 2, 1): "NCWH",
}


def vela_type(t: Tensor) -> str:
    """The tensor's data type as Vela names it (an int4 tensor is held in int8 by hwsim)."""
    return "int4" if t.bits == 4 else t.dtype_name


def bits(t: Tensor) -> int:
    """Element bits (8 for bool, as in Vela)."""
    return t.element_bits


def padded4(shape: tuple[int | None, ...]) -> tuple[int, ...]:
    """A shape as Vela's ``Shape::PadAxes(shape, 4, 1)`` gives it: leading ones up to rank 4 (unknown = 1)."""
    dims = tuple(int(d or 1) for d in shape)
    return (1,) * (4 - len(dims)) + dims


def elements(shape) -> int:
    """The number of elements of a shape (unknown sizes count 1)."""
    return math.prod(int(d or 1) for d in shape)


def quantized_shift(scale: float) -> int:
    """The right shift of Vela's 32-bit fixed-point form of ``scale`` (``QuantizedScale``,
    common/scaling.cpp).

    Negative only for scales of 2**32 and more, which Vela refuses.

    >>> quantized_shift(0.5), quantized_shift(2.0 ** 31), quantized_shift(2.0 ** 33)
    (31, 0, -3)
    """
    mantissa, exponent = math.frexp(scale)
    fixed = math.floor(abs(mantissa) * 2.0**31 + 0.5)
    shift = 31 - exponent
    if shift < 0 and fixed < 2 ** (shift + 32):
        shift = 0
    return shift


def _quant_key(t: Tensor):
    """What Vela compares when it asks whether two tensors are quantized alike (scales in fixed point)."""
    q = t.quant
    if q is None:
        return ()
    scales = tuple((round(m * 2**31), e) for m, e in map(math.frexp, q.scale_values))
    return scales, tuple(q.zero_point_values)


# -- rules every supported kind runs -------------------------------------------------------------------------
def static_dims(c: Check) -> str | None:
    """Only the batch may be unknown: Vela sets an unknown first axis to 1 and refuses any other."""
    for o in c.operands:
        if any(d is None for d in o.tensor.shape[1:]):
            return (
                f"tensor {o.tensor.name!r} has shape {o.tensor.shape} (Vela: only the first dimension of "
                "a "
                "tensor may be dynamic)"
            )
    return None


def fm_types(c: Check) -> str | None:
    """Feature maps of the integer types the NPU reads (a U85 also reads bool)."""
    allowed = FM_TYPES[c.family]
    for o in c.operands:
        if o.is_fm and vela_type(o.tensor) not in allowed:
            return (
                f"{o.role.upper()} {o.tensor.name!r} is {vela_type(o.tensor)} (Vela {c.family.upper()}: "
                f"feature maps must be {', '.join(sorted(allowed))})"
            )
    return None


def has_shape(c: Check) -> str | None:
    """A computed rank-0 tensor has no shape in Vela's reader (a constant one gets its buffer's)."""
    for o in c.operands:
        if o.tensor.shape == () and not o.tensor.is_parameter:
            return f"tensor {o.tensor.name!r} is a computed scalar (Vela: tensors must have a constant shape)"
    return None


def quantized(c: Check) -> str | None:
    """Feature maps and weights carry scales and zero points, except int32, int64 and bool maps."""
    if c.kind in NO_QUANT:
        return None
    for o in c.operands:
        t = vela_type(o.tensor)
        exempt = (
            t in ("int64", "bool") or o.role not in ("ifm", "ofm", "weights") or (o.is_fm and t == "int32")
        )
        if not exempt and o.tensor.quant is None:
            return (
                f"{o.role} {o.tensor.name!r} has no quantization (Vela: inputs, outputs and weights must "
                "have "
                "quantization parameters)"
            )
    return None


def scale_positive(c: Check) -> str | None:
    """Every scale has a non-negative shift in Vela's 32-bit fixed point."""
    if c.kind in NO_QUANT:
        return None
    for o in c.operands:
        if o.tensor.quant is None:
            continue
        scales = o.tensor.quant.scale_values
        # only a scale of 2**31 or more (or NaN) can have a negative shift: test those alone
        if any(quantized_shift(s) < 0 for s in scales if not abs(s) < 2.0**31):
            return (
                f"tensor {o.tensor.name!r} has a scale of 2**32 or more (Vela: the quantization scale of "
                "any "
                "tensor must be positive, which it checks as a non-negative shift)"
            )
    return None


def per_tensor(c: Check) -> str | None:
    """One scale and zero point per tensor, except for the weights of weighted operators."""
    if c.kind in WEIGHTED:
        return None
    for o in c.operands:
        q = o.tensor.quant
        if q is not None and (q.scale_count > 1 or len(q.zero_point_values) > 1):
            return (
                f"tensor {o.tensor.name!r} is quantized per axis (Vela: per-axis quantization only for "
                "CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED and TRANSPOSE_CONV)"
            )
    return None


# -- weights and bias (convolutions and fully connected layers) ----------------------------------------------
def weights_8bit(c: Check) -> str | None:
    """Weights of 8 bits (int8 or uint8): Vela's weight encoder takes no other width."""
    w = c.of("weights")[0]
    if bits(w) != 8:
        return f"{vela_type(w)} weights (Vela: weight tensors must be 8-bit)"
    return None


def weight_sum(c: Check) -> str | None:
    """Per output channel, the sum of |weight - zero point| is bounded so that the accumulator cannot
    overflow."""
    w = c.of("weights")[0]
    if not w.is_constant:
        return None
    shape = tuple(w.stored_data.shape)
    per_channel = math.prod(shape[:-1]) if c.kind == "depthwise_conv2d" else math.prod(shape[1:])
    limit = MAX_WEIGHT_SUM[c.family][0 if bits(c.ifm) == 8 else 1]
    if 255 * per_channel < limit:  # no channel can reach the limit: skip the sums
        return None
    import numpy as np

    data = np.asarray(w.data, np.int64)
    per_out = (
        data.reshape(-1, data.shape[-1]).T
        if c.kind == "depthwise_conv2d"
        else data.reshape(data.shape[0], -1)
    )
    zero = np.asarray(w.quant.zero_point, np.int64).ravel() if w.quant is not None else np.zeros(1, np.int64)
    zero = zero[:, None] if zero.size > 1 else zero[:1]
    worst = int(np.abs(per_out - zero).sum(axis=1).max())
    if worst > limit:
        return f"an output channel's absolute weight sum is {worst} (Vela: it cannot exceed {limit})"
    return None


def _bias(c: Check) -> Tensor | None:
    found = c.of("bias")
    return found[0] if found else None


def bias_shape(c: Check) -> str | None:
    """One bias value per output channel, along the last axis."""
    b = _bias(c)
    if b is not None and b.shape and elements(b.shape) > int(b.shape[-1] or 1):
        return f"bias of shape {b.shape} (Vela: bias values must be stored in the channel axis)"
    return None


def bias_constant(c: Check) -> str | None:
    """The bias is a constant: Vela encodes it with the weights."""
    b = _bias(c)
    if b is not None and not b.is_parameter:
        return f"bias {b.name!r} is computed (Vela: bias tensors must be constant)"
    return None


def bias_type(c: Check) -> str | None:
    """The bias is int32 (int8 feature maps) or int64 (int16 feature maps)."""
    b = _bias(c)
    if b is not None and vela_type(b) not in ("int32", "int64"):
        return f"{vela_type(b)} bias (Vela: bias tensors must be int32 or int64)"
    return None


def bias_range(c: Check) -> str | None:
    """An int64 bias fits the accumulator Vela gives it (40 bits on a U55, 48 on a U85)."""
    b = _bias(c)
    limit = MAX_BIAS[c.family]
    if b is not None and vela_type(b) == "int64" and b.is_constant:
        high = max(int(v) for v in flat_values(b.stored_data))
        if high > limit:
            return f"int64 bias {high} (Vela {c.family.upper()}: int64 bias must be at most {limit})"
    return None


# -- per-operator rules both families share ------------------------------------------------------------------
def const_params(c: Check) -> str | None:
    """Parameter tensors (axes, paddings, permutations, slice bounds) are constants."""
    for t in c.of("params"):
        if not t.is_parameter:
            return f"parameter {t.name!r} is computed (Vela: {c.name} parameter tensors must be constant)"
    return None


def matching_quant(c: Check) -> str | None:
    """MAXIMUM and MINIMUM compare raw values, so both inputs are quantized as the output."""
    a, b = c.of("ifm")[:2]
    if _quant_key(a) != _quant_key(c.ofm) or _quant_key(b) != _quant_key(c.ofm):
        return f"inputs quantized unlike the output (Vela: {c.name} inputs must be quantized as its output)"
    return None


def fc_weight_shape(c: Check) -> str | None:
    """Weights that reshape to (O, 1, 1, I), as Vela's reader reshapes them."""
    shape = c.of("weights")[0].shape
    if len(shape) < 2 or elements(shape) != int(shape[0] or 1) * int(shape[-1] or 1):
        return f"weights of shape {shape} (Vela: FULLY_CONNECTED weights must be O,1,...,1,I)"
    return None


def has_padding(c: Check) -> bool:
    """True when the op pads its input (SAME padding that adds pixels, or explicit pads); Vela's kernel
    padding
    is then nonzero."""
    if isinstance(c.op.attrs.get("padding"), (tuple, list)):
        return any(c.op.attrs["padding"])
    if c.op.attrs.get("padding") != "same":
        return False
    _, h, w, _ = padded4(c.ifm.shape)
    kh, kw = c.op.attrs.get("kernel", (1, 1))
    for size, k, s, d in zip(
        (h, w), (kh, kw), c.op.attrs.get("stride", (1, 1)), c.op.attrs.get("dilation", (1, 1))
    ):
        if (-(-size // s) - 1) * s + (k - 1) * d + 1 > size:
            return True
    return False


def avg_pool_kernel(c: Check) -> str | None:
    """Padded average pools at most 8x8; unpadded ones at most 256 high and 65536 in area."""
    kh, kw = c.op.attrs["kernel"]
    if has_padding(c):
        if not (1 <= kw <= 8 and 1 <= kh <= 8):
            return (
                f"{kh}x{kw} kernel with padding (Vela: AVERAGE_POOL_2D with padding takes kernels up to 8x8)"
            )
    elif not 1 <= kh <= 256 or kh * kw > 256 * 256:
        return f"{kh}x{kw} kernel (Vela: pooling kernels up to 256 high and 65536 in area)"
    return None


def max_pool_kernel(c: Check) -> str | None:
    """Kernels at most 256 high and 65536 in area."""
    kh, kw = c.op.attrs["kernel"]
    if not 1 <= kh <= 256 or kh * kw > 256 * 256:
        return f"{kh}x{kw} kernel (Vela: pooling kernels up to 256 high and 65536 in area)"
    return None


def rsqrt_type(c: Check) -> str | None:
    """RSQRT becomes a lookup table, which Vela builds for int8 and int16 only."""
    if vela_type(c.ifm) not in ("int8", "int16"):
        return f"{vela_type(c.ifm)} IFM (Vela: RSQRT takes int8 or int16)"
    return None


def softmax_size(c: Check) -> str | None:
    """At most 65536 pixels (W*H) for Vela's softmax rewrite."""
    _, h, w, _ = padded4(c.ifm.shape)
    if h * w > 1 << 16:
        return f"H*W = {h * w} (Vela: SOFTMAX needs H*W at most 65536)"
    return None


def transpose_rank(c: Check) -> str | None:
    """Permutations of at most 8 axes."""
    if len(c.op.attrs["perm"]) > 8:
        return f"rank {len(c.op.attrs['perm'])} (Vela: TRANSPOSE of at most 8 dimensions)"
    return None


def pad_params_type(c: Check) -> str | None:
    """Paddings given as int32 or int64."""
    t = c.of("params")[0]
    if vela_type(t) not in ("int32", "int64"):
        return f"{vela_type(t)} paddings (Vela: {c.name} paddings must be int32 or int64)"
    return None


def same_shapes(c: Check) -> str | None:
    """A lookup-table operator maps each element to one element: IFM and OFM shapes are equal."""
    if tuple(c.ifm.shape) != tuple(c.ofm.shape):
        return f"IFM {c.ifm.shape} and OFM {c.ofm.shape} (Vela: {c.name} IFM and OFM shapes must match)"
    return None


def _same_type_of(*types: str) -> Rule:
    def rule(c: Check) -> str | None:
        if vela_type(c.ifm) not in types or vela_type(c.ofm) != vela_type(c.ifm):
            return (
                f"{vela_type(c.ifm)} to {vela_type(c.ofm)} (Vela: {c.name} IFM and OFM types must match "
                "and be "
                f"{' or '.join(types)})"
            )
        return None

    return rule


def _mean_axes(c: Check) -> tuple[tuple[int, ...], tuple[bool, ...]]:
    """The IFM shape padded to 4-D and which of its axes the op reduces."""
    rank = len(c.ifm.shape)
    axes = {int(a) % rank for a in c.op.attrs["axes"]} if rank else set()
    mask = (False,) * (4 - rank) + tuple(i in axes for i in range(rank))
    return padded4(c.ifm.shape), mask


def mean_batch(c: Check) -> str | None:
    """MEAN of batch 1 only."""
    shape = padded4(c.ifm.shape)
    if shape[-4] > 1:
        return f"batch {shape[-4]} (Vela: MEAN needs batch 1)"
    return None


def mean_depth(c: Check) -> str | None:
    """A mean over the channels needs one of H, W, C to be 1 (Vela then moves the channels into H or W)."""
    shape, mask = _mean_axes(c)
    if mask[-1] and 1 not in shape[1:4]:
        return f"mean over the channels of {shape} (Vela: MEAN over depth only when H, W or C is 1)"
    return None


def mean_axis_size(c: Check) -> str | None:
    """Each reduced axis at most 4096 (64 x 64, the largest kernel of Vela's MEAN rewrite)."""
    shape, mask = _mean_axes(c)
    if any(m and d > 4096 for d, m in zip(shape[-4:], mask[-4:])):
        return f"a reduced axis of {shape} is above 4096 (Vela: MEAN reduces axes of at most 4096)"
    return None


def mean_type(c: Check) -> str | None:
    """MEAN of int8, uint8 or int16 feature maps."""
    if vela_type(c.ifm) not in MAX_MEAN_ELEMENTS:
        return f"{vela_type(c.ifm)} IFM (Vela: MEAN takes int8, uint8 or int16)"
    return None


def mean_elements(c: Check) -> str | None:
    """Few enough reduced elements for their sum to fit 31 bits (2**24 int8, 2**23 uint8, 2**16 int16)."""
    shape, mask = _mean_axes(c)
    count = math.prod(d for d, m in zip(shape, mask) if m)
    limit = MAX_MEAN_ELEMENTS.get(vela_type(c.ifm))
    if limit is not None and count > limit:
        return f"{count} reduced elements (Vela: MEAN of {vela_type(c.ifm)} reduces at most {limit})"
    return None


def strided_slice_volume(c: Check) -> str | None:
    """Strides only over H and W and never negative, and a slice that is not empty (Vela's decoding of the
    spec)."""
    a = c.op.attrs
    shape = [int(d or 1) for d in c.ifm.shape]
    size, stride = list(shape), [1] * len(shape)
    n = min(len(a["begin"]), len(a["end"]), len(a["strides"]))
    for i in range(min(n, len(shape))):
        shrink = a["shrink_axis_mask"] >> i & 1
        offset = 0
        if not a["begin_mask"] >> i & 1 or shrink:
            begin = a["begin"][i] + (shape[i] if a["begin"][i] < 0 else 0)
            offset = min(max(begin, 0), shape[i] - 1)
            size[i] = 1 if shrink else shape[i] - offset
        if not a["end_mask"] >> i & 1 and not shrink:
            end = a["end"][i] + (shape[i] if a["end"][i] < 0 else 0)
            size[i] = min(max(end, 1), shape[i]) - offset
        stride[i] = a["strides"][i]
    if math.prod(s for i, s in enumerate(stride) if i - len(stride) not in (-3, -2)) != 1:
        return f"strides {tuple(stride)} (Vela: STRIDED_SLICE strides only over H and W)"
    if any(s < 0 for s in stride):
        return f"strides {tuple(stride)} (Vela: STRIDED_SLICE strides must be non-negative)"
    if not any(s > 0 for s in size):
        return f"an empty slice {tuple(size)} (Vela: STRIDED_SLICE must select a volume)"
    return None


# -- U55 and U65 ---------------------------------------------------------------------------------------------
def u55_zero_points(c: Check) -> str | None:
    """U55: a 32-bit feature map has zero point 0, an unsigned one a non-negative zero point."""
    for o in c.operands:
        if o.is_fm and o.tensor.quant is not None:
            for z in o.tensor.quant.zero_point_values:
                if bits(o.tensor) == 32 and z != 0 or vela_type(o.tensor).startswith("u") and z < 0:
                    return (
                        f"{vela_type(o.tensor)} {o.role.upper()} with zero point {int(z)} (Vela U55: "
                        "zero points "
                        "must be 0 for int32 and non-negative for unsigned types)"
                    )
    return None


def _no_fm_of(width: int) -> Rule:
    def rule(c: Check) -> str | None:
        for o in c.operands:
            if o.is_fm and bits(o.tensor) == width:
                return (
                    f"{vela_type(o.tensor)} {o.role.upper()} {o.tensor.name!r} (Vela U55: {c.name} does "
                    "not take "
                    f"{width}-bit feature maps)"
                )
        return None

    return rule


def u55_unrolled_stride(c: Check) -> str | None:
    """A stride above 3 is run as several stride-1 ops, which needs no padding and no dilation."""
    sy, sx = c.op.attrs.get("stride", (1, 1))
    _, oh, ow, _ = padded4(c.ofm.shape)
    if (sx <= 3 or ow == 1) and (sy <= 3 or oh == 1):
        return None
    if has_padding(c) or tuple(c.op.attrs.get("dilation", (1, 1))) != (1, 1):
        return (
            f"stride {(sy, sx)} with padding or dilation (Vela U55: {c.name} with a stride above 3 needs "
            "no "
            "padding and dilation 1)"
        )
    return None


def u55_stride(c: Check) -> str | None:
    """U55: strides of 1 to 3."""
    sy, sx = c.op.attrs.get("stride", (1, 1))
    if sx > 3 or sy > 3:
        return f"stride {(sy, sx)} (Vela U55: {c.name} strides must be in 1..3)"
    return None


def u55_matmul(c: Check) -> str | None:
    """U55: a product of two feature maps (BATCH_MATMUL, FULLY_CONNECTED on computed weights) takes int8."""
    if c.kind == "fully_connected" and c.of("weights")[0].is_parameter:
        return None
    shape = c.ifm.shape
    reduced = shape[-2] if c.op.attrs.get("adj_x") else shape[-1]
    if int(reduced or 1) > 1 << 16:
        return f"a reduced axis of {reduced} (Vela U55: matrix products reduce at most 65536)"
    if int(c.ofm.shape[-1] or 1) > 1 << 16:
        return f"OFM depth {c.ofm.shape[-1]} (Vela U55: matrix products of OFM depth at most 65536)"
    if vela_type(c.ifm) != "int8":
        return f"{vela_type(c.ifm)} IFM (Vela U55: matrix products take int8 feature maps)"
    return None


def transpose_type(perm) -> str:
    """Vela's name of a permutation once padded to 8-D ("NHWC" for none, "other" for what it has no name
    for)."""
    full = tuple(range(8 - len(perm))) + tuple(int(a) + 8 - len(perm) for a in perm)
    if full[:4] != (0, 1, 2, 3):
        return "other"
    return TRANSPOSE_TYPES.get(tuple(a - 4 for a in full[4:]), "other")


def u55_transpose(c: Check) -> str | None:
    """U55: transposes the NPU can do in passes of at most 65536 along each axis."""
    kind = transpose_type(c.op.attrs["perm"])
    shape = [int(d or 1) for d in c.ifm.shape]
    if bits(c.ifm) == 32:
        return _u55_transpose32(kind, shape)
    if bits(c.ifm) > 16 or kind == "NHWC":
        return None
    limit = 1 << 16
    if (len(shape) <= 3 or math.prod(shape[:-3]) == 1) and kind != "other":
        hwc = (
            (1,) * (3 - len(shape)) + tuple(shape) if len(shape) < 3 else (math.prod(shape[:-2]), *shape[-2:])
        )
        if max(hwc) > limit:
            return f"{kind} transpose of {tuple(shape)} (Vela U55: H, W and C at most 65536)"
    elif elements(shape) > 0:
        for i, j in combinations(range(len(shape)), 2):
            if elements(shape) // (shape[i] * shape[j]) > limit:
                return (
                    f"transpose of {tuple(shape)} (Vela U55: the product of any N-2 axes of a rank-N "
                    "transpose "
                    "at most 65536)"
                )
    return None


def _u55_transpose32(kind: str, shape: list[int]) -> str | None:
    n, h, w, c = padded4(shape)
    rule = "(Vela U55: 32-bit TRANSPOSE of rank 4 at most, NHWC with C <= 32768, NWHC or NHCW in range)"
    if len(shape) > 4 or kind not in ("NHWC", "NWHC", "NHCW"):
        return f"32-bit {kind} transpose of rank {len(shape)} {rule}"
    fits = {
        "NHWC": c <= 1 << 15,
        "NWHC": n == 1 and h <= 1 << 16 and w <= 1 << 16 and c <= 1 << 14,
        "NHCW": n * h <= 1 << 16 and w <= 1 << 16 and c <= 1 << 16,
    }[kind]
    return None if fits else f"32-bit {kind} transpose of {tuple(shape)} {rule}"


def _resize_options(c: Check) -> tuple[bool, bool]:
    """(align_corners, half_pixel_centers): from the op when the importer gives them, else TF2's defaults."""
    return bool(c.op.attrs.get("align_corners", False)), bool(c.op.attrs.get("half_pixel_centers", True))


def u55_resize(c: Check) -> str | None:
    """U55: a resize the NPU does as repeated 2x upscales (H and W alike, by 2, 4 or 8)."""
    align, half = _resize_options(c)
    half = half and c.kind == "resize_bilinear"  # Vela reads half_pixel_centers of a bilinear resize only
    _, ih, iw, _ = padded4(c.ifm.shape)
    _, oh, ow, _ = padded4(c.ofm.shape)
    if ih == iw == 1:
        return None
    if (ih, iw) == (oh, ow):
        return "half-pixel resize to the same size (Vela U55: not supported)" if half else None
    import numpy as np

    f32 = np.float32
    with np.errstate(divide="ignore"):  # an aligned resize of a 1-pixel axis: Vela divides by zero too
        if align:
            hs = f32(1) if oh == 1 else f32(oh - 1) / f32(ih - 1)
            ws = f32(1) if ow == 1 else f32(ow - 1) / f32(iw - 1)
        else:
            hs, ws = f32(oh) / f32(ih), f32(ow) / f32(iw)
    centers = ", 2 with half-pixel centers" if half else ""
    rule = f"(Vela U55: {c.name} scales H and W alike by 2, 4 or 8{centers})"
    if hs != ws and (not (oh == 1 and hs == 1 or ow == 1 and ws == 1) or half):
        return f"scale factors {float(hs):g} x {float(ws):g} {rule}"
    up = float(max(hs, ws))
    if not (up == math.trunc(up) and up > 1 and up <= (2 if half else 8) and int(up) & (int(up) - 1) == 0):
        return f"scale factor {up:g} {rule}"
    return None


# -- U85
# ------------------------------------------------------------------------------------------------------
def u85_zero_points(c: Check) -> str | None:
    """U85: zero points in the range of the feature map's type (0 for int16 and wider IFMs)."""
    for o in c.operands:
        if not o.is_fm or o.tensor.quant is None:
            continue
        t = vela_type(o.tensor)
        for z in o.tensor.quant.zero_point_values:
            if o.role == "ifm":
                ok = {"int8": -128 <= z <= 127, "uint8": 0 <= z <= 255, "uint16": z in (0, 32768)}.get(
                    t, z == 0
                )
            else:
                ok = -128 <= z <= 127 if t.startswith("int") else 0 <= z <= 255 or z == 32768
            if not ok:
                return f"{t} {o.role.upper()} with zero point {z} (Vela U85: zero point out of range)"
    return None


def u85_gather_axis(c: Check) -> str | None:
    """U85: GATHER along the batch axes only."""
    axis, batch_dims = int(c.op.attrs.get("axis", 0)), int(c.op.attrs.get("batch_dims", 0))
    if axis < 0:
        axis += len(c.ifm.shape)
    if axis != batch_dims:
        return f"axis {axis} with batch_dims {batch_dims} (Vela U85: GATHER axis must equal batch_dims)"
    return None


def _u85_ratios(c: Check, align: bool) -> list[tuple[int, int]]:
    """(output, input) sizes of W and H, less one each where align_corners counts intervals."""
    out = []
    for axis in (-2, -3):
        num, den = int(c.ofm.shape[axis] or 1), int(c.ifm.shape[axis] or 1)
        if align and den > 1:
            num, den = num - 1, den - 1
        out.append((num, den))
    return out


def u85_resize(c: Check) -> str | None:
    """U85: align_corners and half_pixel_centers exclusive, bounded factors, bilinear by powers of two."""
    align, half = _resize_options(c)
    if c.kind == "resize_nearest_neighbor":
        half = not align or half
    if align and half:
        return f"align_corners with half_pixel_centers (Vela U85: {c.name} takes one of them at most)"
    for num, den in _u85_ratios(c, align):
        if num == 0 or den == 0 or num // den > (1024 if half else 2048):
            return (
                f"scale factor {num}/{den} (Vela U85: {c.name} scales up at most 1024x with half-pixel "
                "centers, "
                "else 2048x)"
            )
    if c.kind == "resize_bilinear" and not (int(c.ifm.shape[-2] or 1) == int(c.ifm.shape[-3] or 1) == 1):
        for num, den in _u85_ratios(c, align):
            q = num // den
            if num % den or q < 1 or q & (q - 1):
                return (
                    f"scale factor {num}/{den} (Vela U85: RESIZE_BILINEAR scales by an integer power of two)"
                )
    return None


# -- which rules a kind runs ---------------------------------------------------------------------------------
_SHARED = (static_dims, fm_types, has_shape, quantized, scale_positive, per_tensor)
_WEIGHTS = (weights_8bit, weight_sum, bias_shape, bias_constant, bias_type, bias_range)
_BY_KIND: dict[str, tuple[Rule, ...]] = {
    "maximum": (matching_quant,),
    "minimum": (matching_quant,),
    "fully_connected": (fc_weight_shape,),
    "avg_pool2d": (avg_pool_kernel,),
    "max_pool2d": (max_pool_kernel,),
    "rsqrt": (rsqrt_type,),
    "softmax": (softmax_size,),
    "transpose": (transpose_rank,),
    "pad": (pad_params_type,),
    "mirror_pad": (pad_params_type,),
    "gelu": (same_shapes, _same_type_of("int8", "uint8")),
    "elu": (same_shapes, _same_type_of("int8")),
    "log": (same_shapes, _same_type_of("int8", "int16")),
    "mean": (mean_batch, mean_depth, mean_axis_size, mean_type, mean_elements),
    "strided_slice": (strided_slice_volume,),
}
_U55_BY_KIND: dict[str, tuple[Rule, ...]] = {
    "conv2d": (u55_unrolled_stride,),
    "avg_pool2d": (u55_unrolled_stride,),
    "max_pool2d": (u55_unrolled_stride,),
    "depthwise_conv2d": (u55_stride,),
    "fully_connected": (u55_matmul,),
    "batch_matmul": (u55_matmul,),
    "transpose": (u55_transpose,),
    "resize_bilinear": (u55_resize,),
    "resize_nearest_neighbor": (u55_resize,),
}
_U85_BY_KIND: dict[str, tuple[Rule, ...]] = {
    "gather": (u85_gather_axis,),
    "resize_bilinear": (u85_resize,),
    "resize_nearest_neighbor": (u85_resize,),
}
_NO_ZERO_POINT_RULE = {
    "u55": {"avg_pool2d", "resize_bilinear", "resize_nearest_neighbor"},
    "u85": {"avg_pool2d", "resize_bilinear", "resize_nearest_neighbor", "div"},
}


def for_kind(kind: str, family: str) -> list[Rule]:
    """The rules Vela runs on an op of ``kind`` for ``family`` ("u55" or "u85"), in its order."""
    out = list(_SHARED)
    if kind in WEIGHTED:
        out += _WEIGHTS
    out += ([const_params] if kind in CONST_PARAMS else []) + list(_BY_KIND.get(kind, ()))
    if family == "u55":
        out += [u55_zero_points] if kind not in _NO_ZERO_POINT_RULE[family] else []
        out += [] if kind in U55_32BIT else [_no_fm_of(32)]
        out += [_no_fm_of(64)] + list(_U55_BY_KIND.get(kind, ()))
    else:
        out += [u85_zero_points] if kind not in _NO_ZERO_POINT_RULE[family] else []
        out += list(_U85_BY_KIND.get(kind, ()))
    return out
