"""The one in-memory workload graph every later stage uses (executor, quantizer, scheduler, energy model).

Ops are kept in topological order and refer to tensors by name. A tensor knows its shape, dtype, its
quantization parameters when it is quantized, and its constant data when it is a weight. Spatial ops store
their data layout ("NHWC" from TFLite, "NCHW" from ONNX), so tensors keep the shapes their file gives.

An importer may hand over a constant, a dtype or a quantization vector as it is stored in the file
(:class:`StoredArray`, a dtype name): the numpy array is made on first read, so a shape-only simulation
that never reads them runs without importing numpy (its import is a third of a small simulation's time).
"""

from __future__ import annotations

import math
import struct
import sys
from dataclasses import dataclass, field
from typing import Any

from hwsim.errors import ConfigError

_STRUCT_CODES = {
    "int8": "b",
    "uint8": "B",
    "int16": "h",
    "int32": "i",
    "int64": "q",
    "float32": "f",
    "float16": "e",
    "bool": "?",
}


class StoredArray:
    """An array as a file stores it (little-endian bytes of ``dtype``, int4 codes two to a byte), unread.

    :meth:`array` makes the numpy array; :meth:`tolist` and :attr:`digest` need no numpy.
    """

    __slots__ = ("raw", "dtype", "shape", "int4")

    def __init__(self, raw: bytes, dtype: str, shape: tuple[int, ...], int4: bool = False) -> None:
        self.raw, self.dtype, self.shape, self.int4 = raw, dtype, tuple(shape), int4

    @property
    def size(self) -> int:
        """The element count."""
        return math.prod(self.shape)

    @property
    def digest(self) -> bytes:
        """Everything the values depend on (the weight-encoding caches key on it)."""
        return bytes(self.raw) + repr((self.shape, self.dtype, self.int4)).encode()

    def values(self):
        """The numpy array (the ``values()`` of the weight encoder's made-on-demand weights)."""
        return self.array()

    def array(self):
        """The values as a read-only numpy array of ``shape``."""
        import numpy as np

        if self.int4:
            packed = np.frombuffer(self.raw, np.uint8)
            nibbles = np.stack([packed & 0x0F, packed >> 4], axis=-1).ravel()[: self.size].astype(np.int8)
            out = ((nibbles ^ 8) - np.int8(8)).reshape(self.shape)
        else:
            out = np.frombuffer(self.raw, np.dtype(self.dtype).newbyteorder("<")).astype(self.dtype)
            out = out.reshape(self.shape)
        out.flags.writeable = False
        return out

    def tolist(self) -> list:
        """The values in flat order, as Python numbers."""
        if self.int4:
            return [((b >> s & 0x0F) ^ 8) - 8 for b in bytes(self.raw) for s in (0, 4)][: self.size]
        code = _STRUCT_CODES[self.dtype]
        return list(struct.unpack(f"<{self.size}{code}", self.raw))


class _Lazy:
    """A dataclass field that may hold a cheaper stand-in (a dtype name, a :class:`StoredArray`) and turns
    it into the numpy object on first read; ``stored_<name>`` reads what is held without making it."""

    def __init__(self, make, default: Any = ...) -> None:
        self.make, self.default = make, default

    def __set_name__(self, owner, name: str) -> None:
        self.slot = f"_{name}"

    def __get__(self, obj, owner=None):
        if obj is None:
            if self.default is ...:
                raise AttributeError  # a required field (dataclasses asks the class for its default)
            return self.default
        value = obj.__dict__[self.slot]
        if isinstance(value, (str, StoredArray)):
            value = obj.__dict__[self.slot] = self.make(value)
        return value

    def __set__(self, obj, value) -> None:
        obj.__dict__[self.slot] = value


def _make_dtype(name: str):
    import numpy as np

    return np.dtype(name)


def _make_array(stored: StoredArray):
    return stored.array()


def dtype_name(dtype) -> str:
    """``"int8"`` for ``np.int8``, ``np.dtype("int8")`` or ``"int8"``, without importing numpy (kept per
    dtype: numpy finds a dtype's name in Python, microseconds that a planner asking per tensor adds up)."""
    if isinstance(dtype, str):
        return dtype
    name = _DTYPE_NAMES.get(dtype)
    if name is None:
        name = _DTYPE_NAMES[dtype] = getattr(dtype, "name", None) or dtype.__name__
    return name


