"""Cycles and memory traffic of one Ethos-U55/U65 op, as Vela 5.2.0's performance estimator computes them.

This follows ``EthosU55Performance`` (``ethosu/regor/architecture/ethosu55/ethos_u55_performance.cpp``):

* **MAC ops** (convolution, depthwise, pooling, reduce-sum) run block by block. A block's MAC cycles come
  from its micro-blocks, kernel steps and the pipeline delays of each configuration; its output stage
  (AO) takes the configuration's cycles per output element for that kind of op and activation; the
  command stream limits issue to a quarter of the block's cycles plus the IFM/OFM block transfers. The op
  takes the slower of MAC and AO per block over its blocks, plus the first IFM block and last OFM block.
* **Elementwise ops** take the slower of the output stage and the command issue limit.
* **Memory traffic**: elements read and written, turned into bytes by burst efficiency (a read that cannot
  fill the memory's burst costs a whole burst), and into access cycles at each memory's bandwidth.

An op's time is then the larger of its NPU cycles and the access cycles of its busiest memory
(``NetworkPerformance::EstimateFullOpPerformance``), which is what :mod:`hwsim.schedule.ethos_u.model`
hands the simulator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from functools import cached_property
from operator import attrgetter

from hwsim.schedule.ethos_u.arch import (
    ACT_CLAMP,
    ACT_LUT,
    ACT_NONE,
    OUT_ADD,
    OUT_EW32_BINARY,
    OUT_EW32_UNARY,
    OUT_MAXPOOL,
    OUT_MUL32,
    OUT_MUL_OR_ACC40,
    OUT_OTHER,
    EthosUConfig,
)
from hwsim.schedule.ethos_u.blocks import (
    COMPOUND,
    CONV,
    DEPTHWISE,
    DMA,
    ELEMENTWISE,
    POOLING,
    REDUCE_SUM,
    SUBKERNEL_MAX,
    BlockConfig,
    hw_op,
)
from hwsim.schedule.ethos_u.geometry import Kernel, Shape, div_up, elements
from hwsim.schedule.ethos_u.value_ids import fields_id

LUT_ACTIVATIONS = frozenset({"Sigmoid", "Tanh", "LUT"})
CLAMP_ACTIVATIONS = frozenset({"Relu", "Relu0To1", "Relu6", "ReluN1To1"})
SINGLE, FIRST, LAST, BACK_TO_BACK = 3, 1, 2, 0  # Vela's OpScheduling flags


@dataclass(frozen=True)
class Memory:
    """A memory as the estimator sees it: bytes per NPU cycle, latencies and the burst it moves best."""

    name: str
    bandwidth: float  # bytes per NPU cycle
    read_latency: int
    write_latency: int
    burst_bytes: int
    ports_used: int = 1  # U85: AXI ports (its channel bandwidth counts outstanding transactions per port)
    max_reads: int = 1  # U85: outstanding read transactions per port
    max_writes: int = 1  # U85: outstanding write transactions per port

    @cached_property
    def key(self) -> int:
        """The fields' values as one id (:mod:`.value_ids`), made once: memo keys hash it in one step."""
        return fields_id(self)


@dataclass
class FeatureMap:
    """One feature-map operand: shape (NHWC), element bits, the memory it is in and its layout."""

    shape: Shape
    bits: int
    memory: Memory
    format: str = "NHWC"  # or "NHCWB16" (16-deep bricks)


@dataclass
class PerfQuery:
    """What the estimator needs about an op (Vela's ``PerformanceQuery``)."""

    op_type: str
    kernel: Kernel
    config: BlockConfig
    ifm: FeatureMap
    ofm: FeatureMap
    ifm2: FeatureMap | None = None
    activation: str | None = None  # the op fused after it in its group (a ReLU, a LUT ...)
    const_memory: Memory | None = None  # where scales (and weights) are read from
    has_scales: bool = False
    weight_staging: Memory | None = None  # where buffered weights are read from
    encoded_weight_bytes: int = 0
    encoded_scale_bytes: int = 0
    first_weight_dma_bytes: int = 0
    tmp_memory: Memory | None = None  # scratch of a MatMul
    scheduling: int = SINGLE
    transpose: str = "None"  # U85: the OFM's transpose (Vela's TransposeType name)
    reverse: str = "None"  # U85: the OFM's reversed axis, or "None"
    fast_weights: bool = False  # U85: weights encoded for the fast weight decoder
    sparse_weights: bool = False  # U85: 2:4 sparse weights (half the MAC cycles)
    group: tuple = ()  # U85: the op group, this op first (estimator_u85.GroupOp); empty for a lone op


