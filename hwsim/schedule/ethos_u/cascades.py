"""Cascades: consecutive ops run stripe by stripe so that only rolling buffers of their maps stay in SRAM.

When a feature map does not fit the staging SRAM, Vela chains the ops that produce and consume it into a
cascade: the producer computes a few output rows, the consumer uses them, and the map between them lives
in a rolling buffer of a few stripes. With a dedicated SRAM (the arena in DRAM) Vela cascades while each
next op's whole input and output would not fit the SRAM and the buffers still do; otherwise it cascades
when that lowers the peak memory. Source: ``ethosu/regor/compiler/cascade_builder.cpp``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hwsim.schedule.ethos_u.geometry import Shape, elements, round_up
from hwsim.schedule.ethos_u.ir import VOp
from hwsim.schedule.ethos_u.live_ranges import _one_to_one, can_reuse

CASCADABLE_CONV = frozenset({"Conv2D", "DepthwiseConv2D", "FullyConnected"})
CASCADABLE_POOL = frozenset({"AvgPool", "MaxPool"})
CASCADABLE_ELEMENTWISE = frozenset(
    {"Add", "Sub", "Mul", "Maximum", "Minimum", "Asr", "SHL", "CLZ", "Abs", "LeakyRelu"}
)


@dataclass
class CascadeBuffer:
    """The buffer between two ops of a cascade: its shape and bytes."""

    shape: Shape
    size: int


@dataclass
class CascadeInfo:
    """A cascade of ops ``start..end`` (op indices, inclusive), its memory and the buffer each op reads."""

    start: int
    end: int
    mem_usage: int
    local_usage: int
    buffers: dict[int, CascadeBuffer] = field(default_factory=dict)


def _bytes(shape: Shape, bits: int) -> int:
    return -(-elements(shape) * bits // 8)


def rolling_buffer(producer_stripe: Shape, consumer_stripe_input: Shape, bits: int) -> CascadeBuffer:
    """Room for a producer stripe plus the consumer's input stripe, 16 deep (RollingBufferShape)."""
    height = round_up(producer_stripe[1] + consumer_stripe_input[1], consumer_stripe_input[1])
    shape = (consumer_stripe_input[0], height, consumer_stripe_input[2], round_up(producer_stripe[3], 16))
    return CascadeBuffer(shape, _bytes(shape, bits))


def is_cascadable(op: VOp, cost) -> bool:
    """Striped convolutions, pools and elementwise ops on a non-constant input (IsCascadable)."""
    if op.ifms[op.primary_ifm].tensor.is_constant or op.type == "Transpose":
        return False
    return cost.stripe[1] < op.ofm.tensor.shape[1] and (
        op.type in CASCADABLE_CONV or op.type in CASCADABLE_ELEMENTWISE or op.type in CASCADABLE_POOL
    )


def can_reuse_rolling_buffer(
    op: VOp, cost, ifm_buffer: CascadeBuffer | None, ofm_buffer: CascadeBuffer
) -> bool:
    """An op whose output may overwrite its input's rolling buffer (CanReuseCascadeRollingBuffer)."""
    if ifm_buffer is None or not _one_to_one(op) or cost.stripe_input != cost.stripe:
        return False
    if not can_reuse(op.ifms[op.primary_ifm].tensor, op.ofm.tensor):
        return False
    return ifm_buffer.shape == ofm_buffer.shape and ifm_buffer.size == ofm_buffer.size


