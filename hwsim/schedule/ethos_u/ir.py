"""The op list Vela schedules: NPU (and CPU) operations on NHWC feature maps, after its graph rewrites.

:mod:`hwsim.schedule.ethos_u.lowering` turns an hwsim graph into these ops; the scheduler then assigns
block configs, layouts, memories and weight buffers, and the estimator costs them. Names follow Vela's
(``Conv2D``, ``DepthwiseConv2D``, ``MaxPool``, ``ReduceSum``, ``Add``, ``LUT``, ``MemoryCopy`` ...), so a
per-op comparison with Vela's own report reads one to one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hwsim.schedule.ethos_u.geometry import Kernel, Shape, elements


@dataclass(eq=False)
class VTensor:
    """A tensor as the scheduler sees it: storage shape, element bits, constant data, where it lives."""

    name: str
    shape: Shape
    bits: int
    # constants only: an array, or values made on demand (a file's StoredArray, stand-in weights)
    data: Any = None
    is_graph_input: bool = False
    is_graph_output: bool = False
    producers: list[VOp] = field(default_factory=list)
    consumers: list[VOp] = field(default_factory=list)
    format: str = "NHWC"
    needs_linear: bool = False
    memory: str = "arena"  # "const", "arena" or "staging" (resolved to a Memory by the scheduler)
    storage_shape: Shape | None = None  # a rolling buffer's shape in a cascade

    @property
    def is_constant(self) -> bool:
        """True for tensors whose values the model holds."""
        return self.data is not None

    def size_bytes(self, fmt: str | None = None) -> int:
        """Allocated bytes: elements rounded to 16-deep bricks in NHCWB16, then to 16 bytes."""
        shape = self.storage_shape or self.shape
        if (fmt or self.format) == "NHCWB16":
            shape = (*shape[:3], -(-shape[3] // 16) * 16)
        nbytes = -(-elements(shape) * self.bits // 8)
        return -(-nbytes // 16) * 16


@dataclass(eq=False)
class VConn:
    """An operand: the tensor, and the shape the op reads or writes it as (a reshaped view)."""

    tensor: VTensor
    shape: Shape

    @property
    def bits(self) -> int:
        """Element bits."""
        return self.tensor.bits


@dataclass(eq=False)
class VOp:
    """One scheduled operation (Vela's SchedulerOperation), its activation fused in when it has one."""

    type: str
    ifm: VConn
    ofm: VConn
    ifm2: VConn | None = None
    kernel: Kernel = field(default_factory=Kernel)
    weights: VTensor | None = None  # OHWI for convolutions, [1, H, W, C] for depthwise
    weight_zero_points: tuple[int, ...] | None = None
    has_scales: bool = False  # per-channel scale/bias stream (convolutions)
    scaled: bool = True  # the output is rescaled (16-bit ops then use 40-bit accumulators)
    activation: str | None = None  # the fused activation op type
    uses_lut: bool = False
    source: int | None = None  # position in the graph of the model op it was lowered from
    source_type: str = ""  # the model op kind it was lowered from
    npu: bool = True
    cpu_reason: str = ""  # why a CPU op is not on the NPU (the Vela rule it fails)
    primary_ifm: int = 0
    tmp: VTensor | None = None  # scratch of a U55 MatMul
    # a Transpose's NHWC axis permutation (U85: also one fused into the op)
    perm: tuple[int, ...] | None = None
    index: int = 0  # position in the schedule; a chained op shares its primary op's
    parent: VOp | None = None  # U85: the primary op of the op group this op is chained into
    group: list[GroupMember] = field(default_factory=list)  # U85 primary: its op group's ops, itself first

    @property
    def ifms(self) -> list[VConn]:
        """Feature-map inputs."""
        return [self.ifm] if self.ifm2 is None else [self.ifm, self.ifm2]

    @property
    def chained(self) -> list[VOp]:
        """The ops chained into this one (U85), in group order."""
        return [m.op for m in self.group[1:] if not m.fused]

    @property
    def final_ofm(self) -> VConn:
        """The OFM its op group writes: its own, or that of the last op chained into it."""
        chained = self.chained
        return chained[-1].ofm if chained else self.ofm

    def internal_tensors(self) -> list[VTensor]:
        """Tensors its op group passes from op to op without writing them to memory (fused or chained)."""
        return [m.ofm.tensor for m in self.group[:-1]]


@dataclass(eq=False)
class GroupMember:
    """One op of an Ethos-U85 op group as it joined: its operands then, and the op it became part of.

    A fused activation or transpose keeps no VOp of its own (``op`` is the op it fused into, ``fused``
    is set); its input is the tensor the op before it no longer writes.
    """

    type: str
    op: VOp
    ifm: VConn
    ofm: VConn
    ifm2: VConn | None = None
    perm: tuple[int, ...] | None = None
    fused: bool = False