# The PerfQuery fields query_key reads as they are; the others are keyed by value.
_PLAIN_FIELDS = (
    "op_type",
    "activation",
    "has_scales",
    "encoded_weight_bytes",
    "encoded_scale_bytes",
    "first_weight_dma_bytes",
    "scheduling",
    "transpose",
    "reverse",
    "fast_weights",
    "sparse_weights",
)
_plain = attrgetter(*_PLAIN_FIELDS)
if {f.name for f in fields(PerfQuery)} != {
    *_PLAIN_FIELDS,
    "kernel",
    "config",
    "ifm",
    "ofm",
    "ifm2",
    "group",
    "const_memory",
    "weight_staging",
    "tmp_memory",
}:
    raise ImportError("query_key does not cover every PerfQuery field")


def map_key(fm: FeatureMap | None) -> tuple | None:
    """A feature map as a hashable value (the map itself may change)."""
    if fm is None:
        return None
    return fm.shape, fm.bits, fm.memory.key if fm.memory is not None else None, fm.format


def query_key(q: PerfQuery) -> tuple:
    """Everything an estimate depends on, as a hashable value: equal keys give equal estimates.

    The scheduler asks the same questions many times (every candidate schedule re-costs its ops), so the
    families memoise their answers on this key (:class:`~hwsim.schedule.ethos_u.family.U55Family`).
    """
    const, staging, tmp = q.const_memory, q.weight_staging, q.tmp_memory
    return (
        _plain(q),
        q.kernel.key,
        q.config.key,
        map_key(q.ifm),
        map_key(q.ofm),
        map_key(q.ifm2),
        const.key if const else None,
        staging.key if staging else None,
        tmp.key if tmp else None,
        tuple(map(_key_of, q.group)),
    )


_key_of = attrgetter("key")


@dataclass
class ElementAccess:
    """Elements (or bytes, after :func:`to_bytes`) each operand moves."""

    ifm_read: list[int] = field(default_factory=lambda: [0, 0])
    ofm_write: int = 0
    const_read: list[int] = field(default_factory=lambda: [0, 0])  # weights, scales
    weights_refetch: int = 1
    tmp_read: int = 0
    tmp_write: int = 0
    # U85: external feature maps of the op group's later ops
    group: list[ElementAccess] = field(default_factory=list)


def storage_rounding(fmt: str) -> Shape:
    """The shape a layout rounds a feature map to (16-deep bricks for NHCWB16)."""
    return (1, 1, 1, 16) if fmt == "NHCWB16" else (1, 1, 1, 1)


