"""What the mapper and the performance models hand the simulator: per op a :class:`LayerPlan` of
:class:`Tile` steps and :class:`Transfer` moves, and the :class:`Mapping` reported to the user.

Kept apart from :mod:`hwsim.schedule.mapper` (the tiling search, which computes with numpy) so that a
performance model with its own planning (``vela-5.2``) builds plans without importing it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from hwsim.schedule.counts import ActionCounts
from hwsim.workload.graph import Graph, Op, Tensor


@dataclass(frozen=True)
class Transfer:
    """One DMA transfer: ``nbytes`` of ``operand`` from level ``src`` to level ``dst`` (indices).

    ``cycles``, when a performance model knows them, is how long a stream holds its port (else the
    simulator derives it from the bytes and the level's bandwidth).
    """

    operand: str
    src: int
    dst: int
    nbytes: int
    bits: int
    cycles: int | None = None


@dataclass(frozen=True)
class Tile:
    """One simulated step: loads, then ``cycles`` on the unit, then stores.

    ``streams`` are read or written by the unit's own memory port while it computes (an NPU that fetches
    its feature maps itself, as Ethos-U does): each holds its level's read port for ``nbytes / read
    bandwidth`` cycles, concurrently with the compute, so the step lasts as long as the slowest of them.
    A stream's ``src`` and ``dst`` are both the level it uses.
    """

    cycles: int
    macs: int
    loads: tuple[Transfer, ...] = ()
    stores: tuple[Transfer, ...] = ()
    streams: tuple[Transfer, ...] = ()
    wait_cycles: int = 0  # the unit waits this long before computing (stalls a memory model computed itself)


@dataclass(frozen=True)
class Mapping:
    """How a layer was mapped, for the report."""

    unit: str
    dataflow: str = ""
    loop_order: str = ""
    tile: dict = field(default_factory=dict)
    n_tiles: int = 1
    buffers: int = 1
    homes: dict = field(default_factory=dict)
    working_set_bytes: dict = field(default_factory=dict)
    capacity_bytes: dict = field(default_factory=dict)
    fits: bool = True
    reason: str = ""  # why the op runs where it does, when a performance model says (a CPU op's rule)

    def describe(self) -> str:
        """One line: unit, dataflow, loop order, tile, buffering and working set per level."""
        if self.reason:
            return f"{self.unit}: {self.reason}"
        tile = " ".join(f"{k}={v}" for k, v in self.tile.items())
        ws = ", ".join(
            f"{lvl} {b:,}/{self.capacity_bytes.get(lvl, 0):,} B" for lvl, b in self.working_set_bytes.items()
        )
        buf = "double-buffered" if self.buffers == 2 else "single-buffered"
        fit = "" if self.fits else " (DOES NOT FIT: streamed)"
        parts = [self.unit, self.dataflow, self.loop_order, tile, f"{self.n_tiles} tiles {buf}", ws + fit]
        return "; ".join(p for p in parts if p)


@dataclass
class LayerPlan:
    """Everything the simulator needs for one op, plus the counts that do not depend on timing."""

    op: str
    kind: str
    unit: str
    macs: int
    precision: str
    compute_cycles: int
    tiles: list[Tile]
    mapping: Mapping
    counts: ActionCounts
    input_bytes_offchip: int = 0  # bytes this layer moves to or from the outermost level (roofline)
    # (level, "read"|"write", operand) -> elements (bytes when 8-bit)
    traffic: dict = field(default_factory=dict)
    reports: tuple = ()  # a peer model's own per-layer figures (SCALE-Sim's report rows), if it has them
    # level index -> bytes this layer leaves unused there (size less what is homed there and its working set):
    # room for the next layer's prefetched weights (``dma.prefetch_next_weights``)
    free_bytes: dict = field(default_factory=dict)


def tensor_bits(t: Tensor) -> int:
    """Stored bits per element (``Tensor.bits`` when narrower than the dtype)."""
    return t.element_bits


def tensor_elems(t: Tensor) -> int:
    """Elements of a tensor (unknown dimensions count 1)."""
    return math.prod(int(d or 1) for d in t.shape)


def tensor_bytes(t: Tensor) -> int:
    """Bytes of a tensor, rounded up."""
    return -(-tensor_elems(t) * tensor_bits(t) // 8)


def _params(graph: Graph, op: Op) -> list[str]:
    return [n for n in op.inputs if n and graph.tensors[n].is_parameter]


def _acts_in(graph: Graph, op: Op) -> list[str]:
    return [n for n in op.inputs if n and not graph.tensors[n].is_parameter]


def precision_of(graph: Graph, op: Op) -> tuple[int, int, int]:
    """(weight bits, activation bits, accumulator bits) of an op."""
    prec = op.attrs.get("precision")
    if prec:
        return int(prec["weights"]), int(prec["activations"]), int(prec["accumulator"])
    acts = _acts_in(graph, op)
    a_bits = tensor_bits(graph.tensors[acts[0]]) if acts else 8
    params = [graph.tensors[n] for n in _params(graph, op) if len(graph.tensors[n].shape) > 1]
    w_bits = tensor_bits(params[0]) if params else a_bits
    return w_bits, a_bits, 32