class CascadeBuilder:
    """Vela's CascadeBuilder over a span of ops."""

    def __init__(
        self,
        sched,
        ops: list[VOp],
        non_local: dict[int, int],
        op_local: dict[int, int],
        live: dict[int, tuple[int, int, int, int]],
        spilling: bool,
    ) -> None:
        self.sched = sched
        self.ops = ops
        self.non_local = non_local  # op index -> bytes live across it that are not its own
        self.op_local = op_local  # op index -> its own bytes
        self.live = live  # id(tensor) -> (start, end, size, range id)
        self.spilling = spilling

    def buffer(self, producer: VOp | None, consumer: VOp | None, costs) -> CascadeBuffer:
        """The buffer between two ops (GetBuffer): whole maps where a full tensor is needed, else rolling."""
        if consumer is None:
            return CascadeBuffer(producer.ofm.shape, self.sched.size_of(producer.ofm.tensor))
        ifm = consumer.ifms[consumer.primary_ifm]
        if producer is None:
            return CascadeBuffer(ifm.shape, self.sched.size_of(ifm.tensor))
        if self.sched.requires_full(producer.ofm.tensor) or self.sched.requires_full(ifm.tensor):
            return CascadeBuffer(
                tuple(max(a, b) for a, b in zip(producer.ofm.shape, ifm.shape)),
                max(self.sched.size_of(producer.ofm.tensor), self.sched.size_of(ifm.tensor)),
            )
        return rolling_buffer(
            costs[producer.index].stripe, costs[consumer.index].stripe_input, producer.ofm.bits
        )

    def build(self, costs: list, fallback: list, limit_bytes: int) -> dict[int, CascadeInfo]:
        """Assign cascades to ``costs`` (copies of them, in place of the list entries) and return them."""
        peak = min(1 << 30, limit_bytes)
        done: dict[int, object] = {}
        cascades: dict[int, CascadeInfo] = {}
        staging = self.sched.mem.staging
        for op in self.ops:
            if not op.npu or op.index in done:
                continue
            ref = costs[op.index]
            ifm = op.ifms[op.primary_ifm]
            if not is_cascadable(op, ref):
                done[op.index] = self.sched.copy_cost(fallback[op.index])
                if not self.spilling:
                    peak = max(self.uncascaded(op), peak)
                continue
            in_cascade = [op]
            best = [op]
            weight_buffer = ref.weight_buffer_bytes()
            ifm_stored = self.sched.size_of(ifm.tensor) if self.sched.memory(ifm.tensor) == staging else 0
            buffers_size = weight_buffer
            best_size = self.uncascaded(op)
            best_local = 0
            start_lr = self.live.get(id(ifm.tensor))
            range_start, range_end, range_size, range_id = start_lr if start_lr else (1, 0, 0, None)
            start_non_local = max(0, self.non_local.get(op.index, 0))
            active_max = inactive_max = 0
            segment_max = 0

            def update(cost, non_local_bytes, is_start, already_local):
                nonlocal active_max, inactive_max, segment_max
                clamped = max(0, non_local_bytes)
                if range_size > 0 and cost is not None and range_start <= cost.time_index <= range_end:
                    if not is_start:
                        adjusted = clamped if already_local else max(0, clamped - range_size)
                        active_max = max(active_max, adjusted)
                else:
                    inactive_max = max(inactive_max, clamped)
                segment_max = max(inactive_max, max(start_non_local, active_max))

            update(ref, start_non_local, True, False)
            producer = op
            previous = None
            while True:
                readers = producer.ofm.tensor.consumers
                if len(readers) != 1:
                    break
                current = readers[0]
                cur_cost = costs[current.index] if current.index < len(costs) else None
                cur_ifm = current.ifms[current.primary_ifm]
                if (
                    current.parent is not None
                    or current.index in done
                    or cur_cost is None
                    or not is_cascadable(current, cur_cost)
                    or producer.ofm.shape != cur_ifm.shape
                    or self.sched.requires_full(cur_ifm.tensor)
                    or self.sched.requires_full(producer.ofm.tensor)
                    or cur_ifm.tensor.needs_linear
                    or producer.ofm.tensor.needs_linear
                    or current.index != producer.index + 1
                ):
                    break
                full_ifm = self.sched.size_of(cur_ifm.tensor)
                full_ofm = self.sched.size_of(current.ofm.tensor)
                info = self.buffer(producer, current, costs)
                in_cascade.append(current)
                reuse = can_reuse_rolling_buffer(producer, costs[producer.index], previous, info)
                buffers_size += cur_cost.weight_buffer_bytes()
                if not reuse:
                    buffers_size += info.size
                already_local = False
                if range_size > 0 and range_id is not None:
                    for t in (cur_ifm.tensor, current.ofm.tensor):
                        lr = self.live.get(id(t))
                        if lr is not None and lr[3] == range_id:
                            already_local = True
                            break
                update(cur_cost, self.non_local.get(current.index, 0), False, already_local)
                if self.spilling:
                    whole_ifm = CascadeBuffer(cur_ifm.shape, full_ifm)
                    whole_ofm = CascadeBuffer(current.ofm.shape, full_ofm)
                    nl = self.non_local.get(current.index, 0)
                    if can_reuse_rolling_buffer(current, fallback[current.index], whole_ifm, whole_ofm):
                        uncascaded = full_ifm + nl
                    else:
                        uncascaded = full_ifm + full_ofm + nl
                    local = ifm_stored + buffers_size
                    size = local + segment_max
                    if uncascaded < peak or size > peak:
                        break
                    best, best_size, best_local = list(in_cascade), size, local
                else:
                    uncascaded = self.uncascaded(current)
                    local = ifm_stored + buffers_size + full_ofm
                    size = local + segment_max
                    if size < best_size or size < uncascaded:
                        best, best_size, best_local = list(in_cascade), size, local
                    prefix = ifm_stored + segment_max + buffers_size
                    if (uncascaded < peak and best_size < peak) or prefix > best_size:
                        break
                previous = info
                producer = current
            if len(best) > 1:
                end = best[0].index + len(best) - 1
                info = CascadeInfo(best[0].index, end, best_size, best_local)
                prev_op = None
                prev_incoming = None
                for cop in best:
                    c = self.sched.copy_cost(costs[cop.index])
                    c.cascade = end
                    c.first_in_cascade = cop is best[0]
                    done[cop.index] = c
                    if prev_op is not None:
                        buf = self.buffer(prev_op, cop, costs)
                        info.buffers[cop.index] = buf
                        prev_cost = done[prev_op.index]
                        if can_reuse_rolling_buffer(prev_op, prev_cost, prev_incoming, buf):
                            prev_cost.ofm_reuses_ifm = True
                        prev_incoming = buf
                    prev_op = cop
                cascades[end] = info
                if not self.spilling:
                    peak = max(best_size, peak)
            else:
                done[op.index] = self.sched.copy_cost(fallback[op.index])
                if not self.spilling:
                    peak = max(self.uncascaded(op), peak)
        for index, cost in done.items():
            costs[index] = cost
        return cascades

    def uncascaded(self, op: VOp) -> int:
        """The op's own staging bytes plus what else is live across it."""
        return self.op_local.get(op.index, 0) + self.non_local.get(op.index, 0)
