"""Cycles and memory traffic of one Ethos-U85 op, as Vela 5.2.0's performance estimator computes them.

This follows ``EthosU85Performance`` (``ethosu/regor/architecture/ethosu85/ethos_u85_performance.cpp``),
with the functions of :mod:`hwsim.schedule.ethos_u.estimator` for the U55/U65 (those that read the
memory channels also take the accelerator config). What the U85 does differently:

* **Op groups** (:mod:`hwsim.schedule.ethos_u.op_group_u85`). An op may carry fused ops (activations,
  a transpose or reverse of its output) and up to three chained elementwise ops whose intermediate
  results stay in the chaining buffer (``PerfQuery.group``). The output stage makes one pass per
  chained op: its cycles per element are the sum, over the chain, of the slower of each op's output
  rate and its fused activations' rate; a 32-bit result kept in the group costs ``OUT_CHAINED_32``.
  An op group of an activation (or transpose) alone runs at the activation rate. Fused and chained
  tensors are neither read nor written; of each later op's feature maps in memory Vela counts only
  the first (IFM, IFM2, OFM order), and so does this estimate.
* **MAC cycles** scale with IFM precision for every op, the weight decoders (one per core) pace
  depthwise and small convolutions, and 2:4 sparse weights halve convolution cycles and MACs.
  MatMul runs on the MAC array as a convolution whose second operand is streamed (Vela lowers it so
  for the U85; the U55 runs it as an elementwise multiply and a reduce-sum); its second operand is
  not counted as read.
* **Memory channels.** Each transfer goes through an AXI channel (IFM, IFM stream, weights, fast
  weights, scales, memory-to-memory, write) whose bandwidth is capped by its read buffers and the
  memory's outstanding transactions and latency (:func:`channel_bandwidth`); a memory's access
  cycles are the larger of its total bytes at full bandwidth and its busiest channel.
* **Weight decode** runs at 8 to 32 weights per cycle per core, faster the more zeros there are, or
  at 32 or 64 per cycle with the fast weight decoder (:func:`weight_decode_cycles`).

Filling :class:`~hwsim.schedule.ethos_u.estimator.PerfQuery` for a U85 op as Vela does: ``config`` from
:func:`hwsim.schedule.ethos_u.blocks_u85.find_block_config`; ``ofm`` is the primary op's output (that of
its fused activation, if any), and when that is chained into the next op its ``memory`` is still the
feature-map memory (Vela times the last block's write there); ``has_scales`` for ops with a bias and
scale tensor (convolutions, fully connected; not MatMul); ``const_memory`` where weights and scales are
read from, ``weight_staging`` if they are buffered. Integer and float types follow Vela's: what it
holds in ``float`` is float32 here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from functools import cached_property

from hwsim.schedule.ethos_u.arch_u85 import (
    ARGMAX,
    CONV,
    DEPTHWISE,
    ELEMENTWISE,
    OUT_8,
    OUT_16,
    OUT_32,
    OUT_64,
    OUT_BINARY_32,
    OUT_CHAINED_32,
    POOL,
    REDUCE_MINMAX,
    REDUCE_SUM,
    RESIZE,
    EthosU85Config,
)
from hwsim.schedule.ethos_u.blocks_u85 import ACTIVATION_TYPES, BRANCH, DMA, SUBKERNEL_MAX, hw_op
from hwsim.schedule.ethos_u.estimator import (
    FIRST,
    LAST,
    ElementAccess,
    FeatureMap,
    Memory,
    PerfQuery,
    map_key,
    storage_rounding,
)
from hwsim.schedule.ethos_u.float32 import F32_EXACT, to_f32
from hwsim.schedule.ethos_u.geometry import Shape, div_up, elements
from hwsim.schedule.ethos_u.value_ids import value_id

_MAC_OPS = frozenset({CONV, DEPTHWISE, POOL, REDUCE_SUM, REDUCE_MINMAX, ARGMAX})
_POOL_LIKE = frozenset({POOL, REDUCE_MINMAX, ARGMAX})
_BINARY_ELEMENTWISE = frozenset(
    {
        "Add",
        "Sub",
        "Mul",
        "Minimum",
        "Maximum",
        "SHL",
        "SHR",
        "Div",
        "LogicalAnd",
        "LogicalOr",
        "LogicalXor",
        "Xor",
        "And",
        "Or",
        "Asr",
        "Equal",
        "Greater",
        "GreaterEqual",
        "NotEqual",
        "AndNot",
    }
)
# Vela's IsElementwise (op_type.hpp): the binary ops above and these unary ones.
_ELEMENTWISE = _BINARY_ELEMENTWISE | {"Abs", "Gelu", "Elu", "LeakyRelu", "CLZ", "LogicalNot", "Not", "Neg"}
_HALF_RATE_TRANSPOSES = frozenset({"NWHC", "NWCH", "NCWH"})  # they swap H and W

# AXI channels (Vela's MemChannel); read channels index the configuration's read buffers from 1.
MEM2MEM, IFM_STREAM, WEIGHT, FAST_WEIGHT, IFM, SCALE, WRITE = range(1, 8)
FEATURE_MAPS, WEIGHTS, SCALES = "feature_maps", "weights", "scales"
# The 2 KB RAM an op's look-up table (256 bytes for 8-bit data, 2 KB for 16-bit) is copied into before the op
# runs, at a byte per cycle (ArchEthosU85::ApplyConfig, ethos_u85.cpp): mem_to_mem_cycles(arch, LUT_MEMORY,
# ...).
LUT_MEMORY = Memory("lutram", 1.0, 0, 0, 1, 1, 1000, 1000)


@dataclass(frozen=True)
class GroupOp:
    """One op of an Ethos-U85 op group (Vela's ``EthosU85OpGroup``), its tensors as when it joined the group.

    A feature map whose ``memory`` is None never reaches memory: it stays in the chaining buffer or is
    fused into the next op (the input of a fused activation is the OFM of the op before it).
    """

    op_type: str
    ifm: FeatureMap
    ofm: FeatureMap
    ifm2: FeatureMap | None = None
    transpose: str = "None"
    reverse: str = "None"

    @cached_property
    def key(self) -> int:
        """The op as one id (:mod:`.value_ids`) for :func:`~hwsim.schedule.ethos_u.estimator.query_key`, made
        once (the scheduler makes an op's group anew whenever its maps move)."""
        return value_id(
            (
                self.op_type,
                map_key(self.ifm),
                map_key(self.ofm),
                map_key(self.ifm2),
                self.transpose,
                self.reverse,
            )
        )


if [f.name for f in fields(GroupOp)] != ["op_type", "ifm", "ofm", "ifm2", "transpose", "reverse"]:
    raise ImportError("GroupOp.key does not cover every GroupOp field")


@dataclass(frozen=True)
class MemoryAccessCycles:
    """Access cycles of one memory during one op, in total and by what moves (Vela's ``AccessCycles``)."""

    memory: Memory
    bytes: int
    cycles: int
    feature_map_cycles: int
    weight_cycles: int
    scale_cycles: int


def _min_shape(a: Shape, block) -> tuple[int, ...]:
    """``Shape::Min`` of a feature map and a block: as many axes as the shorter has."""
    return tuple(map(min, a[-len(block) :], block))


def channel_bandwidth(arch: EthosU85Config, memory: Memory, channel: int) -> float:
    """Bytes per cycle one AXI channel moves to or from ``memory`` (``ChannelBW``).

    A read channel keeps at most ``read buffers / burst words`` transactions in flight and the memory
    at most 80% of its outstanding transactions per port; at the memory's latency that is 80% of
    ``burst x transactions / latency``, never more than the memory's own bandwidth.
    """
    read_buffers = 0 if channel == WRITE else arch.channel_read_buffers[channel - 1]
    key = (memory.key, channel, read_buffers)  # asked thousands of times per network: kept
    bandwidth = _BANDWIDTHS.get(key)
    if bandwidth is None:
        bandwidth = _BANDWIDTHS[key] = _channel_bandwidth(memory, channel, read_buffers)
    return bandwidth


_BANDWIDTHS: dict[tuple, float] = {}


def _channel_bandwidth(memory: Memory, channel: int, read_buffers: int) -> float:
    burst_words = max(memory.burst_bytes // 16, 1)
    if channel == WRITE:
        outstanding, latency, buffer_limit = memory.max_writes, memory.write_latency, math.inf
    else:
        outstanding, latency = memory.max_reads, memory.read_latency
        buffer_limit = to_f32(to_f32(read_buffers) / to_f32(burst_words))
    transactions = to_f32(min(buffer_limit, to_f32(outstanding * memory.ports_used * 0.8)))
    if latency == 0:
        return to_f32(memory.bandwidth)
    # float32, as Vela computes it
    per_latency = to_f32(to_f32(to_f32(memory.burst_bytes) * transactions) / to_f32(latency))
    return min(to_f32(memory.bandwidth), to_f32(per_latency * 0.8))


def _cycles_at(nbytes: int, bandwidth: float) -> int:
    """``int64(bytes / bandwidth)`` in float32, as Vela divides by its float bandwidths (a float32 quotient
    is the double quotient of the float32 operands rounded to float32)."""
    if type(nbytes) is not int or not -F32_EXACT <= nbytes <= F32_EXACT:
        nbytes = to_f32(nbytes)
    return int(to_f32(nbytes / to_f32(bandwidth)))


def memory_transfer(
    is_read: bool, memory: Memory, fmt: str, bits: int, block, shape: Shape, count: int
) -> int:
    """Bytes a transfer of ``count`` elements costs on ``memory``, partly used bursts counted whole.

    The burst is what one block row (NHWC) or brick column (NHCWB16) moves contiguously
    (``EstimateMemoryTransfer``); unlike the U55, writes do not widen with the core count.
    """
    h, w, c = block[-3:]
    burst = 8
    if fmt == "NHCWB16":
        burst = bits * w * c if (shape[2] * bits * 16) // 8 == c else 16 * bits * w
    elif fmt == "NHWC":
        x_stride = (shape[3] * bits) // 8
        if is_read:
            burst = bits * w * c if x_stride == c else bits * c
        elif c <= 16 and x_stride == c:
            burst = bits * w * c
        else:
            burst = min(64 * 8, 16 * bits, c * bits)
    burst_bytes = min(memory.burst_bytes, burst // 8)
    return ((count * bits) // 8 * memory.burst_bytes) // burst_bytes


def _min_ifm_cycles(q: PerfQuery) -> int:
    """Cycles to read the first IFM block (of either IFM), at the IFM's bit width."""
    cycles = 0
    for fm in (q.ifm, q.ifm2):
        if fm is None:
            continue
        count = elements(_min_shape(fm.shape, q.config.ifm_block))
        tx = memory_transfer(True, fm.memory, fm.format, q.ifm.bits, q.config.ifm_block, fm.shape, count)
        cycles = max(cycles, fm.memory.read_latency + _cycles_at(tx, fm.memory.bandwidth))
    return cycles


def _min_ofm_cycles(q: PerfQuery) -> int:
    """Cycles to write the last OFM block."""
    count = elements(_min_shape(q.ofm.shape, q.config.ofm_block))
    tx = memory_transfer(
        False, q.ofm.memory, q.ofm.format, q.ofm.bits, q.config.ofm_block, q.ofm.shape, count
    )
    return q.ofm.memory.write_latency + _cycles_at(tx, q.ofm.memory.bandwidth)


def _output_cycles(
    arch: EthosU85Config, op_type: str, ifm: FeatureMap, ofm: FeatureMap, to_chain: bool
) -> float:
    """Output-stage cycles per element of one op (``GetOutputCyclesPerElement``)."""
    if op_type == "Div":
        return 33.0
    ifm_bits, ofm_bits = ifm.bits, ofm.bits
    if op_type == "Resize":
        index = 0 if ifm_bits == 8 else 1
        ratio_w = (ofm.shape[2] + ifm.shape[2] // 2) // ifm.shape[2]
        ratio_h = (ofm.shape[1] + ifm.shape[1] // 2) // ifm.shape[1]
        high = min(ratio_w, ratio_h) >= arch.macs // 512
        return (arch.resize_high_cycles if high else arch.resize_low_cycles)[index]
    if to_chain and (ofm_bits == 32 or ifm_bits == 32):
        index = OUT_CHAINED_32
    elif ofm_bits == 64:
        index = OUT_64
    elif op_type in _BINARY_ELEMENTWISE and ifm_bits == 32:
        index = OUT_BINARY_32 if ofm_bits == 32 else OUT_CHAINED_32
    else:
        index = {32: OUT_32, 16: OUT_16}.get(ofm_bits, OUT_8)
    return arch.output_cycles[index]


def _activation_cycles(arch: EthosU85Config, transpose: str, reverse: str) -> float:
    """Cycles per element of a fused activation, transpose or reverse: half rate if it swaps H and W or
    reverses W."""
    return arch.activation_cycles[1 if transpose in _HALF_RATE_TRANSPOSES or reverse == "W" else 0]


def group_of(q: PerfQuery) -> tuple[GroupOp, ...]:
    """The op group of ``q``: its own, or a group of the op alone."""
    return q.group or (GroupOp(q.op_type, q.ifm, q.ofm, q.ifm2, q.transpose, q.reverse),)


def ao_cycles_per_element(arch: EthosU85Config, q: PerfQuery) -> float:
    """Output-stage cycles per OFM element of the whole op group (``EstimateAOCyclesPerElement``).

    Fused activations run in the same pass as the output of the op before them; each chained op
    adds a pass.
    """
    total = 0.0
    stage: list[float] = []
    for op in group_of(q):
        if op.op_type in ACTIVATION_TYPES or op.op_type in ("Transpose", "Reverse"):
            stage.append(_activation_cycles(arch, op.transpose, op.reverse))
        else:
            total += max(stage, default=0.0)
            stage = [_output_cycles(arch, op.op_type, op.ifm, op.ofm, op.ofm.memory is None)]
    return total + max(stage, default=0.0)


def mac_cycles_per_block(arch: EthosU85Config, q: PerfQuery) -> int:
    """MAC cycles of one OFM block (``EstimateMacCyclesPerBlock``)."""
    op = hw_op(q.op_type)
    cfg = q.config
    ifm_block = _min_shape(q.ifm.shape, cfg.ifm_block)
    ofm_block = _min_shape(q.ofm.shape, cfg.ofm_block)
    uh, uw, ud = cfg.ofm_ublock
    n_wh = div_up(ofm_block[-3], uh) * div_up(ofm_block[-2], uw)
    n_d = div_up(ofm_block[-1], ud)
    ifm_bits = q.ifm.bits
    ifm_depth = ifm_block[-1]
    decode_cycles = 32 * ud // (8 * arch.cores)  # weight decode per micro-block
    sub_w, sub_h = SUBKERNEL_MAX if op in _MAC_OPS else (1, 1)
    part_kernel = op == CONV and cfg.traversal == "PartKernel"
    sparse_divisor = 2 if q.sparse_weights else 1
    delay = 3 if cfg.acc48 and arch.macs <= 128 else 2
    total = 0
    for x in range(0, q.kernel.w, sub_w):
        for y in range(0, q.kernel.h, sub_h):
            sub_elems = min(q.kernel.h - y, sub_h) * min(q.kernel.w - x, sub_w)
            if op in _POOL_LIKE:
                steps = 1
                cycles = max(4, sub_elems) * n_wh * n_d * (ifm_bits // 2)
            elif op == DEPTHWISE:
                steps = div_up(sub_elems, 4)
                cycles = max(decode_cycles, 4 * n_wh * (ifm_bits // 8)) * steps * n_d
            elif (op == CONV and not part_kernel) or op == REDUCE_SUM:
                steps = sub_elems
                cycles = (
                    max(decode_cycles, ifm_depth // 8 * n_wh)
                    * steps
                    * n_d
                    * (ifm_bits // 8)
                    // sparse_divisor
                )
            else:
                steps = div_up(sub_elems, 2 if ifm_bits == 16 else 4)
                cycles = max(decode_cycles, 4 * n_wh) * steps * n_d * div_up(ifm_depth, 8) // sparse_divisor
            delay_cycles = 0
            if n_wh == 1:
                if n_d == 1:
                    delay_cycles = delay * steps
                elif steps > 1:
                    delay_cycles = delay * (steps - 1) * n_d
            if part_kernel:
                delay_cycles *= div_up(ifm_depth, 8)
            total += cycles + delay_cycles
    if op in (CONV, REDUCE_SUM):
        total *= div_up(q.ifm.shape[3], ifm_depth)
    return total


def mac_op_cycles(arch: EthosU85Config, q: PerfQuery) -> tuple[int, int]:
    """(NPU cycles, MACs) of an op on the MAC array (``EstimateMacOpCycles``)."""
    op = hw_op(q.op_type)
    cfg = q.config
    ofm_block = _min_shape(q.ofm.shape, cfg.ofm_block)
    ublock = cfg.ofm_ublock
    ublocks_in_block = math.prod(div_up(a, b) for a, b in zip(ofm_block[-3:], ublock))
    n_blocks = math.prod(div_up(a, b) for a, b in zip(q.ofm.shape[1:], ublock)) / ublocks_in_block
    ao_per_elem = ao_cycles_per_element(arch, q)
    ao_compute = math.ceil(ao_per_elem * elements(ofm_block))
    bias_cycles = 0.0
    if op in (CONV, DEPTHWISE) and q.has_scales and q.ofm.shape[3] > 0:
        mem = q.weight_staging or q.const_memory
        bias_cycles = 10.0 * ofm_block[-1] * mem.read_latency / 256
    ao_block = max(ao_compute, bias_cycles)
    mac_block = mac_cycles_per_block(arch, q)
    ifm_block_cycles = _min_ifm_cycles(q)
    ofm_block_cycles = _min_ofm_cycles(q)
    min_mem = abs(ofm_block_cycles - ifm_block_cycles) if n_blocks > 1 else 0
    cmd_limit = (min_mem + mac_block + ao_block) / 4
    mac_balanced = max(mac_block, cmd_limit)
    ao_balanced = max(ao_block, cmd_limit)
    if mac_balanced > ao_balanced:
        total = int(mac_balanced * n_blocks)
        if q.scheduling & LAST:
            total = int(total + ao_balanced)
    else:
        total = int(ao_balanced * n_blocks + mac_balanced)
    if q.scheduling & LAST:
        total += ofm_block_cycles
    if q.scheduling & FIRST:
        total += ifm_block_cycles
    macs = q.kernel.area * elements(q.ofm.shape)
    if op not in (DEPTHWISE, *_POOL_LIKE):
        macs *= q.ifm.shape[3]
    return total, macs // (2 if q.sparse_weights else 1)


def elementwise_cycles(arch: EthosU85Config, q: PerfQuery) -> int:
    """NPU cycles of an elementwise or resize op: output stage or command issue, whichever is slower."""
    shape = q.ofm.shape
    if q.ofm.format == "NHCWB16":
        shape = (*shape[:3], -(-shape[3] // 16) * 16)
    n = elements(shape)
    ao_per_elem = ao_cycles_per_element(arch, q)
    ao = math.ceil(ao_per_elem * n)
    block_cycles = max(_min_ofm_cycles(q), _min_ifm_cycles(q))
    cmd = math.ceil((block_cycles / elements(q.config.ofm_block) + ao_per_elem) / 4.0 * n)
    return max(cmd, ao)


def op_cycles(arch: EthosU85Config, q: PerfQuery) -> tuple[int, int]:
    """(NPU cycles, MACs) of an op (``MeasureCycleCost``); DMA and branch ops take no NPU cycles."""
    op = hw_op(q.op_type)
    if op in (DMA, BRANCH):
        return 0, 0
    if op in _MAC_OPS:
        return mac_op_cycles(arch, q)
    if op in (ELEMENTWISE, RESIZE):
        return elementwise_cycles(arch, q), 0
    raise ValueError(f"Ethos-U85 cannot run {q.op_type}")


def _rounded_elements(shape: Shape, fmt: str) -> int:
    return elements(tuple(-(-a // b) * b for a, b in zip(shape, storage_rounding(fmt))))


def _first_external(op: GroupOp) -> tuple[int, FeatureMap | None]:
    """The first of a grouped op's IFM, IFM2 and OFM that is in memory (index 0, 1, 2), or (-1, None).

    Vela records every external feature map of a grouped op but looks up only the first record of
    each op, so only that one is read or written in its estimate; so here.
    """
    for index, fm in enumerate((op.ifm, op.ifm2, op.ofm)):
        if fm is not None and fm.memory is not None:
            return index, fm
    return -1, None


def element_access(arch: EthosU85Config, q: PerfQuery) -> ElementAccess:
    """Elements each operand of the op group moves (``MeasureElementAccess``).

    A fused or chained OFM is not written; the external feature maps of the group's later ops are
    counted in ``ElementAccess.group``, one entry per op (a scalar input is encoded in the command
    stream and not read).
    """
    op = hw_op(q.op_type)
    cfg = q.config
    acc = ElementAccess()
    ifm_fmt = q.ifm.format
    if op in _MAC_OPS:
        ifm_block = _min_shape(q.ifm.shape, cfg.ifm_block)
        ofm_block = _min_shape(q.ofm.shape, cfg.ofm_block)
        blocks = [div_up(a, b) for a, b in zip(q.ofm.shape[1:], ofm_block[-3:])]
        block_depth = ofm_block[-1]
        if op in (DEPTHWISE, *_POOL_LIKE):
            blocks[2] = 1
            block_depth = q.ifm.shape[3]
        subkernels = div_up(q.kernel.w, SUBKERNEL_MAX[0]) * div_up(q.kernel.h, SUBKERNEL_MAX[1])
        depth_round = storage_rounding(ifm_fmt)[3]
        ifm_fetch = ifm_block[-3] * ifm_block[-2] * (-(-q.ifm.shape[3] // depth_round) * depth_round)
        n_blocks = math.prod(blocks)
        acc.ifm_read[0] = ifm_fetch * subkernels * n_blocks
        if op in (CONV, DEPTHWISE):
            kernel_read = q.kernel.area * (1 if op == DEPTHWISE else q.ifm.shape[3])
            acc.const_read = [kernel_read * block_depth * n_blocks, q.ofm.shape[3]]
            acc.weights_refetch = blocks[0] * blocks[1]
    elif op == ELEMENTWISE:
        scalar_encoded = False
        for i, fm in enumerate((q.ifm, q.ifm2)):
            if fm is None:
                continue
            if elements(fm.shape) > 1 or scalar_encoded:
                acc.ifm_read[i] = _rounded_elements(fm.shape, ifm_fmt)
            else:
                scalar_encoded = True
    elif op == RESIZE:
        acc.ifm_read[0] = _rounded_elements(q.ifm.shape, ifm_fmt)
    elif q.op_type == "Gather":
        acc.ifm_read[0] = acc.ifm_read[1] = _rounded_elements(q.ifm2.shape, ifm_fmt)
    group = group_of(q)
    for sub in group[1:]:
        ext = ElementAccess()
        index, fm = _first_external(sub)
        if index == 2:
            ext.ofm_write = _rounded_elements(fm.shape, fm.format)
        elif fm is not None and elements(fm.shape) > 1:
            ext.ifm_read[index] = _rounded_elements(fm.shape, fm.format)
        acc.group.append(ext)
    if group[0].ofm.memory is not None:
        acc.ofm_write = _rounded_elements(q.ofm.shape, q.ofm.format)
    return acc


def to_bytes(arch: EthosU85Config, q: PerfQuery, access: ElementAccess) -> ElementAccess:
    """Bytes moved for an element access, burst inefficiency included (``ElementTransferToBytes``)."""
    cfg = q.config
    out = ElementAccess(
        list(access.ifm_read),
        access.ofm_write,
        [0, 0],
        access.weights_refetch,
        access.tmp_read,
        access.tmp_write,
    )
    for i, fm in enumerate((q.ifm, q.ifm2)):
        if fm is not None:
            out.ifm_read[i] = memory_transfer(
                True, fm.memory, fm.format, fm.bits, cfg.ifm_block, fm.shape, access.ifm_read[i]
            )
    out.ofm_write = memory_transfer(
        False, q.ofm.memory, q.ofm.format, q.ofm.bits, cfg.ofm_block, q.ofm.shape, access.ofm_write
    )
    if q.encoded_weight_bytes:
        out.const_read = [
            access.weights_refetch * q.encoded_weight_bytes,
            access.weights_refetch * q.encoded_scale_bytes,
        ]
        out.weights_refetch = 1
    for sub, ext in zip(group_of(q)[1:], access.group):
        sub_bytes = ElementAccess()
        index, fm = _first_external(sub)
        if index == 2:
            sub_bytes.ofm_write = memory_transfer(
                False, fm.memory, fm.format, fm.bits, cfg.ofm_block, fm.shape, ext.ofm_write
            )
        elif fm is not None:
            sub_bytes.ifm_read[index] = memory_transfer(
                True, fm.memory, fm.format, fm.bits, cfg.ifm_block, fm.shape, ext.ifm_read[index]
            )
        out.group.append(sub_bytes)
    return out


def _read_channel(op_type: str, ifm_index: int) -> int:
    """The channel an IFM is read through: elementwise and resize inputs and a MatMul's second operand
    stream."""
    if (ifm_index == 1 and op_type == "MatMul") or op_type == "Resize" or op_type in _ELEMENTWISE:
        return IFM_STREAM
    return IFM


def access_cycles(
    arch: EthosU85Config, q: PerfQuery, byte_access: ElementAccess
) -> dict[str, MemoryAccessCycles]:
    """Per memory name: bytes and access cycles of one op group (``MeasureAccessCycles``).

    Bytes are grouped by memory, channel and kind (feature maps, weights, scales). A memory's cycles
    are the larger of all its bytes at its full bandwidth and its busiest channel (each channel's
    kinds taking their turns); each kind's cycles likewise.
    """
    transfers: dict[str, tuple[Memory, dict[int, dict[str, int]]]] = {}

    def add(mem: Memory | None, channel: int, kind: str, nbytes: int) -> None:
        if mem is None:
            return
        channels = transfers.setdefault(mem.name, (mem, {}))[1]
        kinds = channels.setdefault(channel, {})
        kinds[kind] = kinds.get(kind, 0) + nbytes

    add(q.ifm.memory, _read_channel(q.op_type, 0), FEATURE_MAPS, byte_access.ifm_read[0])
    if q.ifm2 is not None:
        add(q.ifm2.memory, _read_channel(q.op_type, 1), FEATURE_MAPS, byte_access.ifm_read[1])
    add(q.ofm.memory, WRITE, FEATURE_MAPS, byte_access.ofm_write)
    for sub, ext in zip(group_of(q)[1:], byte_access.group):
        index, fm = _first_external(sub)
        if index == 2:
            add(fm.memory, WRITE, FEATURE_MAPS, ext.ofm_write)
        elif fm is not None:
            add(fm.memory, _read_channel(sub.op_type, index), FEATURE_MAPS, ext.ifm_read[index])
    if q.const_memory is not None:
        weight_channel = FAST_WEIGHT if q.fast_weights else WEIGHT
        if q.weight_staging is not None:
            not_prebuffered = max(q.encoded_weight_bytes - q.first_weight_dma_bytes, 0)
            add(q.const_memory, MEM2MEM, WEIGHTS, not_prebuffered)
            add(q.weight_staging, WRITE, WEIGHTS, not_prebuffered)
            add(q.weight_staging, weight_channel, WEIGHTS, byte_access.const_read[0])
        else:
            add(q.const_memory, WEIGHT, WEIGHTS, byte_access.const_read[0])
        add(q.const_memory, SCALE, SCALES, byte_access.const_read[1])
    if q.tmp_memory is not None:
        add(q.tmp_memory, IFM_STREAM, FEATURE_MAPS, byte_access.tmp_read)
        add(q.tmp_memory, WRITE, FEATURE_MAPS, byte_access.tmp_write)
    out = {}
    for name, (mem, channels) in transfers.items():
        kind_bytes: dict[str, int] = {}
        kind_cycles: dict[str, int] = {}
        busiest = 0
        for channel, kinds in channels.items():
            bandwidth = channel_bandwidth(arch, mem, channel)
            channel_cycles = 0
            for kind, nbytes in kinds.items():
                cycles = _cycles_at(nbytes, bandwidth)
                kind_cycles[kind] = max(kind_cycles.get(kind, 0), cycles)
                kind_bytes[kind] = kind_bytes.get(kind, 0) + nbytes
                channel_cycles += cycles
            busiest = max(busiest, channel_cycles)

        def kind_total(kind: str) -> int:
            if kind not in kind_bytes:
                return 0
            return max(_cycles_at(kind_bytes[kind], mem.bandwidth), kind_cycles[kind])

        total_bytes = sum(kind_bytes.values())
        out[name] = MemoryAccessCycles(
            mem,
            total_bytes,
            max(_cycles_at(total_bytes, mem.bandwidth), busiest),
            kind_total(FEATURE_MAPS),
            kind_total(WEIGHTS),
            kind_total(SCALES),
        )
    return out


def mem_to_mem_cycles(arch: EthosU85Config, dst: Memory, src: Memory, nbytes: int) -> int:
    """Cycles of a DMA copy: the slower of reading the source (memory-to-memory channel) and writing the
    destination."""
    read = _cycles_at(nbytes, channel_bandwidth(arch, src, MEM2MEM)) + src.read_latency
    write = _cycles_at(nbytes, channel_bandwidth(arch, dst, WRITE)) + dst.write_latency
    return max(read, write)


def weight_decode_cycles(
    arch: EthosU85Config,
    source_bytes: int,
    encoded_bytes: int,
    zero_count: int,
    distinct_weights: int,
    fast: bool,
    weights_memory: Memory,
) -> int:
    """Cycles to stream and decode an op's weights: the slower of the decoders and the weight channel.

    The standard decoder does 8 weights per cycle per core at up to half zeros, rising linearly to 32
    at 90% zeros (31 in Vela's float32 arithmetic); the fast decoder does 32 per cycle, 64 with fewer
    than 16 distinct weights (``WeightDecodeCycles``). ``source_bytes`` is the weight encoder's count,
    padding included.
    """
    if fast:
        per_cycle = 64 if distinct_weights < 16 else 32
    else:
        zero_rate = max(min(to_f32(to_f32(zero_count) / to_f32(source_bytes)), to_f32(0.9)), 0.5)
        per_cycle = int(8 + (zero_rate - 0.5) * (32 - 8) / 0.4) * arch.cores
    decode = source_bytes // per_cycle
    dma = _cycles_at(encoded_bytes, channel_bandwidth(arch, weights_memory, FAST_WEIGHT if fast else WEIGHT))
    return max(decode, dma + weights_memory.read_latency)


def min_read_cycles(arch: EthosU85Config, memory: Memory, nbytes: int, channel: int) -> int:
    """Cycles to read ``nbytes`` through one channel, latency included (``MinReadCycles``)."""
    return int(nbytes / channel_bandwidth(arch, memory, channel) + memory.read_latency)


def min_write_cycles(arch: EthosU85Config, memory: Memory, nbytes: int) -> int:
    """Cycles to write ``nbytes``, latency included (``MinWriteCycles``)."""
    return int(nbytes / channel_bandwidth(arch, memory, WRITE) + memory.write_latency)