def _round_shape(shape: Shape, rounding: Shape) -> Shape:
    return tuple(-(-a // b) * b for a, b in zip(shape, rounding))


def _min_shape(a: Shape, b) -> Shape:
    b = (1, *b) if len(b) == 3 else b
    return tuple(map(min, a, b))


def _ofm_ublock(arch: EthosUConfig, ofm: Shape, op: str, kernel: Kernel) -> tuple[int, int, int]:
    """The micro-block, except the 1-high even-width 1xN convolution the 256-MAC configs run 4 wide."""
    uh, uw, ud = arch.ofm_ublock
    if uh == 2 and op == CONV and ofm[1] == 1 and ofm[2] % 2 == 0 and kernel.h == 1:
        return (1, 4, ud)
    return arch.ofm_ublock


def memory_transfer(
    cores: int, is_read: bool, memory: Memory, fmt: str, bits: int, block, shape: Shape, count: int
) -> int:
    """Bytes a transfer of ``count`` elements costs on ``memory``, counting partly used bursts as whole."""
    block = (1, *block) if len(block) == 3 else block
    burst = 8
    if fmt == "NHCWB16":
        z_stride = (shape[2] * bits * 16) // 8
        if z_stride == block[3]:
            burst = bits * block[2] * block[3]
        elif is_read:
            burst = 16 * bits * block[2]
        else:
            burst = 16 * bits * block[2] * cores
    else:
        x_stride = (shape[3] * bits) // 8
        if is_read:
            burst = bits * block[2] * block[3] if x_stride == block[3] else bits * block[3]
        elif block[3] <= 16 and x_stride == block[3]:
            burst = bits * block[2] * block[3]
        else:
            burst = min(64 * 8, 16 * bits * cores, block[3] * bits)
    nbytes = (count * bits) // 8
    burst_bytes = min(memory.burst_bytes, burst // 8)
    return (nbytes * memory.burst_bytes) // burst_bytes


def _min_ifm_cycles(arch: EthosUConfig, q: PerfQuery) -> int:
    cycles = 0
    for fm in (q.ifm, q.ifm2):
        if fm is None:
            continue
        count = elements(_min_shape(fm.shape, q.config.ifm_block))
        tx = memory_transfer(
            arch.cores, True, fm.memory, fm.format, q.ifm.bits, q.config.ifm_block, fm.shape, count
        )
        cycles = max(cycles, fm.memory.read_latency + int(tx / fm.memory.bandwidth))
    return cycles


def _min_ofm_cycles(arch: EthosUConfig, q: PerfQuery) -> int:
    count = elements(_min_shape(q.ofm.shape, q.config.ofm_block))
    tx = memory_transfer(
        arch.cores, False, q.ofm.memory, q.ofm.format, q.ofm.bits, q.config.ofm_block, q.ofm.shape, count
    )
    return q.ofm.memory.write_latency + int(tx / q.ofm.memory.bandwidth)


def ao_cycles_per_element(arch: EthosUConfig, q: PerfQuery) -> float:
    """Output-stage cycles per output element: the slower of the op's output and activation stages."""
    op = hw_op(q.op_type)
    ifm_bits, ofm_bits = q.ifm.bits, q.ofm.bits
    if op == ELEMENTWISE and ifm_bits == 32:
        index = OUT_EW32_BINARY if q.ifm2 is not None else OUT_EW32_UNARY
    elif q.op_type == "Mul" and ofm_bits == 32:
        index = OUT_MUL32
    elif q.op_type == "Mul" or (op != ELEMENTWISE and q.config.acc40):
        index = OUT_MUL_OR_ACC40
    elif q.op_type in ("Add", "Sub"):
        index = OUT_ADD
    elif q.op_type == "MaxPool":
        index = OUT_MAXPOOL
    else:
        index = OUT_OTHER
    act = ACT_NONE
    if q.activation in LUT_ACTIVATIONS:
        act = ACT_LUT
    elif q.activation in CLAMP_ACTIVATIONS:
        act = ACT_CLAMP
    return max(arch.output_cycles[index], arch.activation_cycles[act])


def mac_cycles_per_block(arch: EthosUConfig, q: PerfQuery) -> int:
    """MAC cycles of one OFM block (EstimateMacCyclesPerBlock)."""
    op = hw_op(q.op_type)
    cfg = q.config
    ifm_block = _min_shape(q.ifm.shape, cfg.ifm_block)
    ofm_block = _min_shape(q.ofm.shape, cfg.ofm_block)
    uh, uw, ud = _ofm_ublock(arch, q.ofm.shape, op, q.kernel)
    nh, nw, nd = div_up(ofm_block[1], uh), div_up(ofm_block[2], uw), div_up(ofm_block[3], ud)
    n_wh = nh * nw
    ifm_bits = q.ifm.bits
    cycles_wb = 32 * ud // 8
    sub_w, sub_h = SUBKERNEL_MAX if op in (CONV, DEPTHWISE, POOLING, REDUCE_SUM) else (1, 1)
    part_kernel = op == CONV and cfg.traversal == "PartKernel"
    total = 0
    for x in range(0, q.kernel.w, sub_w):
        for y in range(0, q.kernel.h, sub_h):
            sub_elems = min(q.kernel.h - y, sub_h) * min(q.kernel.w - x, sub_w)
            if op == POOLING:
                steps = 1
                cycles = max(4, sub_elems) * n_wh * nd
                if not arch.is_u55_32:
                    cycles = cycles * (ifm_bits // 2)
            elif op == DEPTHWISE:
                steps = div_up(sub_elems, 4)
                cycles = max(cycles_wb, 4 * n_wh * (ifm_bits // 8)) * steps * nd
            elif (op == CONV and not part_kernel) or op == REDUCE_SUM:
                steps = sub_elems
                cycles = max(cycles_wb, 4 * n_wh) * steps * nd
            else:
                steps = div_up(sub_elems, 2 if ifm_bits == 16 else 4)
                cycles = max(cycles_wb, 4 * n_wh) * steps * nd * div_up(ifm_block[3], 8)
            delay = 0
            if arch.is_u55_32:
                d = 7 if cfg.acc40 else 3
                if n_wh == 1:
                    if nd == 1:
                        delay = d * steps
                    elif steps > 1:
                        delay = d * (steps - 1) * nd
                if (nw == 1 or nh == 1) and nd > 1 and cfg.acc40:
                    delay += d * nd
            else:
                d = 3 if cfg.acc40 and arch.macs <= 128 else 2
                if n_wh == 1:
                    if nd == 1:
                        delay = d * steps
                    elif steps > 1:
                        delay = d * (steps - 1) * nd
            if part_kernel:
                delay *= div_up(ifm_block[3], 8)
            total += cycles + delay
    if op in (CONV, REDUCE_SUM):
        total *= div_up(q.ifm.shape[3], ifm_block[3])
    return total // arch.cores


def mac_op_cycles(arch: EthosUConfig, q: PerfQuery) -> tuple[int, int]:
    """(NPU cycles, MACs) of a MAC op (EstimateMacOpCycles)."""
    op = hw_op(q.op_type)
    cfg = q.config
    ofm_block = _min_shape(q.ofm.shape, cfg.ofm_block)
    uh, uw, ud = _ofm_ublock(arch, q.ofm.shape, op, q.kernel)
    ublocks_in_block = div_up(ofm_block[1], uh) * div_up(ofm_block[2], uw) * div_up(ofm_block[3], ud)
    n_blocks = (
        div_up(q.ofm.shape[1], uh)
        * div_up(q.ofm.shape[2], uw)
        * div_up(q.ofm.shape[3], ud)
        / ublocks_in_block
    )
    ao_per_elem = ao_cycles_per_element(arch, q)
    ao_compute = math.ceil(ao_per_elem * elements(ofm_block))
    bias_cycles = 0.0
    if op in (CONV, DEPTHWISE) and q.has_scales and q.ofm.shape[3] > 0:
        mem = q.weight_staging or q.const_memory
        bias_cycles = 10.0 * ofm_block[3] * mem.read_latency / 256
    ao_block = max(ao_compute, bias_cycles)
    mac_block = mac_cycles_per_block(arch, q)
    ifm_block_cycles = _min_ifm_cycles(arch, q)
    ofm_block_cycles = _min_ofm_cycles(arch, q)
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
    if op not in (DEPTHWISE, POOLING):
        macs *= q.ifm.shape[3]
    return total, macs


def elementwise_cycles(arch: EthosUConfig, q: PerfQuery) -> int:
    """NPU cycles of an elementwise op (EstimateElementwiseCycles)."""
    shape = q.ofm.shape
    if q.ofm.format == "NHCWB16":
        shape = _round_shape(shape, (1, 1, 1, 16))
    n = elements(shape)
    ao_per_elem = ao_cycles_per_element(arch, q)
    ao = math.ceil(ao_per_elem * n)
    block_elems = elements(q.config.ofm_block)
    block_cycles = max(_min_ofm_cycles(arch, q), _min_ifm_cycles(arch, q))
    cmd = math.ceil((block_cycles / block_elems + ao_per_elem) / 4.0 * n)
    return int(max(cmd, ao))


def matmul_cycles(arch: EthosUConfig, q: PerfQuery) -> tuple[int, int]:
    """A U55/U65 MatMul: an elementwise multiply into int32 then a reduce-sum, once per output column."""
    prev = q.config.prev
    mul_q = PerfQuery(
        "Mul",
        q.kernel,
        prev,
        q.ifm,
        FeatureMap(q.ifm.shape, 32, q.tmp_memory, q.ofm.format),
        FeatureMap(q.ifm.shape, q.ifm2.bits, q.ifm2.memory, q.ifm2.format),
        q.activation,
    )
    mul = elementwise_cycles(arch, mul_q)
    red_q = PerfQuery(
        "ReduceSum",
        q.kernel,
        q.config,
        FeatureMap(q.ifm.shape, q.ifm.bits, q.tmp_memory, q.ifm.format),
        FeatureMap((*q.ifm.shape[:3], 1), q.ofm.bits, q.ofm.memory, q.ofm.format),
        None,
        q.activation,
    )
    red_cycles, red_macs = mac_op_cycles(arch, red_q)
    cols = q.ifm2.shape[2]
    return (mul + red_cycles) * cols, red_macs * cols


def op_cycles(arch: EthosUConfig, q: PerfQuery) -> tuple[int, int]:
    """(NPU cycles, MACs) of an op (MeasureCycleCost)."""
    op = hw_op(q.op_type)
    if op == DMA:
        return 0, 0
    if op in (CONV, DEPTHWISE, POOLING, REDUCE_SUM):
        return mac_op_cycles(arch, q)
    if op == ELEMENTWISE:
        return elementwise_cycles(arch, q), 0
    if op == COMPOUND and q.op_type == "MatMul":
        return matmul_cycles(arch, q)
    if op == COMPOUND:  # a transpose: as long as moving its data
        acc = to_bytes(arch, q, element_access(arch, q))
        read = int(acc.ifm_read[0] / q.ifm.memory.bandwidth) + q.ifm.memory.read_latency
        write = int(acc.ofm_write / q.ofm.memory.bandwidth) + q.ofm.memory.write_latency
        return max(read, write), 0
    raise ValueError(f"Ethos-U55/U65 cannot run {q.op_type}")


def element_access(arch: EthosUConfig, q: PerfQuery) -> ElementAccess:
    """Elements each operand of the op moves (MeasureElementAccess)."""
    op = hw_op(q.op_type)
    cfg = q.config
    acc = ElementAccess()
    ifm_block = _min_shape(q.ifm.shape, cfg.ifm_block)
    ofm_block = _min_shape(q.ofm.shape, cfg.ofm_block)
    ifm_round = storage_rounding(q.ifm.format)
    ofm = q.ofm.shape
    if op in (CONV, DEPTHWISE, POOLING, REDUCE_SUM):
        blocks = [div_up(a, b) for a, b in zip(ofm, ofm_block)]
        block_depth = ofm_block[3]
        if op in (DEPTHWISE, POOLING):
            blocks[3] = 1
            block_depth = q.ifm.shape[3]
        subkernels = div_up(q.kernel.w, SUBKERNEL_MAX[0]) * div_up(q.kernel.h, SUBKERNEL_MAX[1])
        rb = _round_shape(ifm_block, ifm_round)
        ifm_fetch = rb[1] * rb[2] * _round_shape(q.ifm.shape, ifm_round)[3]
        kernel_read = q.kernel.area
        if op not in (DEPTHWISE, POOLING):
            kernel_read *= q.ifm.shape[3]
        n_blocks = math.prod(blocks)
        acc.ifm_read[0] = ifm_fetch * subkernels * n_blocks
        if op not in (POOLING, REDUCE_SUM):
            acc.const_read = [kernel_read * block_depth * n_blocks, ofm[3]]
            acc.weights_refetch = blocks[1] * blocks[2]
    elif op == ELEMENTWISE:
        i1, i2 = q.ifm.shape, q.ifm2.shape if q.ifm2 is not None else None
        n2 = elements(i2) if i2 else 0
        if elements(i1) == 1:
            if q.ifm.bits > 8:
                acc.ifm_read[0] = elements(_round_shape(i1, ifm_round))
            elif n2 > 0:
                acc.ifm_read[1] = elements(_round_shape(ofm, ifm_round))
        else:
            acc.ifm_read[0] = elements(_round_shape(ofm, ifm_round))
            if n2 > 1:
                acc.ifm_read[1] = acc.ifm_read[0]
            elif n2 == 1 and q.ifm2.bits > 8:
                acc.ifm_read[1] = elements(_round_shape(i2, ifm_round))
    elif q.op_type == "Transpose":
        acc.ifm_read[0] = elements(q.ifm.shape)
    elif q.op_type == "MatMul":
        cols = q.ifm2.shape[2]
        acc.ifm_read[0] = elements(q.ifm.shape) * cols
        acc.ifm_read[1] = elements(q.ifm2.shape)
        acc.tmp_read = acc.tmp_write = acc.ifm_read[0]
    acc.ofm_write = elements(_round_shape(ofm, storage_rounding(q.ofm.format)))
    return acc


def to_bytes(arch: EthosUConfig, q: PerfQuery, access: ElementAccess) -> ElementAccess:
    """Bytes moved for an element access, burst inefficiency included (ElementTransferToBytes)."""
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
                arch.cores, True, fm.memory, fm.format, fm.bits, cfg.ifm_block, fm.shape, access.ifm_read[i]
            )
    out.ofm_write = memory_transfer(
        arch.cores,
        False,
        q.ofm.memory,
        q.ofm.format,
        q.ofm.bits,
        cfg.ofm_block,
        q.ofm.shape,
        access.ofm_write,
    )
    if q.encoded_weight_bytes:
        out.const_read = [
            access.weights_refetch * q.encoded_weight_bytes,
            access.weights_refetch * q.encoded_scale_bytes,
        ]
        out.weights_refetch = 1
    return out


def access_cycles(q: PerfQuery, byte_access: ElementAccess) -> dict[str, tuple[Memory, int, int]]:
    """Per memory name: (memory, bytes transferred, access cycles) of one op (MeasureAccessCycles)."""
    groups: dict[str, list] = {}

    def add(mem: Memory | None, nbytes: int) -> None:
        if mem is None:
            return
        entry = groups.setdefault(mem.name, [mem, 0])
        entry[1] += nbytes

    add(q.ifm.memory, byte_access.ifm_read[0])
    if q.ifm2 is not None:
        add(q.ifm2.memory, byte_access.ifm_read[1])
    add(q.ofm.memory, byte_access.ofm_write)
    if q.const_memory is not None:
        if q.weight_staging is not None:
            not_prebuffered = max(q.encoded_weight_bytes - q.first_weight_dma_bytes, 0)
            add(q.const_memory, not_prebuffered)
            add(q.weight_staging, not_prebuffered + byte_access.const_read[0])
        else:
            add(q.const_memory, byte_access.const_read[0])
        add(q.const_memory, byte_access.const_read[1])
    if q.tmp_memory is not None:
        add(q.tmp_memory, byte_access.tmp_read + byte_access.tmp_write)
    return {name: (mem, nbytes, int(nbytes / mem.bandwidth)) for name, (mem, nbytes) in groups.items()}


def mem_to_mem_cycles(dst: Memory, src: Memory, nbytes: int) -> int:
    """Cycles of a DMA copy: the slower of reading the source and writing the destination, latency
    included."""
    return max(
        int(nbytes / src.bandwidth) + src.read_latency, int(nbytes / dst.bandwidth) + dst.write_latency
    )
