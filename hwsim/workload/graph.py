"""The one in-memory workload graph every later stage uses (executor, quantizer, scheduler, energy model).

Ops are kept in topological order and refer to tensors by name. A tensor knows its shape, dtype, its
quantization parameters when it is quantized, and its constant data when it is a weight. Spatial ops store
their data layout ("NHWC" from TFLite, "NCHW" from ONNX), so tensors keep the shapes their file gives.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hwsim.errors import ConfigError


@dataclass(frozen=True)
class QuantInfo:
    """Scale(s) and zero point(s) of a quantized tensor; ``axis`` is the per-channel axis or None."""

    scale: np.ndarray
    zero_point: np.ndarray
    axis: int | None = None

    @property
    def per_channel(self) -> bool:
        """True when there is more than one scale."""
        return self.scale.size > 1


@dataclass
class Tensor:
    """A named tensor: shape (None for an unknown dimension), numpy dtype, quantization and constant data."""

    name: str
    shape: tuple[int | None, ...]
    dtype: np.dtype
    quant: QuantInfo | None = None
    data: np.ndarray | None = None
    bits: int | None = None  # the stored width when narrower than the dtype (int4 held in int8)
    role: str = ""  # "weight" or "bias" for parameters, known even when a shapes-only file has no values

    def __post_init__(self) -> None:
        if isinstance(self.data, np.ndarray):
            # constants are shared (prepacked, cached): never edited in place
            self.data.flags.writeable = False

    @property
    def is_constant(self) -> bool:
        """True for weights and other tensors whose values the file holds."""
        return self.data is not None

    @property
    def is_parameter(self) -> bool:
        """True for weights and biases, with or without values (shapes-only workloads have none)."""
        return self.is_constant or self.role in ("weight", "bias")


def operator_index(op_name: str) -> int | None:
    """The operator index in the model file that an op name carries (TFLite's ``"12:CONV_2D"`` -> 12), else
    None.

    Per-layer comparisons with other tools (Vela) match ops by it, so importers keep it through folding.

    >>> operator_index("12:CONV_2D"), operator_index("conv1")
    (12, None)
    """
    head, sep, _ = op_name.partition(":")
    return int(head) if sep and head.isdigit() else None


@dataclass
class Op:
    """One operation: its kind (hwsim's op name), inputs and outputs by tensor name, and attributes."""

    name: str
    kind: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def operator_index(self) -> int | None:
        """The op's index in its source file (see :func:`operator_index`)."""
        return operator_index(self.name)

    def describe(self) -> str:
        """How messages name the op: ``operator 12 (CONV_2D, output 'y')``, else ``op 'n' (conv2d, output
        'y')``."""
        out = self.outputs[0] if self.outputs else ""
        if self.operator_index is not None:
            return f"operator {self.operator_index} ({self.name.partition(':')[2]}, output {out!r})"
        return f"op {self.name!r} ({self.kind}, output {out!r})"


@dataclass
class Graph:
    """A workload: tensors, ops in topological order, graph inputs and outputs, and where it came from."""

    tensors: dict[str, Tensor]
    ops: list[Op]
    inputs: list[str]
    outputs: list[str]
    source: str = ""
    format: str = ""
    file_index: dict[str, int] = field(default_factory=dict)  # tensor name -> its index in the source file
    # shape arithmetic evaluated at import; compilers still see it
    folded: list[Op] = field(default_factory=list)
    # the semantics the graph was quantized for, when its file says (hwsim integer graphs)
    semantics: str = ""

    def tensor(self, name: str) -> Tensor:
        """The tensor called ``name``; an unknown name is an error naming the graph's source."""
        try:
            return self.tensors[name]
        except KeyError:
            raise ConfigError(f"{self.source}: no tensor named {name!r}") from None

    def named_inputs(self, inputs) -> dict:
        """``inputs`` by graph-input name: a dict is checked for missing names, a list is taken in order."""
        if not isinstance(inputs, dict):
            if len(inputs) != len(self.inputs):
                raise ConfigError(f"inputs: the model takes {len(self.inputs)} inputs (got {len(inputs)})")
            return dict(zip(self.inputs, inputs))
        missing = [name for name in self.inputs if name not in inputs]
        if missing:
            raise ConfigError(f"inputs: missing model input {missing[0]!r}")
        return inputs

    def producer(self) -> dict[str, Op]:
        """Map each computed tensor to the op that writes it."""
        return {out: op for op in self.ops for out in op.outputs}

    def check(self) -> None:
        """Raise if an op reads a tensor that is neither an input, a constant nor written by an earlier op."""
        ready = set(self.inputs) | {n for n, t in self.tensors.items() if t.is_parameter}
        for op in self.ops:
            for name in op.inputs:
                if name and name not in ready:
                    raise ConfigError(f"{self.source}: op {op.name!r} ({op.kind}) reads {name!r}, "
                                      "which no earlier op writes and which has no data")
            ready.update(op.outputs)
        missing = [o for o in self.outputs if o not in ready]
        if missing:
            raise ConfigError(f"{self.source}: graph outputs {missing} are never computed")

    def mac_count(self) -> int:
        """Total multiply-accumulates of the graph (see :func:`hwsim.workload.opdefs.mac_count`)."""
        from hwsim.workload.opdefs import mac_count

        return sum(mac_count(self, op) for op in self.ops)
