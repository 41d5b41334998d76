"""The block configuration of an op on Ethos-U55/U65, chosen as Vela 5.2.0 chooses it.

Ethos-U computes an op one OFM block at a time; the block (and the IFM block that feeds it) must fit the
shared buffer (SHRAM) with its input double-buffered and its accumulators double-buffered. Vela searches
every block that is a multiple of the OFM micro-block up to 32x64x128 and keeps the one with the least
IFM and weight fetch per output element (``ArchEthosU55::FindBlockConfig`` in
``ethosu/regor/architecture/ethosu55/ethos_u55.cpp``), with its own tie-break for small blocks. The
search is vectorised here, in float32 as Vela computes it, so that ties fall the same way; its results are
kept on disk (:func:`find_block_config`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from functools import cached_property, lru_cache
from pathlib import Path

from hwsim import cache as disk_cache
from hwsim.schedule.ethos_u.arch import (
    ACC32,
    ACC40,
    IFM8,
    IFM8_EW,
    IFM16,
    IFM16_EW,
    IFM32,
    SHRAM_ELEMENT_BITS,
    EthosUConfig,
)
from hwsim.schedule.ethos_u.geometry import Kernel, Shape, div_up, elements, required_input_size, round_up
from hwsim.schedule.ethos_u.value_ids import value_id

# Vela's EthosU55NpuOp: the hardware operation an op type runs as.
CONV, DEPTHWISE, POOLING, REDUCE_SUM, ELEMENTWISE, DMA, COMPOUND = (
    "conv",
    "depthwise",
    "pooling",
    "reduce_sum",
    "elementwise",
    "dma",
    "compound",
)
_HW_OP = {
    "DepthwiseConv2D": DEPTHWISE,
    "Conv2D": CONV,
    "FullyConnected": CONV,
    "MaxPool": POOLING,
    "AvgPool": POOLING,
    "SumPool": POOLING,
    "ReduceSum": REDUCE_SUM,
    "ReduceMax": POOLING,
    "Rescale": POOLING,
    "Transpose": COMPOUND,
    "MatMul": COMPOUND,
}
ELEMENTWISE_TYPES = frozenset(
    {"Add", "Sub", "Abs", "Mul", "Minimum", "Maximum", "LeakyRelu", "CLZ", "SHL", "Asr"}
)
ACTIVATION_TYPES = frozenset(
    {"Relu", "Relu0To1", "Relu6", "ReluN", "ReluN1To1", "Prelu", "Clamp", "Sigmoid", "Tanh", "LUT"}
)
# Ops the U55 runs as a 1x1 average-pool no-op (activations alone, copies, requantization).
_AVGPOOL_NOP = ACTIVATION_TYPES | {"Quantize", "MemoryCopy", "Reverse"}

SUBKERNEL_MAX = (8, 8)  # (width, height)
OFM_BLOCK_MAX = (32, 64, 128)  # (height, width, depth)
OFM_SPLIT_DEPTH = 16
BANK_BYTES = 1024
RESERVED_OUTPUT_BANKS = 2


def hw_op(op_type: str) -> str | None:
    """The U55/U65 hardware operation of a Vela op type, or None when the NPU cannot run it."""
    if op_type in _HW_OP:
        return _HW_OP[op_type]
    if op_type in ELEMENTWISE_TYPES:
        return ELEMENTWISE
    if op_type in _AVGPOOL_NOP:
        return POOLING
    return None


@dataclass(frozen=True)
class BlockConfig:
    """The chosen OFM and IFM blocks ``(h, w, c)``, traversal, accumulator width and IFM buffer size."""

    ofm_block: tuple[int, int, int]
    ifm_block: tuple[int, int, int]
    traversal: str  # "DepthFirst", "PartKernel" or "Depthwise"
    acc40: bool
    max_ifm_buffer_bytes: int
    prev: BlockConfig | None = None  # the elementwise-multiply config of a U55 MatMul
    ofm_ublock: tuple[int, int, int] | None = None  # U85: the OFM micro-block the op runs with
    acc48: bool = False  # U85: 48-bit accumulators (stored in 64 bits)

    @cached_property
    def key(self) -> int:
        """The fields' values (``prev`` as its key) as one id (:mod:`.value_ids`), made once: memo keys hash
        it in one step."""
        values = (getattr(self, f.name) for f in fields(self))
        return value_id(tuple(v.key if isinstance(v, BlockConfig) else v for v in values))

    def ofm4(self) -> Shape:
        """The OFM block as an NHWC shape."""
        return (1, *self.ofm_block)

    def ifm4(self) -> Shape:
        """The IFM block as an NHWC shape."""
        return (1, *self.ifm_block)


@dataclass(frozen=True)
class BlockQuery:
    """What the block search needs to know about an op (Vela's ``ArchitectureConfigQuery``)."""

    op_type: str
    ofm_shape: Shape
    ifm_shape: Shape
    ifm2_shape: Shape | None
    ifm_bits: int
    ofm_bits: int
    kernel: Kernel
    lut_bytes: int = 0
    scaled: bool = True
    upscale: int = 1
    rounding: int = 0
    transpose: str = "None"  # U85: the OFM's transpose (Vela's TransposeType name, e.g. "NWHC")
    reverse: str = "None"  # U85: the reversed OFM axis ("C", "W", "H") or "None"
    ofm_format: str = "NHWC"  # U85: the OFM layout ("NHCWB16" constrains transposed blocks)
    sparse_weights: bool = False  # U85: 2:4 sparse weights
    resize_scale_x: tuple[int, int] = (1, 1)  # U85 Resize: width scale as (numerator, denominator)


def _kernel_method_part(ifm_shape: Shape, ifm_bits: int, kernel: Kernel) -> bool:
    """Part-kernel traversal when it uses the MACs better than depth-first (Vela's ChooseKernelMethod)."""
    depth = ifm_shape[3]
    if depth <= 8:
        return True
    elems = kernel.area
    depth_util = depth / round_up(depth, 32 if ifm_bits == 8 else 16)
    part_util = (depth / round_up(depth, 8)) * (elems / round_up(elems, 4 if ifm_bits == 8 else 2))
    return part_util >= depth_util


def _ifm_block_size(ofm_h, ofm_w, kernel: Kernel, ublock_h: int, ublock_w: int, upscale: int, rounding: int):
    h = required_input_size(
        ofm_h, kernel.stride_y, min(kernel.dilated_h, SUBKERNEL_MAX[1]), upscale, rounding
    )
    w = required_input_size(
        ofm_w, kernel.stride_x, min(kernel.dilated_w, SUBKERNEL_MAX[0]), upscale, rounding
    )
    return round_up(h, ublock_h), round_up(w, ublock_w)


@lru_cache(maxsize=4096)
def find_block_config(arch: EthosUConfig, q: BlockQuery) -> BlockConfig:
    """The block config Vela chooses for ``q`` (U55/U65), including a MatMul's two-part config.

    Kept on disk as weight encodings are (:mod:`hwsim.cache`, keyed on the accelerator, the query and the
    search's source): a run that finds every op's config there searches none and imports no numpy.
    """
    key = f"{_code_digest()} {arch!r} {q!r}"
    stored = disk_cache.load("ethos_u_blocks", key)
    if stored is not None:
        return stored_block_config(stored)
    config = _find_block_config(arch, q)
    disk_cache.store("ethos_u_blocks", key, dataclasses.asdict(config))
    return config


@lru_cache(maxsize=1)
def _code_digest() -> str:
    """The search's own source, so that stored configs go stale when it changes."""
    return disk_cache.source_digest(__file__, Path(__file__).with_name("geometry.py"))


def stored_block_config(stored: dict) -> BlockConfig:
    """A :class:`BlockConfig` from its stored JSON (lists back to tuples, a MatMul's first config too)."""
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in stored.items()}
    if values["prev"] is not None:
        values["prev"] = stored_block_config(values["prev"])
    return BlockConfig(**values)


