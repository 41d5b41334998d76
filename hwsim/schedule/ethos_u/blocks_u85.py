"""The block configuration of an op on Ethos-U85, chosen as Vela 5.2.0 chooses it.

The U85 picks an OFM micro-block per op (the one that wastes the fewest output elements among those
valid for the op and its input precision), then searches an OFM block in one of four ways
(``ArchEthosU85::FindBlockConfig`` in ``ethosu/regor/architecture/ethosu85/ethos_u85.cpp``, lines 907-1225):

* **elementwise** ops fill the output and chaining buffers by rule, without a search
(``FindElementwiseConfig``);
* **depthwise, pooling and reduce-sum** ops fit an area of the OFM's aspect into the accumulator and
  IFM RAMs, depth by depth, and keep the best-shaped fit (``AreaFit``, ``FindDepthwiseConfig``);
* **everything else** (convolution, fully connected, MatMul, copies, resize) searches every block on the
  micro-block grid up to 128x128x1024 for the least IFM and weight fetch per output element, in float32
  as Vela computes it, so that ties fall the same way; blocks must fit the IFM RAM and the accumulator
  RAM twice over (once, if nothing fits twice).

Blocks of ops whose OFM is transposed are searched in the unpermuted (IFM-ordered) space. The chosen
configs are kept on disk as the U55/U65 ones are (:func:`find_block_config`), and numpy is imported only
to search.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import fields
from functools import lru_cache
from pathlib import Path

from hwsim import cache as disk_cache
from hwsim.schedule.ethos_u.arch_u85 import (
    ARGMAX,
    CONV,
    DEPTHWISE,
    ELEMENTWISE,
    MATMUL,
    POOL,
    REDUCE_MINMAX,
    REDUCE_SUM,
    RESIZE,
    Block,
    EthosU85Config,
)
from hwsim.schedule.ethos_u.blocks import BlockConfig, BlockQuery, stored_block_config
from hwsim.schedule.ethos_u.geometry import Kernel, Shape, div_up, elements, round_up

DMA, BRANCH = "dma", "branch"
_HW_OP = {
    "DepthwiseConv2D": DEPTHWISE,
    "Conv2D": CONV,
    "ReduceSum": REDUCE_SUM,
    "FullyConnected": CONV,
    "MatMul": CONV,
    "MaxPool": POOL,
    "AvgPool": POOL,
    "SumPool": POOL,
    "NullPool": POOL,
    "QuantizedAvgPool": POOL,
    "QuantizedMaxPool": POOL,
    "ArgMax": ARGMAX,
    "ReduceMin": REDUCE_MINMAX,
    "ReduceMax": REDUCE_MINMAX,
    "ReduceAny": REDUCE_MINMAX,
    "ReduceAll": REDUCE_MINMAX,
    "Resize": RESIZE,
    "Gather": DMA,
    "Scatter": DMA,
    "If": BRANCH,
    "While": BRANCH,
}
# The elementwise modes of the U85's command stream (s_ElementwiseMap, ethos_u85_register_cs_generator.cpp).
ELEMENTWISE_TYPES = frozenset(
    {
        "Add",
        "Sub",
        "Abs",
        "Mul",
        "Minimum",
        "Maximum",
        "LeakyRelu",
        "CLZ",
        "SHL",
        "SHR",
        "Div",
        "LogicalAnd",
        "LogicalOr",
        "LogicalXor",
        "LogicalNot",
        "And",
        "Or",
        "Xor",
        "Not",
        "Asr",
        "Equal",
        "Greater",
        "GreaterEqual",
        "NotEqual",
        "AndNot",
    }
)
ACTIVATION_TYPES = frozenset(
    {"Relu", "Relu0To1", "Relu6", "ReluN", "ReluN1To1", "Prelu", "Clamp", "Sigmoid", "Tanh", "LUT"}
)
# Ops the U85 runs as a 1x1 average-pool no-op; with 32-bit or wider data some run as a "null pool".
_AVGPOOL_NOP = ACTIVATION_TYPES | {"Quantize", "MemoryCopy", "Transpose", "Reverse", "Rescale"}
_NULL_POOL = frozenset({"NullPool", "MemoryCopy", "Rescale", "Transpose", "Reverse"})

SUBKERNEL_MAX = (8, 8)  # (width, height)
OFM_BLOCK_MAX = (128, 128, 1024)  # (height, width, depth)
OFM_SPLIT_DEPTH = 16
ACC_DEPTH_GRANULE = 16
BRICK_ELEMENTS = 16
CHAINING_BUFFER_SLOTS = 6

# Vela's TransposeType: the source axis of each output axis, 4 bits per axis with depth in the lowest.
TRANSPOSE_MASKS = {
    "None": 0x76543210,
    "NWHC": 0x76543120,
    "NHCW": 0x76543201,
    "NWCH": 0x76543102,
    "NCHW": 0x76543021,
    "NCWH": 0x76543012,
}


def hw_op(op_type: str) -> str | None:
    """The U85 hardware operation of a Vela op type (``ArchEthosU85::GetHWOp``), or None if the NPU cannot
    run it."""
    if op_type in _HW_OP:
        return _HW_OP[op_type]
    if op_type in ELEMENTWISE_TYPES:
        return ELEMENTWISE
    if op_type in _AVGPOOL_NOP:
        return POOL
    return None


def uses_null_pool(op_type: str, ifm_bits: int) -> bool:
    """Copies and transposes of 32-bit data run as a null pool reading through IFM2 (``UseNullPool``)."""
    return op_type in _NULL_POOL and ifm_bits >= 32


def unpermute(shape: tuple[int, ...], transpose: str) -> tuple[int, ...]:
    """A transposed OFM shape mapped back to the axis order of its IFM (Vela's ``Shape::Unpermute``)."""
    mask = TRANSPOSE_MASKS[transpose]
    src = shape[::-1]  # depth first, as Vela stores shapes
    out = [0] * len(shape)
    for axis, size in enumerate(src):
        out[(mask >> (4 * axis)) & 0xF] = size
    return tuple(out[::-1])


def _ublock_valid(
    arch: EthosU85Config, op_type: str, ifm_bits: int, ublock: Block, depth_first_1x1: bool
) -> bool:
    """Whether ``ublock`` runs this op at this input precision (``IsUBlockValid``)."""
    op = hw_op(op_type)
    if op is None:
        return False
    if uses_null_pool(op_type, ifm_bits):
        ifm_bits = 8  # the IFM slot is unused; the data comes in through IFM2
    by_bits = arch.ublock_ops[arch.ofm_ublocks.index(ublock)]
    if ifm_bits // 16 >= len(by_bits):
        return False
    if (
        op == CONV
        and not depth_first_1x1
        and ((arch.macs == 128 and ublock == (1, 1, 16)) or (arch.macs == 256 and ublock == (1, 2, 16)))
    ):
        return False
    return (MATMUL if op_type == "MatMul" else op) in by_bits[ifm_bits // 16]


def find_ublock(
    arch: EthosU85Config, op_type: str, ifm_bits: int, ofm_shape: Shape, kernel: Kernel, part_kernel: bool
) -> Block | None:
    """The valid OFM micro-block that wastes the fewest output elements, first in Vela's order on ties."""
    depth_first_1x1 = kernel.w == 1 and kernel.h == 1 and not part_kernel
    best, best_waste = None, None
    for ublock in arch.ofm_ublocks:
        if not _ublock_valid(arch, op_type, ifm_bits, ublock, depth_first_1x1):
            continue
        waste = math.prod(round_up(a, b) for a, b in zip(ofm_shape[1:], ublock)) - elements(ofm_shape)
        if best_waste is None or waste < best_waste:
            best, best_waste = ublock, waste
    return best


def kernel_first(ifm_depth: int, kernel: Kernel, sparse: bool) -> bool:
    """Part-kernel-first traversal when it uses the MACs at least as well as depth-first
    (``ChooseKernelFirst``)."""
    k = kernel.area
    step, minimum = (10, 4) if sparse else (5, 2)
    k_rounded = (k // step) * step + max(k % step, minimum)
    kernel_first_util = ifm_depth / round_up(ifm_depth, 16) * (k / k_rounded)
    depth_first_util = ifm_depth / round_up(ifm_depth, 128 if sparse else 64)
    return kernel_first_util >= depth_first_util


def ifm_alloc_unit(arch: EthosU85Config, ifm_block_depth: int, ifm_bits: int, ublock: Block) -> Block:
    """The IFM allocation unit: it depends on the micro-block and on how many 128-bit words a column fills."""
    column_bits = ifm_block_depth * ifm_bits
    words = 2 if column_bits > 256 else (1 if column_bits > 128 else 0)
    h, w, d = arch.ublock_ifm_alloc[arch.ofm_ublocks.index(ublock)][words]
    return (h, w, d * 128 // ifm_bits)


def _ifm_block(ofm_block: Block, kernel: Kernel, alloc: Block, ifm_block_depth: int) -> Block:
    """The IFM block that feeds ``ofm_block``, rounded to the allocation unit (``GetArchIFMBlockSize``)."""
    h = (ofm_block[0] - 1) * kernel.stride_y + min(kernel.dilated_h, SUBKERNEL_MAX[1])
    w = (ofm_block[1] - 1) * kernel.stride_x + min(kernel.dilated_w, SUBKERNEL_MAX[0])
    return (round_up(h, alloc[0]), round_up(w, alloc[1]), round_up(ifm_block_depth or ofm_block[2], alloc[2]))


def _granular_tile(size: int, granule: int, tile: int) -> int:
    """``tile``, or the granule-rounded size of one more tile than fit, when tiles do not divide ``size``."""
    if size % tile == 0:
        return tile
    return max(round_up(size // (size // tile + 1), granule), granule)


def _reapportion(value: int, limit: int, avail: int, required: int) -> tuple[int, int]:
    """Multiply ``value`` by what ``avail`` can spare above ``required`` (at least 2x), dividing ``avail``
    by it."""
    excess = min(avail // required, limit // value)
    if excess >= 2:
        return value * excess, avail // excess
    return value, avail


def _elementwise_block(
    arch: EthosU85Config, q: BlockQuery, ofm_shape: Shape, ublock: Block, granule: Block, block_max: Block
) -> Block:
    """Elementwise ops fill the output buffer, or the chaining buffer if an IFM broadcasts
    (FindElementwiseConfig)."""
    ofm = tuple(round_up(a, g) for a, g in zip(ofm_shape[1:], granule))
    limit = tuple(min(a, b) for a, b in zip(ofm, block_max))
    scalar = elements(q.ifm_shape) == 1 or (q.ifm2_shape is not None and elements(q.ifm2_shape) == 1)
    cb_bricks = (arch.cb_ram_bytes // CHAINING_BUFFER_SLOTS) // (BRICK_ELEMENTS * (q.ifm_bits // 8))
    ob_width_units = (arch.ob_ram_bytes * 8) // q.ifm_bits // granule[2]
    cb_width_units = cb_bricks // ublock[0]
    h_limit = _granular_tile(ofm[0], granule[0], limit[0])
    w_required = max(_granular_tile(ofm[1], granule[1], min(ob_width_units, limit[1])), granule[1])
    c_limit, w_limit = _reapportion(granule[2], limit[2], ob_width_units, w_required)
    if not scalar and q.ifm2_shape is not None:
        less = [a < b for i in (q.ifm_shape, q.ifm2_shape) for a, b in zip(i, ofm_shape)]
        depth_bc, width_bc, height_bc = (less[3] or less[7]), (less[2] or less[6]), (less[1] or less[5])
        batch_bc = less[0] or less[4]
        if depth_bc:
            c_limit = _granular_tile(ofm[2], granule[2], limit[2])
            w_limit = cb_width_units
            if not (width_bc or height_bc or batch_bc):
                h_limit, w_limit = _reapportion(ublock[0], limit[0], w_limit, w_required)
        elif height_bc:
            c_limit, w_limit = _reapportion(BRICK_ELEMENTS, limit[2], cb_width_units, w_required)
    return (round_up(h_limit, granule[0]), round_up(w_limit, granule[1]), round_up(c_limit, granule[2]))


def _best_tile(size: int, granule: int, tile: int) -> int:
    """A tile near ``tile`` (down to about half) that leaves the largest last tile (``BestTile``)."""
    if size % tile == 0:
        return tile
    tile2 = max(round_up(size // (size // tile + 1), granule), granule)
    best, best_rem = tile, size % tile
    first = max(max(tile2 - granule * 2, (tile2 + 1) // 2), granule)
    for t in range(tile, first - 1, -granule):
        rem = size % t or t
        if rem > best_rem:
            best, best_rem = t, rem
    return best


def _area_fit(
    arch: EthosU85Config,
    ofm: Block,
    limit: Block,
    ifm_shape: Shape,
    kernel: Kernel,
    ublock: Block,
    granule: Block,
    acc_bits: int,
    ifm_bits: int,
    ifm_block_depth: int,
) -> Block | None:
    """The OFM block of the OFM's aspect that best fills the accumulator and IFM RAMs (``AreaFit``).

    Every candidate depth (multiples of 16) shrinks its area in steps until both RAMs hold it; the
    depths run in lock-step as numpy arrays, then the best-shaped fit is picked in Vela's depth order.
    """
    import numpy as np  # here only: a run that finds its configs on disk needs none

    acc_elems = (arch.acc_ram_bytes * 8) // acc_bits
    ib_elems = (arch.ifm_ram_bytes * 8) // ifm_bits
    ub_acc = ublock[0] * ublock[1] * ACC_DEPTH_GRANULE
    aspect = ofm[0] / ofm[1]
    depth_priority = kernel.dilated_w == 1 and kernel.dilated_h == 1
    max_depth = min(max(arch.macs, acc_elems // ub_acc), limit[2])
    depths = np.arange(ACC_DEPTH_GRANULE, max_depth + 1, ACC_DEPTH_GRANULE, dtype=np.int64)
    if not len(depths):
        return None
    alloc = np.array([ifm_alloc_unit(arch, ifm_block_depth or int(d), ifm_bits, ublock) for d in depths])
    ifm_volume = np.array([math.prod(round_up(a, b) for a, b in zip(ifm_shape[1:], au)) for au in alloc])
    gh, gw = granule[0], granule[1]
    n = len(depths)
    fit_acc = np.full(n, acc_elems, dtype=np.int64)
    active = np.ones(n, dtype=bool)
    fitted = np.zeros(n, dtype=bool)
    out_h = np.zeros(n, dtype=np.int64)
    out_w = np.zeros(n, dtype=np.int64)
    prev_req = np.full(n, -1, dtype=np.int64)
    retry = np.full(n, 25, dtype=np.int64)
    while active.any():
        # FitAreaByAspect
        w_f = np.sqrt((fit_acc // depths) / aspect)
        h_f = w_f * aspect
        small_h = h_f < 1.0
        small_w = ~small_h & (w_f < 1.0)
        w_f, h_f = np.where(small_h, w_f * h_f, w_f), np.where(small_h, 1.0, h_f)
        h_f, w_f = np.where(small_w, h_f * w_f, h_f), np.where(small_w, 1.0, w_f)
        width = np.maximum(w_f.astype(np.int64), gw) // gw * gw
        height = np.maximum(h_f.astype(np.int64), gh) // gh * gh
        width = np.minimum(width, limit[1])
        height = np.minimum(height, limit[0])
        area = width * height
        width = np.array([_best_tile(ofm[1], gw, int(w)) if w < ofm[1] else int(w) for w in width])
        height = np.maximum((area // width) // gh * gh, gh)
        acc_req = width * height * depths
        ab_ratio = acc_elems / acc_req
        ih = (height - 1) * kernel.stride_y + min(kernel.dilated_h, SUBKERNEL_MAX[1])
        iw = (width - 1) * kernel.stride_x + min(kernel.dilated_w, SUBKERNEL_MAX[0])
        ih = -(-ih // alloc[:, 0]) * alloc[:, 0]
        iw = -(-iw // alloc[:, 1]) * alloc[:, 1]
        idepth = ifm_block_depth if ifm_block_depth else depths
        idepth = -(-idepth // alloc[:, 2]) * alloc[:, 2]
        ib_req = np.minimum(ih * iw * idepth, ifm_volume)
        ib_ratio = ib_elems / ib_req
        ok = active & (ab_ratio >= 1.0) & (ib_ratio >= 1.0)
        out_h = np.where(ok, height, out_h)
        out_w = np.where(ok, width, out_w)
        fitted |= ok
        active &= ~ok
        same = active & (acc_req == prev_req)
        retry = np.where(same, retry - 1, retry)
        ib_ratio = np.where(same & (retry <= 0), 0.9, ib_ratio)
        prev_req = np.where(active, acc_req, prev_req)
        fit_acc = np.where(
            active & (ib_ratio < 1.0) & (ab_ratio > 1.0), np.minimum(fit_acc, acc_req), fit_acc
        )
        ratio = np.minimum(ib_ratio, ab_ratio)
        new_acc = np.maximum((fit_acc // ub_acc * ratio).astype(np.int64), 0) * ub_acc
        new_acc = np.where(new_acc == fit_acc, fit_acc - ub_acc, new_acc)
        active &= new_acc >= ub_acc
        fit_acc = np.where(active, new_acc, fit_acc)
    ofm_area = ofm[1] * ofm[2] if depth_priority else ofm[0] * ofm[1]
    best, best_metric = None, math.inf
    for i, depth in enumerate(depths.tolist()):
        if not fitted[i]:
            break
        h, w = int(out_h[i]), int(out_w[i])
        ifm_granule = int(alloc[i, 2])
        used = depth % ifm_granule or ifm_granule
        waste = 1.0 + ((ifm_granule - used) / ifm_granule) / 10
        fit = 1.0 + abs(1.0 - limit[2] / depth) / 10
        coverage = 1.0 + abs(1.0 - ofm_area / (w * (depth if depth_priority else h)))
        metric = coverage * fit * waste
        if metric < best_metric:
            best, best_metric = (h, w, depth), metric
            if depth >= ofm[2] and w >= ofm[1] and h >= ofm[0]:
                return ofm
    return best


def _depthwise_block(
    arch: EthosU85Config,
    q: BlockQuery,
    ofm_shape: Shape,
    ublock: Block,
    granule: Block,
    block_max: Block,
    acc_bits: int,
    ifm_block_depth: int,
) -> tuple[Block, Block]:
    """Depthwise, pooling and reduce-sum ops: the area fit, shrunk until one more IFM row can be buffered."""
    ofm = tuple(round_up(a, g) for a, g in zip(ofm_shape[1:], granule))
    limit = tuple(min(a, b) for a, b in zip(ofm, block_max))
    ib_elems = (arch.ifm_ram_bytes * 8) // q.ifm_bits
    fit = _area_fit(
        arch, ofm, limit, q.ifm_shape, q.kernel, ublock, granule, acc_bits, q.ifm_bits, ifm_block_depth
    )
    if fit is None:
        raise ValueError(f"no Ethos-U85 block config fits {q.op_type} {q.ofm_shape}")
    height, width, depth = fit
    force = 0
    while True:
        alloc = ifm_alloc_unit(arch, ifm_block_depth or depth, q.ifm_bits, ublock)
        ifm_block = _ifm_block((height, width, depth), q.kernel, alloc, ifm_block_depth)
        required = elements(ifm_block)
        if width < ofm[1] or height < ofm[0] or depth < ofm[2]:
            row = _ifm_block((granule[0], width, depth), q.kernel, alloc, ifm_block_depth)
            if ib_elems - required < elements(row):  # no room to pre-buffer one more row granule
                if (height != ofm[0] or force & 2) and height > granule[0]:
                    height -= granule[0]
                elif (depth > width or force & 1) and depth > granule[2]:
                    depth -= granule[2]
                elif (width != ofm[1] or force & 4) and width > granule[1]:
                    width -= granule[1]
                elif force != 7:
                    force = (force << 1) | 1
                elif depth > granule[2]:
                    depth = max(depth // 2, granule[2])
                else:
                    break
                continue
        break
    return (height, width, depth), ifm_block


def _resize_max_width(arch: EthosU85Config, ifm_bits: int, scale_n: int, scale_d: int) -> int:
    """The widest OFM block whose IFM still fits one chaining-buffer slot (``CalcResizeMaxOfmBlockWidth``)."""
    cb_bricks = (arch.cb_ram_bytes // CHAINING_BUFFER_SLOTS) // (BRICK_ELEMENTS * (ifm_bits // 8))
    width = math.ceil(((cb_bricks - 2) * scale_n + 1) / scale_d)
    return max(1, min(width, OFM_BLOCK_MAX[1]))


@lru_cache(maxsize=4096)
def find_block_config(arch: EthosU85Config, q: BlockQuery) -> BlockConfig:
    """The block config Vela chooses for ``q`` on an Ethos-U85 (``ArchEthosU85::FindBlockConfig``).

    ``q.ofm_shape`` is the OFM as stored (after any transpose); the search runs on its unpermuted shape.
    Kept on disk (:mod:`hwsim.cache`, keyed on the accelerator's values, the query and the search's
    source): a run that finds every op's config there searches none and imports no numpy.
    """
    key = f"{_code_digest()} {_arch_key(arch)} {q!r}"
    stored = disk_cache.load("ethos_u85_blocks", key)
    if stored is not None:
        return stored_block_config(stored)
    config = _find_block_config(arch, q)
    disk_cache.store("ethos_u85_blocks", key, dataclasses.asdict(config))
    return config


@lru_cache(maxsize=1)
def _code_digest() -> str:
    """The search's own source and the modules it reads, so that stored configs go stale when they
    change."""
    here = Path(__file__).parent
    return disk_cache.source_digest(__file__, here / "arch_u85.py", here / "blocks.py", here / "geometry.py")


@lru_cache(maxsize=16)
def _arch_key(arch: EthosU85Config) -> str:
    """The accelerator's values as text that is the same in every process (its sets sorted: a frozenset's
    ``repr`` follows string hashes, which differ from run to run)."""

    def canonical(value):
        if isinstance(value, frozenset):
            return tuple(sorted(value))
        if isinstance(value, tuple):
            return tuple(canonical(v) for v in value)
        return value

    return repr(canonical(tuple(getattr(arch, f.name) for f in fields(arch))))


def _find_block_config(arch: EthosU85Config, q: BlockQuery) -> BlockConfig:
    op = hw_op(q.op_type)
    if op is None or op in (DMA, BRANCH):
        raise ValueError(f"Ethos-U85 has no block config for {q.op_type}")
    ofm_shape = unpermute(q.ofm_shape, q.transpose)
    ifm_shape = (
        q.ifm2_shape if q.ifm2_shape and elements(q.ifm2_shape) > elements(q.ifm_shape) else q.ifm_shape
    )
    pooling = op in (POOL, REDUCE_MINMAX, ARGMAX)
    acc48 = (
        (q.ifm_bits == 16 and not pooling and op != REDUCE_SUM and q.scaled)
        or q.ifm_bits > 32
        or q.ofm_bits > 32
    )
    acc_bits = 64 if acc48 else 32
    part_kernel = (
        op == CONV and q.ifm2_shape is None and kernel_first(ifm_shape[3], q.kernel, q.sparse_weights)
    )
    ublock = find_ublock(arch, q.op_type, q.ifm_bits, ofm_shape, q.kernel, part_kernel)
    if ublock is None:
        raise ValueError(f"no Ethos-U85 micro-block runs {q.op_type} with {q.ifm_bits}-bit input")
    granule = [ublock[0], ublock[1], ACC_DEPTH_GRANULE]
    if q.ofm_format == "NHCWB16":
        source_of_depth = TRANSPOSE_MASKS[q.transpose] & 0xF
        if source_of_depth == 1:
            granule[1] = 16
        elif source_of_depth == 2:
            granule[0] = 16
    granule = tuple(granule)
    block_max = unpermute(OFM_BLOCK_MAX, q.transpose)
    if q.reverse == "C":
        block_max = (block_max[0], block_max[1], granule[2])

    def config(ofm_block: Block, ifm_block: Block, traversal: str = "DepthFirst") -> BlockConfig:
        return BlockConfig(ofm_block, ifm_block, traversal, False, arch.ifm_ram_bytes, None, ublock, acc48)

    if op == ELEMENTWISE:
        block = _elementwise_block(arch, q, ofm_shape, ublock, granule, block_max)
        return config(block, block)
    if op == DEPTHWISE:
        return config(
            *_depthwise_block(arch, q, ofm_shape, ublock, granule, block_max, acc_bits, 0), "Depthwise"
        )
    ifm_block_depth = 64
    if part_kernel:
        ifm_block_depth = 16
    elif q.ifm_bits == 32 or (arch.macs in (128, 256) and ublock[2] == 16 and not q.sparse_weights):
        ifm_block_depth = 32
    elif q.sparse_weights and q.ifm_bits == 8:
        ifm_block_depth = 128
    if (pooling or op == REDUCE_SUM) and q.op_type != "MemoryCopy":
        depth = ifm_block_depth if op == REDUCE_SUM else 0
        return config(*_depthwise_block(arch, q, ofm_shape, ublock, granule, block_max, acc_bits, depth))
    traversal = "PartKernel" if part_kernel else "DepthFirst"
    ofm_block, ifm_block = _search(
        arch, q, op, ofm_shape, ifm_shape, ublock, granule, block_max, acc_bits, ifm_block_depth, pooling
    )
    return config(ofm_block, ifm_block, traversal)


def _search(
    arch: EthosU85Config,
    q: BlockQuery,
    op: str,
    ofm_shape: Shape,
    ifm_shape: Shape,
    ublock: Block,
    granule: Block,
    block_max: Block,
    acc_bits: int,
    ifm_block_depth: int,
    pooling: bool,
) -> tuple[Block, Block]:
    """Every block on the micro-block grid, costed by IFM and weight fetch per OFM element (lines
    1030-1225)."""
    import numpy as np  # here only: a run that finds its configs on disk needs none

    resize = op == RESIZE
    equal_depth = pooling or resize  # elementwise and depthwise ops never get here
    step = [max(a, b) for a, b in zip(ublock, granule)]
    end = [round_up(max(min(a, b), s), u) for a, b, s, u in zip(ofm_shape[1:], block_max, step, ublock)]
    if resize:
        max_w = _resize_max_width(arch, q.ifm_bits, *q.resize_scale_x)
        step = [1, min(step[1], max_w), step[2]]
        end = [1, max_w, 16]
    if q.reverse == "C":
        end[2] = min(end[2], 16)
    depths = []
    depth = max(ublock[2], min(end[2], OFM_SPLIT_DEPTH))
    if depth < ofm_shape[3]:
        depth = round_up(depth, OFM_SPLIT_DEPTH)
    while depth <= end[2]:
        depths.append(depth)
        depth += ublock[2]
        if depth < ofm_shape[3]:
            depth = round_up(depth, OFM_SPLIT_DEPTH)
    hs = np.arange(step[0], end[0] + 1, step[0])
    ws = np.arange(step[1], end[1] + 1, step[1])
    if not depths or not len(hs) or not len(ws):
        raise ValueError(f"no Ethos-U85 block config for {q.op_type} {q.ofm_shape}")
    depth_index, H, W = (a.ravel() for a in np.meshgrid(np.arange(len(depths)), hs, ws, indexing="ij"))
    D = np.array(depths)[depth_index]
    idepth = D if equal_depth else np.full_like(D, ifm_block_depth)
    units = [ifm_alloc_unit(arch, d if equal_depth else ifm_block_depth, q.ifm_bits, ublock) for d in depths]
    alloc = np.array(units)[depth_index]
    kernel, upscale, rounding = q.kernel, q.upscale, q.rounding
    ih = -(-((H - 1) * kernel.stride_y + min(kernel.dilated_h, SUBKERNEL_MAX[1]) + rounding) // upscale)
    iw = -(-((W - 1) * kernel.stride_x + min(kernel.dilated_w, SUBKERNEL_MAX[0]) + rounding) // upscale)
    ih = -(-ih // alloc[:, 0]) * alloc[:, 0]
    iw = -(-iw // alloc[:, 1]) * alloc[:, 1]
    id_rounded = -(-idepth // alloc[:, 2]) * alloc[:, 2]
    for blocks_in_ram in (2, 1):  # double-buffered if anything fits so, else single
        if op == RESIZE:
            fits = np.ones(len(D), dtype=bool)
        else:
            ib_depth = D if equal_depth else np.minimum(id_rounded, ifm_shape[3])
            ib_depth = -(-ib_depth // alloc[:, 2]) * alloc[:, 2]
            ifm_bytes = ih * iw * ib_depth * (q.ifm_bits // 8) * blocks_in_ram
            acc_bytes = (
                (H * W * (-(-D // ACC_DEPTH_GRANULE) * ACC_DEPTH_GRANULE) * acc_bits) // 8 * blocks_in_ram
            )
            fits = (ifm_bytes <= arch.ifm_ram_bytes) & (acc_bytes <= arch.acc_ram_bytes)
        if fits.any():
            break
    else:
        raise ValueError(f"no Ethos-U85 block config fits {q.op_type} {q.ofm_shape}")
    f32 = np.float32
    matmul = q.op_type == "MatMul"
    convolution = op == CONV
    compare_volume = (
        resize
        or matmul
        or (
            convolution
            and (kernel.dilated_w, kernel.dilated_h) == (ifm_shape[2], ifm_shape[1])
            and ofm_shape[1] * ofm_shape[2] == 1
        )
    )
    ofm_elems = f32(elements(ofm_shape))
    if compare_volume:
        cost = ofm_elems / ((H.astype(f32) * W.astype(f32)).astype(f32) * D.astype(f32)).astype(f32)
    else:
        bx = (f32(ofm_shape[2]) / W.astype(f32)).astype(f32)  # Vela's HWC() point is (W, H, C)
        by = (f32(ofm_shape[1]) / H.astype(f32)).astype(f32)
        bz = (f32(ofm_shape[3]) / D.astype(f32)).astype(f32)
        weight_fetch = f32(kernel.area if convolution else 0) * f32(ifm_shape[3])
        weight_fetch = (weight_fetch * (np.ceil(bx) * np.ceil(by)).astype(f32)).astype(f32)
        weight_fetch = (weight_fetch * (bz * D.astype(f32)).astype(f32)).astype(f32)
        repeats = div_up(kernel.dilated_w, SUBKERNEL_MAX[0]) * div_up(kernel.dilated_h, SUBKERNEL_MAX[1])
        ifm_fetch = ((ih * iw).astype(f32) * f32(ifm_shape[3])).astype(f32)
        ifm_fetch = (ifm_fetch * f32(repeats)).astype(f32)
        ifm_fetch = (ifm_fetch * (bx * by).astype(f32)).astype(f32)
        if not equal_depth:
            ifm_fetch = (ifm_fetch * np.ceil(bz)).astype(f32)
        cost = ((ifm_fetch + weight_fetch).astype(f32) / ofm_elems).astype(f32)
    cost = cost.astype(f32)
    halve = elements(ifm_shape) < ih * iw * id_rounded * 2
    cost = np.where(halve, (cost / f32(2.0)).astype(f32), cost)
    cost = np.where(fits, cost, np.inf)
    ties = np.flatnonzero(cost == cost.min())
    choice = ties[0]
    best_coverage = np.inf
    ifm_wh = ifm_shape[1] * ifm_shape[2]
    for i in ties[1:]:
        if (H[i] <= 4 and W[i] <= 4) or matmul:
            covered = min(ifm_shape[1], ih[i]) * min(ifm_shape[2], iw[i])
            coverage = f32(ifm_wh) / f32(max(covered, 1))
            if coverage <= best_coverage:
                best_coverage = coverage
                choice = i
    ofm_block = (int(H[choice]), int(W[choice]), int(D[choice]))
    return ofm_block, (int(ih[choice]), int(iw[choice]), int(idepth[choice]))
