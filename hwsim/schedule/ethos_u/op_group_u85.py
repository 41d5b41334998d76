"""Which ops an Ethos-U85 runs as one op group: fused activations and transposes, chained elementwise ops.

An op group starts with a primary op. Activations (and a transpose or reverse of the output) *fuse* into
the op before them, running in the same output-stage pass. Elementwise ops *chain* onto it: their
input comes from the chaining buffer instead of memory, for up to four ops in the chain and three
inputs from memory in all. Neither fused nor chained tensors are ever written to memory.
These are the architecture's rules (``EthosU85OpGroup::Add``, ``Fuse``, ``Chain``, ``CanStartChain``,
``ExternalIfms`` in ``ethosu/regor/architecture/ethosu85/ethos_u85.cpp``, lines 1404-1710, and
``SupportsFusedTranspose``/``SupportsFusedReverse`` in ``ethos_u85_constraints.cpp``); which op is tried
next, and graph conditions such as a single consumer, are the scheduler's (Vela's ``SchedulerPacking``).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

from hwsim.schedule.ethos_u.arch_u85 import ELEMENTWISE, RESIZE
from hwsim.schedule.ethos_u.blocks_u85 import (
    ACTIVATION_TYPES,
    BRANCH,
    DMA,
    ELEMENTWISE_TYPES,
    hw_op,
    uses_null_pool,
)
from hwsim.schedule.ethos_u.geometry import Shape, elements

MAX_CHAIN_LENGTH = 4
MAX_EXTERNAL_IFMS = 3
_CLIPPING = frozenset({"Relu", "Clamp", "Relu0To1", "Relu6", "ReluN1To1"})
_SCALAR_TYPES = frozenset({"int8", "uint8", "int16", "int32"})
_RANGES = {
    "int8": (-128, 127),
    "uint8": (0, 255),
    "int16": (-32768, 32767),
    "uint16": (0, 65535),
    "int32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "bool8": (0, 1),
}
_FUSABLE_TRANSPOSES = frozenset({"NWHC", "NHCW", "NWCH", "NCHW", "NCWH"})
_ELEMENTWISE_TRANSPOSES = frozenset({"NHCW", "NCHW"})


@dataclass(frozen=True)
class TensorInfo:
    """A tensor as an op group sees it: identity, element type, shape of the slice read or written, layout
    changes."""

    key: Hashable
    dtype: str  # "int8", "uint8", "int16", "int32", "int64"
    shape: Shape
    transpose: str = "None"
    reverse: str = "None"
    is_const: bool = False
    is_sliced: bool = False


@dataclass(frozen=True)
class GroupQuery:
    """An op offered to an op group (Vela's ``ArchitectureOpGroupQuery``): its type, one or two IFMs, its
    OFM."""

    op_type: str
    ifms: tuple[TensorInfo, ...]
    ofm: TensorInfo


def supports_fused_transpose(op_type: str, transpose: str) -> bool:
    """Whether ``op_type`` can write its OFM transposed: MAC ops most transposes, elementwise ops only
    C<->W moves."""
    if transpose == "None":
        return True
    op = hw_op(op_type)
    if op in (None, RESIZE, DMA, BRANCH):
        return False
    return transpose in (_ELEMENTWISE_TRANSPOSES if op == ELEMENTWISE else _FUSABLE_TRANSPOSES)


def supports_fused_reverse(op_type: str, reverse: str) -> bool:
    """Whether ``op_type`` can write its OFM reversed: all but elementwise, DMA and branch ops."""
    return reverse == "None" or hw_op(op_type) not in (None, ELEMENTWISE, DMA, BRANCH)


class OpGroupU85:
    """An Ethos-U85 op group under construction, the rules of ``EthosU85OpGroup``.

    Each op gets a key: the primary 0, later ops -1, -2, ... in the order they join; ``add`` takes the
    keys of the group's ops the new op reads, and returns the new op's key, or None if it cannot join.
    """

    def __init__(self, primary: GroupQuery) -> None:
        op = hw_op(primary.op_type)
        self.ops: list[GroupQuery] = [primary]
        self._chaining = op not in (None, RESIZE, DMA, BRANCH) and not (
            uses_null_pool(primary.op_type, _bits(primary.ifms[0].dtype))
        )
        self._fusing = op not in (DMA, BRANCH)
        self._external_ifms = self._external_inputs(primary)
        self._chain_length = 1
        self._fused_transpose = primary.op_type == "Transpose" and primary.ofm.transpose != "None"
        self._fused_reverse = primary.op_type == "Reverse" and primary.ofm.reverse != "None"
        self._chained: set[Hashable] = set()
        self._fused: set[Hashable] = set()

    @property
    def uses_lut(self) -> bool:
        """A LUT activation in the group needs the LUT RAM loaded (2 KB of it reserved in the block
        search)."""
        return any(op.op_type == "LUT" for op in self.ops)

    def needs_allocation(self, key: Hashable) -> bool:
        """Whether a tensor goes to memory, i.e. is neither chained nor fused inside the group."""
        return key not in self._chained and key not in self._fused

    def add(self, op: GroupQuery, depends_on: list[int]) -> int | None:
        """Fuse or chain ``op`` into the group, reading the outputs of the ops keyed ``depends_on``."""
        if op.op_type in ACTIVATION_TYPES or op.op_type in ("Transpose", "Reverse"):
            joined = self._fuse(op, depends_on)
        else:
            joined = self._chain(op, depends_on)
        if not joined:
            return None
        self.ops.append(op)
        return -(len(self.ops) - 1)

    def _index(self, key: int) -> int | None:
        index = 0 if key == 0 else (-key if key < 0 else None)
        return index if index is not None and index < len(self.ops) else None

    @staticmethod
    def _external_inputs(op: GroupQuery) -> int:
        """IFMs read from memory: all but constant scalars the command stream can encode."""
        encoded = sum(
            1
            for t in op.ifms
            if t.is_const
            and elements(t.shape) == 1
            and t.dtype in _SCALAR_TYPES
            and op.op_type in ELEMENTWISE_TYPES
        )
        return len(op.ifms) - encoded

    def _fuse(self, op: GroupQuery, depends_on: list[int]) -> bool:
        if not self._fusing or (self._chain_length > 1 and op.op_type not in ACTIVATION_TYPES):
            return False
        if len(depends_on) != 1 or len(op.ifms) == 2:
            return False
        index = self._index(depends_on[0])
        if index is None:
            return False
        prev = self.ops[index]
        if op.op_type in ACTIVATION_TYPES and prev.op_type in ACTIVATION_TYPES:
            return False
        if op.op_type in ("Transpose", "Reverse") and (self._fused_transpose or self._fused_reverse):
            return False
        if op.op_type == "Transpose" and self.ops[0].ofm.is_sliced:
            return False
        if op.op_type in _CLIPPING:
            (in_min, in_max), (out_min, out_max) = _RANGES[prev.ifms[0].dtype], _RANGES[prev.ofm.dtype]
            if in_max > out_max or in_min < out_min:
                return False  # the op before may truncate, so clipping after it is not the same
        primary = self.ops[0].op_type
        if not supports_fused_transpose(primary, op.ofm.transpose):
            return False
        if not supports_fused_reverse(primary, op.ofm.reverse):
            return False
        if prev.ofm.key != op.ifms[0].key:
            return False
        self._fused_transpose |= op.op_type == "Transpose" and op.ofm.transpose != "None"
        self._fused_reverse |= op.op_type == "Reverse" and op.ofm.reverse != "None"
        self._fused.add(prev.ofm.key)
        return True

    def _chain(self, op: GroupQuery, depends_on: list[int]) -> bool:
        external = self._external_inputs(op)
        if not self._chaining or external == 0 or hw_op(op.op_type) != ELEMENTWISE:
            return False
        if self._fused_transpose or (op.op_type == "Transpose" and op.ofm.transpose != "None"):
            return False
        if self._fused_reverse or (op.op_type == "Reverse" and op.ofm.reverse != "None"):
            return False
        if self._chain_length + 1 > MAX_CHAIN_LENGTH:
            return False
        if self._external_ifms + external - len(depends_on) > MAX_EXTERNAL_IFMS:
            return False
        primary = self.ops[0]
        chained = []
        for key in depends_on:
            index = self._index(key)
            if index is None:
                return False
            prev = self.ops[index]
            if prev.ofm.shape != op.ofm.shape:
                return False  # a broadcast OFM cannot chain
            keys = [t.key for t in op.ifms]
            if prev.ofm.key not in keys:
                return False
            if len(op.ifms) == 1:
                if elements(primary.ofm.shape) != elements(op.ifms[0].shape):
                    return False
            else:
                mine = keys.index(prev.ofm.key)
                chained_ifm, other = op.ifms[mine], op.ifms[1 - mine]
                broadcast = chained_ifm.shape != other.shape
                same_shape = chained_ifm.shape == primary.ofm.shape
                scalar_other = (
                    elements(chained_ifm.shape) == elements(primary.ofm.shape) and elements(other.shape) == 1
                )
                if broadcast and not same_shape and not scalar_other:
                    return False
            chained.append(prev.ofm.key)
            external -= 1
        self._chained.update(chained)
        self._external_ifms += external
        self._chain_length += 1
        return True


def _bits(dtype: str) -> int:
    return int("".join(ch for ch in dtype if ch.isdigit()) or 8)
