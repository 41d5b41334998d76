"""When each tensor occupies the staging SRAM, and how much is in use at each point of the schedule.

Vela gives every op two time points (consecutive ops are two apart, all ops of a cascade share one) and a
tensor lives from its first to its last use; an op's output may reuse its input's space when the op maps
elements one to one. The memory in use at a time point is split into what the op itself holds, its
cascade buffers, its weight buffers and everything else live across it (``LRMemory``), which the
buffering and cascading decisions consult. Source: ``ethosu/regor/compiler/live_range.cpp``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from hwsim.schedule.ethos_u.ir import VOp, VTensor

OP_LOCAL, OP_CASCADE, OP_BUFFERING = "local", "cascade", "buffering"
ONE_TO_ONE = frozenset(
    {
        "Add",
        "Sub",
        "Mul",
        "Maximum",
        "Minimum",
        "Asr",
        "SHL",
        "CLZ",
        "LUT",
        "MemoryCopy",
        "Relu",
        "Relu6",
        "ReluN1To1",
        "Abs",
        "LeakyRelu",
        "Transpose",
    }
)
POOLING = frozenset({"AvgPool", "MaxPool", "ReduceSum"})


@dataclass
class LRMemory:
    """Bytes in use at one time point, by what holds them."""

    op: int = 0
    buffering: int = 0
    cascade: int = 0
    nonlocal_: int = 0

    def used(self) -> int:
        """All bytes in use."""
        return self.op + self.cascade + self.buffering + self.nonlocal_

    def unbuffered(self) -> int:
        """Bytes in use other than weight buffers."""
        return self.op + self.cascade + self.nonlocal_

    def copy(self) -> LRMemory:
        """A copy another schedule may change."""
        return LRMemory(self.op, self.buffering, self.cascade, self.nonlocal_)


@dataclass(eq=False)
class LiveRange:
    """One or more tensors sharing space (an op's output reusing its input), and when they are live."""

    size: int
    usage: str
    tensors: list = field(default_factory=list)
    start: int = 1 << 40
    end: int = -1
    op_delay: int = 0

    def mark(self, time: int, duration: int = 1) -> None:
        """Extend the range over ``[time, time + duration]``."""
        t0, t1 = max(time, 0), time + duration
        if t1 >= t0:
            self.start = min(self.start, t0)
            self.end = max(self.end, t1)

    def adjust(self, mem: LRMemory, time: int, amount: int) -> None:
        """Add ``amount`` bytes of this range to the memory of time point ``time``."""
        if time == self.start + self.op_delay:
            if self.usage == OP_LOCAL:
                mem.op += amount
            elif self.usage == OP_CASCADE:
                mem.cascade += amount
            else:
                mem.buffering += amount
        else:
            mem.nonlocal_ += amount


@dataclass(eq=False)
class WeightBuffer:
    """A weight buffer in staging memory (one part of a single or double buffer)."""

    size: int


class LiveRangeGraph:
    """Live ranges of the tensors in the staging memory for one schedule (Vela's LiveRangeGraph)."""

    def __init__(self, reuse_ifms: bool = True) -> None:
        self.reuse_ifms = reuse_ifms
        self.ranges: list[LiveRange] = []
        self.by_tensor: dict[int, LiveRange] = {}
        self.op_time: dict[int, int] = {}  # op index -> its time point
        self.now = 0

    def range_of(self, tensor, size: int, usage: str) -> LiveRange:
        """The range holding ``tensor``, created when it has none."""
        lr = self.by_tensor.get(id(tensor))
        if lr is None:
            lr = LiveRange(size, usage, [tensor])
            self.ranges.append(lr)
            self.by_tensor[id(tensor)] = lr
        return lr

    def fuse(self, ifm: VTensor, ofm: VTensor, ifm_size: int) -> None:
        """Let ``ofm`` share ``ifm``'s space."""
        lr = self.range_of(ifm, ifm_size, OP_LOCAL)
        other = self.by_tensor.get(id(ofm))
        if other is not None and other is not lr:
            lr.tensors.extend(other.tensors)
            other.tensors.clear()
            other.size = 0
        if ofm not in lr.tensors:
            lr.tensors.append(ofm)
        self.by_tensor[id(ofm)] = lr

    def same_range(self, a, b) -> bool:
        """True when the two tensors share one range."""
        ra, rb = self.by_tensor.get(id(a)), self.by_tensor.get(id(b))
        return ra is not None and ra is rb

    def extract(
        self,
        ops: list[VOp],
        costs,
        cascades: dict,
        in_target,
        size_of,
        add_rolling_buffers: bool,
        structures: list[OpStructure] | None = None,
    ) -> None:
        """Vela's ExtractLiveRangesFromCascades over ``ops``; sets each cost's ``time_index``.

        ``in_target(tensor)`` says whether a tensor lives in the memory being tracked; ``size_of(tensor)``
        gives its allocated bytes; ``structures``, the ops' :func:`op_structure` if already found.
        """
        time_of_cascade: dict[int, int] = {}
        start = self.now
        outputs = []
        if structures is None:
            structures = [op_structure(op) for op in ops]
        for op, cost, (final_ofm, _, operands) in zip(ops, costs, structures):
            cascade = cost.cascade if cost is not None else 0
            info = cascades.get(cascade) if cascade else None
            buffer = None
            t = self.now
            if op.npu and cost is not None:
                ofm = final_ofm
                fused = None
                if (add_rolling_buffers or in_target(ofm)) and cost.ofm_reuses_ifm:
                    fused = op.ifm.tensor
                if fused is None and self.reuse_ifms and info is None:
                    fused = self._reusable_ifm(op, ofm, in_target, size_of)
                if fused is not None:
                    self.fuse(fused, ofm, size_of(fused))
                if info is not None:
                    buffer = info.buffers.get(op.index)
                    t = time_of_cascade.setdefault(cascade, t)
                parts = cost.weight_buffers
                slices = len(cost.depth_slices) - 1
                for part, wb in enumerate(parts):
                    lr = self.range_of(wb, wb.size, OP_BUFFERING)
                    s, d = t, 1
                    if part == 0 and cost.prebuffer:
                        lr.op_delay = 1
                        s -= 1
                        d += 1
                    if part != (slices - 1) % len(parts):
                        d -= 1
                    lr.mark(s, d)
            if cost is not None:
                cost.time_index = t
            self.op_time[op.index] = t
            for is_ifm, is_primary, tens in operands:
                rolling = buffer is not None and is_ifm and is_primary
                if not in_target(tens) and not (add_rolling_buffers and rolling):
                    continue
                cascading_ofm = not is_ifm and cascade != 0 and op.index < info.end
                lr = self.range_of(tens, size_of(tens), OP_CASCADE if cascading_ofm else OP_LOCAL)
                if tens.is_graph_input:
                    lr.mark(start)
                if tens.is_graph_output:
                    outputs.append(lr)
                lr.mark(t)
                if rolling:
                    lr.size = buffer.size
            if t == self.now:
                self.now += 2
        for lr in outputs:
            lr.mark(self.now, 1)
        self.now += 1

    def _reusable_ifm(self, op: VOp, ofm: VTensor, in_target, size_of):
        if not _one_to_one(op):
            return None
        if not in_target(ofm):
            return None
        for conn in op.ifms:
            t = conn.tensor
            if (
                not t.is_constant
                and (t.storage_shape or t.shape) == (ofm.storage_shape or ofm.shape)
                and can_reuse(t, ofm)
                and t.format == ofm.format
                and in_target(t)
            ):
                return t
        return None

    def snapshot(self) -> tuple[list[LRMemory], int]:
        """Memory in use at every time point, and the peak."""
        usage = [LRMemory() for _ in range(self.now + 1)]
        peak = 0
        for lr in self.ranges:
            size = -(-lr.size // 16) * 16
            for t in range(lr.start, lr.end + 1):
                lr.adjust(usage[t], t, size)
                peak = max(peak, usage[t].used())
        return usage, peak


class OpStructure(NamedTuple):
    """What live ranges read of an op's group, fixed once the ops are lowered: the tensor it finally writes,
    the ids of those it passes within the group, and (is an IFM, is the primary IFM, tensor) of each
    operand in memory, its own and those of the ops chained into it (LiveRangeTensors)."""

    final_ofm: VTensor
    internal: frozenset[int]
    operands: list[tuple[bool, bool, VTensor]]


def op_structure(op: VOp) -> OpStructure:
    """The :class:`OpStructure` of ``op``; constants and tensors passed within the group are left out."""
    internal = frozenset(id(t) for t in op.internal_tensors())
    out = [(True, i == op.primary_ifm, c) for i, c in enumerate(op.ifms)] + [(False, False, op.ofm)]
    for sub in op.chained:
        out += [(True, False, c) for c in sub.ifms] + [(False, False, sub.ofm)]
    operands = [
        (is_ifm, is_primary, c.tensor)
        for is_ifm, is_primary, c in out
        if not c.tensor.is_constant and id(c.tensor) not in internal
    ]
    return OpStructure(op.final_ofm.tensor, internal, operands)


def _one_to_one(op: VOp) -> bool:
    """Ops whose output element depends only on the same input element (output may overwrite input)."""
    return op.type in ONE_TO_ONE or (op.type in POOLING and op.kernel.area == 1)


def can_reuse(ifm: VTensor, ofm: VTensor) -> bool:
    """Vela's CanReuseIFMTensors: an output may take its input's space."""
    return (
        not ifm.is_graph_output
        and ifm.bits == ofm.bits
        and len(ifm.consumers) == 1
        and len(ofm.producers) == 1
    )
