"""An Ethos-U op's final cost as Vela 5.2.0 reports it (``NetworkPerformance::EstimateFullOpPerformance``).

The NPU cycles of an op with buffered weights include the part of the first weight slice's DMA that the
previous op could not hide; on U85 a LUT op's NPU cycles also include copying its table into the LUT RAM,
in full after buffered weights, else what the previous op could not hide. An op's time is the larger of its
NPU cycles and the access cycles of its busiest memory. An op chained into another (U85) runs in that op's
pass: all its cycles and traffic are the other op's, and it reports none. The bytes each memory reads and
writes are kept for the energy model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hwsim.schedule.ethos_u import estimator as est
from hwsim.schedule.ethos_u.ir import VOp
from hwsim.schedule.ethos_u.scheduler import OpCost, Scheduler


@dataclass
class MemoryTraffic:
    """Bytes one op reads and writes in one memory, and the cycles Vela charges that memory."""

    memory: est.Memory
    read_bytes: int = 0
    write_bytes: int = 0
    access_cycles: int = 0


@dataclass
class OpResult:
    """One scheduled op's cost: Vela's ``op_cycles`` (total), ``npu_cycles``, MACs and traffic per memory."""

    op: VOp
    cost: OpCost | None
    npu_cycles: int = 0
    total_cycles: int = 0
    macs: int = 0
    weight_wait_cycles: int = 0  # cycles of weight DMA the NPU waits for
    traffic: dict[str, MemoryTraffic] = field(default_factory=dict)
    # (memory, action, operand) -> bytes
    operands: dict[tuple[str, str, str], int] = field(default_factory=dict)

    def add(self, memory: est.Memory, operand: str, read: int = 0, write: int = 0) -> None:
        """Count bytes of ``operand`` (inputs, weights, outputs or scratch) against a memory."""
        t = self.traffic.setdefault(memory.name, MemoryTraffic(memory))
        t.read_bytes += int(read)
        t.write_bytes += int(write)
        for action, n in (("read", read), ("write", write)):
            if n:
                key = (memory.name, action, operand)
                self.operands[key] = self.operands.get(key, 0) + int(n)


def estimate(sched: Scheduler, costs: list[OpCost | None]) -> list[OpResult]:
    """Every op's final cost, in schedule order."""
    results = []
    prev: OpCost | None = None
    for op, cost in zip(sched.ops, costs):
        results.append(_op_result(sched, op, cost, prev))
        results.extend(OpResult(sub, None) for sub in op.chained)
        prev = cost
    return results


def _op_result(sched: Scheduler, op: VOp, cost: OpCost | None, prev: OpCost | None) -> OpResult:
    res = OpResult(op, cost)
    if cost is None:  # a CPU op: Vela does not time it
        return res
    q = sched.perf_query(op, cost, fmt=cost.weight_format)
    cycles, macs = sched.fam.op_cycles(q)
    res.macs = macs
    res.npu_cycles = cycles
    nbytes, access_cycles = sched.fam.traffic(q)
    slack = prev.slack_cycles if prev is not None else 0
    lut_transfer = sched.fam.lut_transfer(sched.mem.const, op.ifm.bits) if op.type == "LUT" else 0
    weights_memory = sched.mem.const if cost.weights is not None else None
    if cost.weights is not None and cost.buffered:
        initial = cost.weights.range_sizes[0]
        wait = max(sched.fam.mem_to_mem(sched.mem.staging, sched.mem.const, initial) - slack, 0)
        res.add(sched.mem.const, "weights", read=cost.weights.allocation_bytes)
        res.add(sched.mem.staging, "weights", write=cost.weights.allocation_bytes)
        res.npu_cycles = max(cost.full_weight_transfer_cycles - slack + cost.slack_cycles, cycles + wait)
        res.weight_wait_cycles = res.npu_cycles - cycles
        weights_memory = sched.mem.staging
    else:
        lut_transfer = max(lut_transfer - slack, 0)
    res.npu_cycles += lut_transfer
    res.add(q.ofm.memory, "outputs", write=nbytes.ofm_write)
    res.add(q.ifm.memory, "inputs", read=nbytes.ifm_read[0])
    if q.ifm2 is not None:
        res.add(q.ifm2.memory, "inputs", read=nbytes.ifm_read[1])
    for sub, ext in zip(q.group[1:], nbytes.group):  # the maps in memory of the group's later ops
        for fm, operand, n, written in (
            (sub.ifm, "inputs", ext.ifm_read[0], 0),
            (sub.ifm2, "inputs", ext.ifm_read[1], 0),
            (sub.ofm, "outputs", 0, ext.ofm_write),
        ):
            if n or written:
                res.add(fm.memory, operand, read=n, write=written)
    if q.tmp_memory is not None:
        res.add(q.tmp_memory, "scratch", read=nbytes.tmp_read, write=nbytes.tmp_write)
    if weights_memory is not None:
        res.add(weights_memory, "weights", read=nbytes.const_read[0] + nbytes.const_read[1])
    busiest = 0
    for name, (memory, _, cycles_) in access_cycles.items():
        res.traffic.setdefault(name, MemoryTraffic(memory)).access_cycles = cycles_
        busiest = max(busiest, cycles_)
    res.total_cycles = max(res.npu_cycles, busiest)
    return res
