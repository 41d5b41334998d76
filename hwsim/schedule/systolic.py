"""Closed-form compute cycles of a MAC array per fold, for each dataflow (the ``DATAFLOWS`` registry).

Every MAC op is seen as SCALE-Sim sees a layer: ``G`` independent matrix products of an ``P x W`` operand
matrix (output pixels x window) by a ``W x K`` one (window x filters), with ``W = taps * depth``
(``taps = FY*FX``, ``depth`` = input channels per group). A fold is one placement of the array: two of the
three dimensions are spread over the ``rows x columns`` processing elements and the third is streamed
through them. SCALE-Sim 3.0.0 (``scalesim/compute/systolic_compute_{os,ws,is}.py``) builds, per fold, a
demand matrix whose row count is the fold's cycles; partial folds are padded, so every fold of a layer costs
the same:

==================  ==================  ========  ==============================
dataflow            rows x columns      streamed  cycles of one fold
==================  ==================  ========  ==============================
output_stationary   P x K               W         W + R + C - 2
weight_stationary   W x K               P         2R + C + P - 2
input_stationary    W x P               K         2R + C + K - 2
dot_product         depth x K           P         taps * ceil(P / spatial_lanes)
==================  ==================  ========  ==============================

``dot_product`` is not systolic: an Ethos-U-like or HMX-like engine reduces ``rows`` input channels into
each of ``columns`` output channels for ``spatial_lanes`` output pixels every cycle, without fill or drain.

SCALE-Sim's COMPUTE_REPORT "Total Cycles" (CALC bandwidth mode, no stalls) is the index of the last demand
row, one less than the count: :func:`scalesim_reported_cycles`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hwsim.devices.names import DATAFLOW_NAMES
from hwsim.registry import Registry


@dataclass(frozen=True)
class Gemm:
    """A MAC op as ``groups`` products of (P x W) by (W x K), ``W = taps * depth``."""

    P: int
    K: int
    taps: int
    depth: int
    groups: int = 1
    useful_macs: int = 0  # when some PEs multiply structural zeros (block-diagonal depthwise); 0: all useful

    @property
    def W(self) -> int:
        """The reduction length (window size) of one output."""
        return self.taps * self.depth

    @property
    def macs(self) -> int:
        """Useful multiply-accumulates."""
        return self.useful_macs or self.groups * self.P * self.K * self.W

    def size(self, dim: str) -> int:
        """The size of dimension ``dim`` (``"P"``, ``"K"`` or ``"W"``)."""
        return {"P": self.P, "K": self.K, "W": self.W}[dim]


@dataclass(frozen=True)
class Dataflow:
    """Which GEMM dimensions sit on the array's rows and columns, and what one fold costs.

    Subclasses implement :meth:`fold_cycles`; ``row_dim``/``col_dim`` name the dimensions folded over the
    rows and columns, ``streamed`` the one that flows through the array.
    """

    name: str
    row_dim: str
    col_dim: str
    streamed: str
    systolic: bool = True
    stationary: str = ""  # the operand held in the PEs: "outputs", "weights" or "inputs"

    def fold_cycles(self, g: Gemm, rows: int, cols: int, spatial_lanes: int = 1) -> int:
        """Cycles of one fold (every fold of a layer costs the same: partial folds are padded)."""
        raise NotImplementedError

    def row_size(self, g: Gemm, rows: int) -> int:
        """Elements of ``row_dim`` per layer (dot_product rounds the depth of each tap up to the rows)."""
        return g.size(self.row_dim)

    def folds(self, g: Gemm, rows: int, cols: int) -> tuple[int, int]:
        """``(row_folds, col_folds)`` of one group."""
        return math.ceil(self.row_size(g, rows) / rows), math.ceil(g.size(self.col_dim) / cols)

    def layer_cycles(self, g: Gemm, rows: int, cols: int, spatial_lanes: int = 1) -> int:
        """Compute cycles of the whole op: groups x row folds x column folds x fold cycles."""
        rf, cf = self.folds(g, rows, cols)
        return g.groups * rf * cf * self.fold_cycles(g, rows, cols, spatial_lanes)


class _OutputStationary(Dataflow):
    def fold_cycles(self, g: Gemm, rows: int, cols: int, spatial_lanes: int = 1) -> int:
        """``W + R + C - 2``: the window streams in, skewed over rows and columns."""
        return g.W + rows + cols - 2


class _WeightStationary(Dataflow):
    def fold_cycles(self, g: Gemm, rows: int, cols: int, spatial_lanes: int = 1) -> int:
        """``2R + C + P - 2``: R cycles to load weights, then P pixels stream, skewed."""
        return 2 * rows + cols + g.P - 2


def pipelined_ws_cycles(g: Gemm, rows: int, cols: int) -> tuple[int, int]:
    """``(cycles per fold, cycles once per op)`` of a weight-stationary array that double-buffers weights.

    The next fold's R weight rows shift in while the current fold's P pixels stream, so folds follow each
    other every ``max(P, R)`` cycles; the first load and the skewed fill and drain (``2R + C - 2``) are paid
    once. One fold costs what SCALE-Sim's single fold costs when ``P >= R``.
    """
    return max(g.P, rows), 2 * rows + cols - 2


class _InputStationary(Dataflow):
    def fold_cycles(self, g: Gemm, rows: int, cols: int, spatial_lanes: int = 1) -> int:
        """``2R + C + K - 2``: R cycles to load inputs, then K filters stream, skewed."""
        return 2 * rows + cols + g.K - 2


class _DotProduct(Dataflow):
    def row_size(self, g: Gemm, rows: int) -> int:
        """Each tap reduces ``ceil(depth / rows)`` row-groups: the depth is padded per tap."""
        return math.ceil(g.depth / rows) * rows

    def fold_cycles(self, g: Gemm, rows: int, cols: int, spatial_lanes: int = 1) -> int:
        """``taps * ceil(P / spatial_lanes)``: one cycle per tap per group of output pixels."""
        return g.taps * math.ceil(g.P / spatial_lanes)

    def folds(self, g: Gemm, rows: int, cols: int) -> tuple[int, int]:
        """Row folds are depth chunks (each covering every tap), column folds output-channel chunks."""
        return math.ceil(g.depth / rows), math.ceil(g.K / cols)


DATAFLOWS: Registry[Dataflow] = Registry("dataflow")
DATAFLOWS.add("output_stationary", _OutputStationary("output_stationary", "P", "K", "W", True, "outputs"))
DATAFLOWS.add("weight_stationary", _WeightStationary("weight_stationary", "W", "K", "P", True, "weights"))
DATAFLOWS.add("input_stationary", _InputStationary("input_stationary", "W", "P", "K", True, "inputs"))
DATAFLOWS.add("dot_product", _DotProduct("dot_product", "W", "K", "P", False, "outputs"))

if tuple(DATAFLOWS.names()) != DATAFLOW_NAMES:  # a device file may name only what is registered here
    raise ImportError(f"DATAFLOWS {DATAFLOWS.names()} != hwsim.devices.names {DATAFLOW_NAMES}")


def dataflow_of(device) -> Dataflow:
    """The :class:`Dataflow` of ``device``'s MAC array."""
    return DATAFLOWS.get(device.spec.mac_array.dataflow)


def scalesim_reported_cycles(compute_cycles: int) -> int:
    """SCALE-Sim's "Total Cycles" for a layer of ``compute_cycles`` demand rows (the last row's index).

    >>> scalesim_reported_cycles(1088)
    1087
    """
    return compute_cycles - 1
