"""Which feature maps Vela keeps in the staging SRAM when the arena itself is in DRAM (a dedicated SRAM).

Every output of an uncascaded NPU op that another NPU op reads starts as a candidate. If all candidates
fit at once, all stay; otherwise a map that cannot fit next to what must stay is evicted to DRAM, one that
fits whatever happens is kept, and for the rest Vela tries every keep/evict combination of each group of
overlapping live ranges and keeps the one with the most element accesses served from SRAM. Maps that an
elementwise op reads next to a DRAM input are evicted as well (its inputs must share a memory). Source:
``ethosu/regor/compiler/faststorage_allocator.cpp``.
"""

from __future__ import annotations

from hwsim.schedule.ethos_u.ir import VTensor
from hwsim.schedule.ethos_u.live_ranges import LiveRange, LiveRangeGraph, LRMemory

MAX_COMPONENT_SIZE = 20
MAX_ACCESS = 1 << 62
ELEMENTWISE = frozenset({"Add", "Sub", "Mul", "Maximum", "Minimum", "Asr", "SHL", "CLZ", "Abs", "LeakyRelu"})


def _usage(graph: LiveRangeGraph) -> tuple[list[LRMemory], int]:
    return graph.snapshot()


def _adjust(memory: list[LRMemory], lr: LiveRange, amount: int) -> None:
    for t in range(lr.start, lr.end + 1):
        lr.adjust(memory[t], t, amount)


def _peak(memory: list[LRMemory], lr: LiveRange) -> int:
    return max(memory[t].used() for t in range(lr.start, lr.end + 1))


def allocate_feature_maps(sched, schedule) -> None:
    """Move the outputs that fit (and pay off) to the staging memory (``tensor.memory = "staging"``)."""
    limit = min(1 << 30, sched.mem.staging_limit_bytes)
    candidates: dict[int, VTensor] = {}
    for op, cost in zip(sched.ops, schedule.costs):
        if cost is None or cost.cascade != 0:
            continue
        internal = {id(t) for t in op.internal_tensors()}
        outputs = [op.ofm.tensor] if not cost.require_ofm_in_arena else []
        for t in outputs + [sub.ofm.tensor for sub in op.chained]:
            if (
                t.consumers
                and not any(not c.npu for c in t.consumers)
                and not t.is_graph_output
                and id(t) not in candidates
                and id(t) not in internal
            ):
                candidates[id(t)] = t
                t.memory = "staging"
    graph = sched.live_ranges(schedule)
    max_use, peak = _usage(graph)
    base = [LRMemory(m.op, m.buffering, m.cascade, m.nonlocal_) for m in max_use]
    ranges: list[LiveRange] = []
    for lr in graph.ranges:
        if any(id(t) in candidates for t in lr.tensors):
            ranges.append(lr)
            _adjust(base, lr, -lr.size)
    switches = sorted(graph.op_time[op.index] for op, cost in zip(sched.ops, schedule.costs) if cost is None)

    def evict(lr: LiveRange) -> None:
        _adjust(max_use, lr, -lr.size)
        for t in lr.tensors:
            if id(t) in candidates:
                t.memory = "arena"

    def keep(lr: LiveRange) -> None:
        _adjust(base, lr, lr.size)

    npu_only = []
    for lr in ranges:
        if any(lr.start <= s <= lr.end for s in switches):
            evict(lr)
        else:
            npu_only.append(lr)
    if peak <= limit:
        _elementwise_sanitizer(sched, schedule, graph, evict)
        return
    fitting = []
    for lr in npu_only:
        if _peak(base, lr) + lr.size > limit:
            evict(lr)
        else:
            fitting.append(lr)
    competing = []
    for lr in fitting:
        if _peak(max_use, lr) <= limit:
            keep(lr)
        else:
            competing.append(lr)
    if competing:
        access = _access(sched, schedule, competing)
        start, end = 0, competing[0].end
        for i in range(1, len(competing) + 1):
            if i < len(competing) and competing[i].start <= end and i - start <= MAX_COMPONENT_SIZE:
                end = max(end, competing[i].end)
                continue
            component = competing[start:i]
            evicted = _best_allocation(component, base, max_use, limit, access)
            for lr, out in zip(component, evicted):
                (evict if out else keep)(lr)
            if i < len(competing):
                start, end = i, competing[i].end
    _elementwise_sanitizer(sched, schedule, graph, evict)