def _find_block_config(arch: EthosUConfig, q: BlockQuery) -> BlockConfig:
    if q.op_type == "MatMul":
        return _matmul_config(arch, q)
    if q.op_type == "MemoryCopy" and q.ifm_bits > 16:
        mult = 2 if q.ifm_bits == 32 else 4
        ifm, ofm = q.ifm_shape, q.ofm_shape
        return _search(
            arch,
            BlockQuery(
                q.op_type,
                (*ofm[:3], ofm[3] * mult),
                (*ifm[:3], ifm[3] * mult),
                None,
                16,
                16,
                q.kernel,
                q.lut_bytes,
                q.scaled,
                q.upscale,
                q.rounding,
            ),
        )
    return _search(arch, q)


def _dependency_fit(shape: Shape, min_size: int) -> Shape:
    """Split H (or W) in two or three when that leaves blocks of at least ``min_size``
    (MatMulDependencyFit)."""
    axis = 1 if shape[1] > OFM_BLOCK_MAX[0] else 2
    limit = OFM_BLOCK_MAX[axis - 1]
    if shape[axis] <= limit:
        for divider in (3, 2):
            if shape[axis] >= min_size * divider:
                out = list(shape)
                out[axis] = div_up(shape[axis], divider)
                return tuple(out)
    return shape