_DTYPE_NAMES: dict = {}


def dtype_bits(dtype) -> int:
    """The width of a numeric dtype (or of its name) in bits, without importing numpy.

    >>> dtype_bits("int8"), dtype_bits("float32"), dtype_bits("bool")
    (8, 32, 8)
    """
    name = dtype_name(dtype)
    digits = name.lstrip("abcdefghijklmnopqrstuvwxyz_")
    return int(digits) if digits else int(_make_dtype(name).itemsize) * 8


def flat_values(values) -> list:
    """A :class:`StoredArray`'s, an array's or a scalar's values in flat order, as Python numbers; numpy is
    only touched when ``values`` already is numpy."""
    if isinstance(values, StoredArray):
        return values.tolist()
    if isinstance(values, (int, float)):
        return [values]
    if "numpy" in sys.modules:
        import numpy as np

        return np.asarray(values).ravel().tolist()
    return list(values)


@dataclass(frozen=True)
class QuantInfo:
    """Scale(s) and zero point(s) of a quantized tensor; ``axis`` is the per-channel axis or None."""

    scale: Any = _Lazy(_make_array)  # np.ndarray (float32), or a StoredArray until read
    zero_point: Any = _Lazy(_make_array)  # np.ndarray (int64), or a StoredArray until read
    axis: int | None = None

    @property
    def per_channel(self) -> bool:
        """True when there is more than one scale."""
        return self.scale_count > 1

    @property
    def scale_count(self) -> int:
        """How many scales (without making the array)."""
        return _size(self.__dict__["_scale"])

    @property
    def scale_values(self) -> list[float]:
        """The scales as Python floats, flat (without importing numpy)."""
        return [float(v) for v in flat_values(self.__dict__["_scale"])]

    @property
    def zero_point_values(self) -> list[int]:
        """The zero points as Python ints, flat (without importing numpy)."""
        return [int(v) for v in flat_values(self.__dict__["_zero_point"])]


def _size(values) -> int:
    return values.size if hasattr(values, "size") else len(values)


@dataclass
class Tensor:
    """A named tensor: shape (None for an unknown dimension), numpy dtype, quantization and constant data."""

    name: str
    shape: tuple[int | None, ...]
    dtype: Any = _Lazy(_make_dtype)  # np.dtype, or its name until read
    quant: QuantInfo | None = None
    data: Any = _Lazy(_make_array, None)  # np.ndarray, or a StoredArray until read
    bits: int | None = None  # the stored width when narrower than the dtype (int4 held in int8)
    role: str = ""  # "weight" or "bias" for parameters, known even when a shapes-only file has no values

    def __post_init__(self) -> None:
        data = self.__dict__["_data"]
        if data is not None and not isinstance(data, StoredArray) and hasattr(data, "flags"):
            # constants are shared (prepacked, cached): never edited in place (a numpy scalar never is)
            if data.flags.writeable:
                data.flags.writeable = False

    @property
    def stored_data(self):
        """The constant as held: a numpy array, a :class:`StoredArray` not yet read, or None."""
        return self.__dict__["_data"]

    @property
    def dtype_name(self) -> str:
        """The dtype's name (``"int8"``), without importing numpy."""
        return dtype_name(self.__dict__["_dtype"])

    @property
    def element_bits(self) -> int:
        """Stored bits per element: :attr:`bits` when narrower than the dtype, else the dtype's width."""
        return int(self.bits) if self.bits else dtype_bits(self.__dict__["_dtype"])

    @property
    def is_constant(self) -> bool:
        """True for weights and other tensors whose values the file holds."""
        return self.__dict__["_data"] is not None

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
                    raise ConfigError(
                        f"{self.source}: op {op.name!r} ({op.kind}) reads {name!r}, "
                        "which no earlier op writes and which has no data"
                    )
            ready.update(op.outputs)
        missing = [o for o in self.outputs if o not in ready]
        if missing:
            raise ConfigError(f"{self.source}: graph outputs {missing} are never computed")

    def mac_count(self) -> int:
        """Total multiply-accumulates of the graph (see :func:`hwsim.workload.opdefs.mac_count`)."""
        from hwsim.workload.opdefs import mac_count

        return sum(mac_count(self, op) for op in self.ops)