def _access(sched, schedule, ranges: list[LiveRange]) -> dict[int, int]:
    """Elements each live range's tensors are read and written: the value of keeping it in SRAM."""
    out = {}
    for lr in ranges:
        total = 0
        in_cascade = False
        for t in lr.tensors:
            for cons in t.consumers:
                cost = schedule.costs[cons.index]
                info = schedule.cascades.get(cost.cascade) if cost is not None and cost.cascade else None
                if info is not None and cons.index > info.start:
                    in_cascade = True
                    break
                access = _own_access(cons, cost)
                if access is not None:
                    if cons.ifm.tensor is t:
                        total += access.ifm_read[0]
                    elif cons.ifm2 is not None and cons.ifm2.tensor is t:
                        total += access.ifm_read[1]
            if in_cascade:
                total = MAX_ACCESS
                break
            for prod in t.producers:
                access = _own_access(prod, schedule.costs[prod.index])
                if access is not None:
                    total += access.ofm_write
        out[id(lr)] = total
    return out


def _own_access(op, cost):
    """The elements ``op`` itself moves: a primary's own, or for a chained op the access of the first of its
    operands in memory that its op group's estimate records (None without an estimate)."""
    if cost is None or cost.access is None:
        return None
    if op.parent is None:
        return cost.access
    member = next(i for i, m in enumerate(op.parent.group) if m.op is op and not m.fused)
    return cost.access.group[member - 1]


def _best_allocation(component: list[LiveRange], base, max_use, limit: int, access) -> list[bool]:
    """Exhaustive keep/evict search over one component, most SRAM accesses wins (AllocateExhaustive)."""
    best = {"score": 0, "evicted": [False] * len(component)}
    current = [False] * len(component)

    def search(ix: int, score: int) -> None:
        if ix >= len(component):
            if score > best["score"] or best["score"] == 0:
                best["score"] = score
                best["evicted"] = list(current)
            return
        lr = component[ix]
        can_fit = _peak(base, lr) + lr.size <= limit
        always = can_fit
        if can_fit:
            always = _peak(max_use, lr) <= limit
            current[ix] = False
            _adjust(base, lr, lr.size)
            search(ix + 1, score + access.get(id(lr), 0))
            _adjust(base, lr, -lr.size)
        if not always:
            current[ix] = True
            _adjust(max_use, lr, -lr.size)
            search(ix + 1, score)
            _adjust(max_use, lr, lr.size)

    search(0, 0)
    return best["evicted"]


def _elementwise_sanitizer(sched, schedule, graph, evict) -> None:
    """An op reading a DRAM input evicts its other SRAM inputs that only elementwise ops read."""
    for op, cost in zip(sched.ops, schedule.costs):
        if cost is None:
            continue
        info = schedule.cascades.get(cost.cascade) if cost.cascade else None
        if info is not None and op.index > info.start:
            continue
        internal = {id(t) for t in op.internal_tensors()}
        inputs = [
            c.tensor
            for o in (op, *op.chained)
            for c in o.ifms
            if not c.tensor.is_constant and id(c.tensor) not in internal
        ]
        if any(t.memory != "staging" for t in inputs):
            for t in inputs:
                if t.memory == "staging" and all(c.type in ELEMENTWISE for c in t.consumers):
                    lr = graph.by_tensor.get(id(t))
                    if lr is not None:
                        evict(lr)