def _matmul_config(arch: EthosUConfig, q: BlockQuery) -> BlockConfig:
    batches = q.ofm_shape[1]
    ifm = _dependency_fit(q.ifm_shape, 4)
    mul = _search(
        arch, BlockQuery("Mul", ifm, ifm, (1, batches, 1, q.ifm2_shape[3]), q.ifm_bits, 32, Kernel())
    )
    red_ofm = _dependency_fit((1, batches, q.ifm_shape[2], 1), 4)
    red = _search(
        arch,
        BlockQuery(
            "ReduceSum",
            red_ofm,
            ifm,
            (1, batches, 1, q.ifm2_shape[3]),
            32,
            q.ofm_bits,
            Kernel(),
            scaled=q.scaled,
        ),
    )
    return BlockConfig(red.ofm_block, red.ifm_block, red.traversal, red.acc40, red.max_ifm_buffer_bytes, mul)


def _search(arch: EthosUConfig, q: BlockQuery) -> BlockConfig:
    import numpy as np  # here only: a run that finds its configs on disk needs none

    op = hw_op(q.op_type)
    if op is None:
        raise ValueError(f"Ethos-U55/U65 cannot run {q.op_type}")
    if op == COMPOUND and q.op_type == "MatMul":
        op = REDUCE_SUM
    ifm_shape = (
        q.ifm2_shape if q.ifm2_shape and elements(q.ifm2_shape) > elements(q.ifm_shape) else q.ifm_shape
    )
    ew_usage = 0
    if op == ELEMENTWISE:
        scalar = elements(q.ifm_shape) == 1 or (q.ifm2_shape is not None and elements(q.ifm2_shape) == 1)
        ew_usage = 2 if scalar and q.ifm_bits <= 16 else 1
    is_pooling = op in (POOLING, REDUCE_SUM)
    is_reduce_sum = op == REDUCE_SUM
    is_depthwise = op == DEPTHWISE
    equal_depth = ew_usage != 0 or (is_pooling and not is_reduce_sum) or is_depthwise
    part_kernel = op == CONV and _kernel_method_part(ifm_shape, q.ifm_bits, q.kernel)
    traversal = "Depthwise" if is_depthwise else ("PartKernel" if part_kernel else "DepthFirst")
    acc40 = q.ifm_bits == 16 and (not is_pooling or is_reduce_sum) and q.scaled
    acc_kind = ACC40 if acc40 else ACC32
    acc_granule, acc_bits = arch.shram_granules[acc_kind], SHRAM_ELEMENT_BITS[acc_kind]
    width_index = q.ifm_bits // 8 - 1
    ifm_granule = arch.shram_granules[
        (IFM8_EW, IFM16_EW, None, IFM32)[width_index] if ew_usage else (IFM8, IFM16, None, IFM32)[width_index]
    ]
    reserved_end = 2 if arch.shram_banks > 16 else 0
    lut_banks = max(div_up(q.lut_bytes, BANK_BYTES), reserved_end)
    ifm_repeats = div_up(q.kernel.dilated_w, SUBKERNEL_MAX[0]) * div_up(q.kernel.dilated_h, SUBKERNEL_MAX[1])
    if q.ifm_bits == 16:
        ifm_block_depth = round_up(min(ifm_shape[3], 16), 4)
    else:
        ifm_block_depth = round_up(min(ifm_shape[3], 16 if part_kernel else 32), arch.ifm_ublock[2])
    weight_wh = q.kernel.area if op in (CONV, DEPTHWISE) else 0
    uh, uw, ud = arch.ofm_ublock
    ofm = q.ofm_shape
    space_h = round_up(min(ofm[1], OFM_BLOCK_MAX[0]), uh)
    space_w = round_up(min(ofm[2], OFM_BLOCK_MAX[1]), uw)
    space_d = round_up(min(ofm[3], OFM_BLOCK_MAX[2]), ud)
    depths = []
    depth = max(ud, min(space_d, OFM_SPLIT_DEPTH))
    if depth < ofm[3]:
        depth = round_up(depth, OFM_SPLIT_DEPTH)
    while depth <= space_d:
        depths.append(depth)
        depth += ud
        if depth < ofm[3]:
            depth = round_up(depth, OFM_SPLIT_DEPTH)
    hs = np.arange(uh, space_h + 1, uh)
    ws = np.arange(uw, space_w + 1, uw)
    if not depths or not len(hs) or not len(ws):
        raise ValueError(f"no block config for {q.op_type} {ofm}")
    D, H, W = np.meshgrid(np.array(depths), hs, ws, indexing="ij")
    D, H, W = D.ravel(), H.ravel(), W.ravel()
    stride_y, stride_x = q.kernel.stride_y, q.kernel.stride_x
    ih = np.ceil(
        ((H - 1) * stride_y + min(q.kernel.dilated_h, SUBKERNEL_MAX[1]) + q.rounding) / q.upscale
    ).astype(np.int64)
    iw = np.ceil(
        ((W - 1) * stride_x + min(q.kernel.dilated_w, SUBKERNEL_MAX[0]) + q.rounding) / q.upscale
    ).astype(np.int64)
    ih = -(-ih // uh) * uh
    iw = -(-iw // uw) * uw
    idepth = D if equal_depth else np.full_like(D, ifm_block_depth)
    fit_h = H
    if ofm[1] == 1 and q.kernel.h == 1 and uh == 2:  # the Conv1D optimisation of 256/512-MAC configs
        fit_h = np.minimum(H, ofm[1])
    # SHRAM fit (TryBlockConfig)
    ifm_bytes = ih * iw * (-(-(idepth * (q.ifm_bits // 8)) // 8) * 8)
    ifm_banks = -(-ifm_bytes // BANK_BYTES) * 2
    ifm_banks = -(-ifm_banks // ifm_granule) * ifm_granule
    lut_start = arch.shram_banks - lut_banks
    ifm_end = RESERVED_OUTPUT_BANKS + ifm_banks
    if ew_usage == 0:
        acc_bytes = (fit_h * W * (-(-D // 8) * 8) * acc_bits) // 8
        acc_banks = -(-acc_bytes // BANK_BYTES) * 2
        acc_banks = -(-acc_banks // acc_granule) * acc_granule
        acc_start = lut_start - acc_banks
        fits = ifm_end <= acc_start
        ib_end = ifm_end
    else:
        ifm2_banks = ifm_banks if ew_usage == 1 else 0
        acc_start = np.full_like(ifm_end, lut_start)
        fits = ifm_end + ifm2_banks <= acc_start
        ib_end = acc_start
    if not fits.any():
        raise ValueError(f"no block config fits SHRAM for {q.op_type} {ofm}")
    # Cost per output element, in float32 as Vela computes it
    f32 = np.float32
    on, oh, ow, oc = ofm
    full_wh = (-(-oh // fit_h)) * (-(-ow // W))
    full_d = -(-oc // D)
    bx = (f32(ow) / W.astype(f32)).astype(f32)  # Vela's HWC() point is (W, H, C)
    by = (f32(oh) / fit_h.astype(f32)).astype(f32)
    bz = (f32(oc) / D.astype(f32)).astype(f32)
    if op == ELEMENTWISE:
        cost = (f32(elements(ofm)) / (H * W * D).astype(f32)).astype(f32)
    else:
        weight_fetch = (weight_wh * ifm_shape[3] * full_wh).astype(f32)
        if not is_depthwise:
            weight_fetch = (weight_fetch * (bz * D.astype(f32)).astype(f32)).astype(f32)
        ifm_fetch = ((ih * iw * ifm_shape[3] * ifm_repeats).astype(f32) * bx).astype(f32)
        ifm_fetch = (ifm_fetch * by).astype(f32)
        if not equal_depth:
            ifm_fetch = (ifm_fetch * full_d.astype(f32)).astype(f32)
        cost = ((ifm_fetch + weight_fetch).astype(f32) / f32(elements(ofm))).astype(f32)
    halve = elements(ifm_shape) < ih * iw * idepth * 2
    cost = np.where(halve, (cost / f32(2.0)).astype(f32), cost)
    cost = np.where(fits, cost, np.inf)
    best = cost.min()
    ties = np.flatnonzero(cost == best)
    choice = ties[0]
    best_coverage = np.inf
    for i in ties[1:]:
        if H[i] <= 4 and W[i] <= 4:
            cov_h, cov_w = min(ifm_shape[1], ih[i]), min(ifm_shape[2], iw[i])
            coverage = f32(ifm_shape[1] * ifm_shape[2]) / f32(max(cov_h * cov_w, 1))
            if coverage <= best_coverage:
                best_coverage = coverage
                choice = i
    ifm_block = (int(ih[choice]), int(iw[choice]), int(idepth[choice]))
    max_ifm = int(ib_end[choice] - RESERVED_OUTPUT_BANKS) * BANK_BYTES
    return BlockConfig((int(H[choice]), int(W[choice]), int(D[choice])), ifm_block, traversal, acc40, max_ifm)
