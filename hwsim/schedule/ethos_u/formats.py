"""Which feature maps Vela stores in 16-deep bricks (NHCWB16) and which it keeps linear (NHWC).

Bricks let the NPU fetch whole bursts along depth, so Vela uses them wherever it can; a tensor stays NHWC
(``Scheduler::UpdateSchedulerTensor`` in ``ethosu/regor/compiler/scheduler.cpp``) when it is a constant,
a graph input or output, read or written by the CPU, viewed with different widths or depths by its
producers and consumers (a reshape in between), an int32 tensor a reduce-sum reads, or on U55/U65 the
operand of an op whose constraints ask for linear data (transposes, matrix multiplies, and a cast's
output); the U85's constraints ask for none.
"""

from __future__ import annotations

from hwsim.schedule.ethos_u.ir import VOp, VTensor

LINEAR_OPERAND_OPS = frozenset({"Transpose", "MatMul"})


def _needs_linear(t: VTensor, conns: dict[int, list]) -> bool:
    if t.is_constant or t.is_graph_input or t.is_graph_output:
        return True
    if any(not op.npu for op in t.producers + t.consumers):
        return True
    shapes = conns.get(id(t), [])
    if len({(s[2], s[3]) for s in shapes}) > 1:
        return True
    return t.bits == 32 and any(op.type == "ReduceSum" for op in t.consumers)


def _u55_op_needs_linear(t: VTensor) -> bool:
    """The U55/U65 operator constraints' NHWC requirements: transpose and MatMul operands, a cast's output."""
    if any(op.type in LINEAR_OPERAND_OPS for op in t.producers + t.consumers):
        return True
    return any(op.type == "MemoryCopy" and op.ifm.bits != op.ofm.bits for op in t.producers)


def assign_formats(ops: list[VOp], family: str = "u55") -> None:
    """Set ``format`` on every tensor the ops of ``family`` ("u55", "u65" or "u85") read or write."""
    conns: dict[int, list] = {}
    tensors: dict[int, VTensor] = {}
    for op in ops:
        for conn in (*op.ifms, op.ofm):
            conns.setdefault(id(conn.tensor), []).append(conn.shape)
            tensors[id(conn.tensor)] = conn.tensor
    for t in tensors.values():
        t.needs_linear = _needs_linear(t, conns) or (family != "u85" and _u55_op_needs_linear(t))
        t.format = "NHWC" if t.needs_linear else "NHCWB16"
