"""Fold the shape arithmetic TFLite's converter emits for Keras models, at import.

A Keras model built with an unknown batch size computes its Flatten and Reshape targets at run time:
``SHAPE -> STRIDED_SLICE -> PACK -> RESHAPE`` (``GATHER``, ``REDUCE_PROD``, ``CONCATENATION``... for a Dense
layer on a sequence). Every input of such a chain is a constant or a static shape, so hwsim evaluates it
once when it reads the file, as Vela does; the folded ops leave the graph and their outputs become
constants. The ops that remain keep their operator index in their name (``"13:RESHAPE"``).

The unknown batch is carried through the folding as an *unknown* entry: a RESHAPE whose target copies it
keeps an unknown batch (None). Where the arithmetic multiplies it with other dimensions, it counts as 1,
the size the TFLite interpreter allocates for such a file by default; the RESHAPE then gets a concrete
shape, and the ops after it get shapes from :mod:`hwsim.workload.shapes` instead of the file's (the
converter leaves them as guesses there).

Only unquantized integer (and boolean) tensors are folded: that is shape arithmetic, and it is exact.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, replace
from itertools import product
from typing import Callable

from hwsim.errors import ConfigError
from hwsim.workload.graph import Graph, Op, StoredArray, Tensor, flat_values
from hwsim.workload.shapes import SHAPE_RULES, output_shape, reshape_target

_INTEGER_TYPES = {
    "int8": "b",
    "uint8": "B",
    "int16": "h",
    "uint16": "H",
    "int32": "i",
    "uint32": "I",
    "int64": "q",
    "uint64": "Q",
    "bool": "?",
}


@dataclass(frozen=True)
class Folded:
    """A folded integer tensor, flat in row-major order; ``unknown`` marks entries that stand for an unknown
    dimension (the batch), whose ``data`` holds the interpreter's default size of 1.

    Shape arithmetic is a handful of small integer vectors: it is evaluated in Python (numpy semantics),
    so reading a Keras file imports no numpy.
    """

    shape: tuple[int, ...]
    data: tuple[int, ...]
    unknown: tuple[bool, ...]

    @classmethod
    def known(cls, shape: tuple[int, ...], data) -> Folded:
        """A value with every entry known."""
        data = tuple(data)
        return cls(tuple(shape), data, (False,) * len(data))

    def take(self, axes: list[list[int]]) -> Folded:
        """The entries at every combination of the per-axis source indices ``axes`` (numpy's ``ix_``)."""
        strides = _strides(self.shape)
        at = [sum(i * s for i, s in zip(combo, strides)) for combo in product(*axes)]
        return Folded(
            tuple(len(a) for a in axes), tuple(self.data[i] for i in at), tuple(self.unknown[i] for i in at)
        )

    def reshape(self, shape) -> Folded:
        """The same entries under another shape."""
        return Folded(tuple(shape), self.data, self.unknown)


def _strides(shape: tuple[int, ...]) -> list[int]:
    out, step = [], 1
    for dim in reversed(shape):
        out.append(step)
        step *= dim
    return out[::-1]


def _axis(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis


def _strided_slice(op: Op, args: list[Folded], out: Tensor) -> Folded:
    a = op.attrs
    x = args[0]
    axes: list[list[int]] = []
    shape: list[int] = []
    for i, dim in enumerate(x.shape):
        if i >= len(a["begin"]):
            axes.append(list(range(dim)))
            shape.append(dim)
            continue
        begin, end, stride = (
            a["begin"][i],
            a["end"][i] + (a["begin"][i] if a["offset"] else 0),
            a["strides"][i],
        )
        if a["shrink_axis_mask"] >> i & 1:
            axes.append([begin % dim])
            continue
        axes.append(
            list(
                range(dim)[
                    slice(
                        None if a["begin_mask"] >> i & 1 else begin,
                        None if a["end_mask"] >> i & 1 else end,
                        stride,
                    )
                ]
            )
        )
        shape.append(len(axes[-1]))
    return x.take(axes).reshape(shape)


def _slice(op: Op, args: list[Folded], out: Tensor) -> Folded:
    x = args[0]
    axes = [
        list(range(dim)[b : None if s == -1 else b + s])
        for dim, b, s in zip(x.shape, op.attrs["begin"], op.attrs["size"])
    ]
    axes += [list(range(dim)) for dim in x.shape[len(axes) :]]
    return x.take(axes)


def _gather(op: Op, args: list[Folded], out: Tensor) -> Folded | None:
    x, index = args
    if op.attrs["batch_dims"] or any(index.unknown):
        return None
    axis = _axis(op.attrs["axis"], len(x.shape))
    axes = [list(range(dim)) for dim in x.shape]
    axes[axis] = [i % x.shape[axis] for i in index.data]
    return x.take(axes).reshape((*x.shape[:axis], *index.shape, *x.shape[axis + 1 :]))


def _reshape(op: Op, args: list[Folded], out: Tensor) -> Folded | None:
    x = args[0]
    if "squeeze_dims" in op.attrs:
        dims = {_axis(d, len(x.shape)) for d in op.attrs["squeeze_dims"]} or {
            i for i, d in enumerate(x.shape) if d == 1
        }
        return x.reshape(d for i, d in enumerate(x.shape) if i not in dims)
    if len(args) < 2 or any(args[1].unknown):
        return None
    shape = list(args[1].data)
    if -1 in shape:
        shape[shape.index(-1)] = len(x.data) // max(math.prod(d for d in shape if d != -1), 1)
    return x.reshape(shape)


def _expand_dims(op: Op, args: list[Folded], out: Tensor) -> Folded:
    x = args[0]
    axis = _axis(op.attrs["axis"], len(x.shape) + 1)
    return x.reshape((*x.shape[:axis], 1, *x.shape[axis:]))


def _transpose(op: Op, args: list[Folded], out: Tensor) -> Folded:
    x, perm = args[0], op.attrs["perm"]
    strides = _strides(x.shape)
    at = [
        sum(o * strides[p] for o, p in zip(combo, perm))
        for combo in product(*(range(x.shape[p]) for p in perm))
    ]
    return Folded(
        tuple(x.shape[p] for p in perm), tuple(x.data[i] for i in at), tuple(x.unknown[i] for i in at)
    )


def _concat(parts: list[Folded], axis: int) -> Folded:
    rank = len(parts[0].shape)
    axis = _axis(axis, rank)
    outer = math.prod(parts[0].shape[:axis])
    chunks = [math.prod(p.shape[axis:]) for p in parts]
    data, unknown = [], []
    for o in range(outer):
        for p, n in zip(parts, chunks):
            data += p.data[o * n : (o + 1) * n]
            unknown += p.unknown[o * n : (o + 1) * n]
    shape = (*parts[0].shape[:axis], sum(p.shape[axis] for p in parts), *parts[0].shape[axis + 1 :])
    return Folded(shape, tuple(data), tuple(unknown))


def _pack(op: Op, args: list[Folded], out: Tensor) -> Folded:
    axis = _axis(op.attrs["axis"], len(args[0].shape) + 1)
    return _concat([a.reshape((*a.shape[:axis], 1, *a.shape[axis:])) for a in args], axis)


def _broadcast(shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
    rank = max(len(s) for s in shapes)
    padded = [(1,) * (rank - len(s)) + s for s in shapes]
    return tuple(max(dims) if min(dims) else 0 for dims in zip(*padded))


def _arithmetic(fn: Callable[[int, int], int]) -> Callable:
    """An elementwise op over the values, broadcast as numpy broadcasts (an unknown entry counts with its
    default of 1); the result is known."""

    def fold(op: Op, args: list[Folded], out: Tensor) -> Folded | None:
        if op.attrs.get("activation"):
            return None
        shape = _broadcast([a.shape for a in args])
        values = []
        for a in args:
            full = (1,) * (len(shape) - len(a.shape)) + a.shape
            axes = [list(range(n)) if d == n else [0] * n for d, n in zip(full, shape)]
            values.append(Folded(full, a.data, a.unknown).take(axes).data)
        return Folded.known(shape, (fn(*v) for v in zip(*values)))

    return fold


def _floor_div(a: int, b: int) -> int:
    return a // b if b else 0  # numpy's integer floor_divide gives 0 for a zero divisor


def _reduction(fn: Callable[[list[int]], int]) -> Callable:
    def fold(op: Op, args: list[Folded], out: Tensor) -> Folded:
        x = args[0]
        axes = {int(v) % max(len(x.shape), 1) for v in args[1].data}
        kept = [i for i in range(len(x.shape)) if i not in axes]
        groups: dict[tuple[int, ...], list[int]] = {}
        for combo, v in zip(product(*(range(d) for d in x.shape)), x.data):
            groups.setdefault(tuple(combo[i] for i in kept), []).append(v)
        keys = list(product(*(range(x.shape[i]) for i in kept)))
        shape = (
            tuple(1 if i in axes else d for i, d in enumerate(x.shape))
            if op.attrs["keep_dims"]
            else tuple(x.shape[i] for i in kept)
        )
        return Folded.known(shape, (fn(groups.get(k, [])) for k in keys))

    return fold


def _fill(op: Op, args: list[Folded], out: Tensor) -> Folded:
    shape = tuple(int(d) for d in args[0].data)
    return Folded.known(shape, args[1].data[:1] * math.prod(shape))


def _range(op: Op, args: list[Folded], out: Tensor) -> Folded:
    values = range(*(a.data[0] for a in args))
    return Folded.known((len(values),), values)


FOLDERS: dict[str, Callable[[Op, list[Folded], Tensor], Folded | None]] = {
    "strided_slice": _strided_slice,
    "slice": _slice,
    "gather": _gather,
    "reshape": _reshape,
    "expand_dims": _expand_dims,
    "transpose": _transpose,
    "pack": _pack,
    "concat": lambda op, args, out: None if op.attrs["activation"] else _concat(args, op.attrs["axis"]),
    "cast": lambda op, args, out: args[0],
    "add": _arithmetic(lambda a, b: a + b),
    "sub": _arithmetic(lambda a, b: a - b),
    "mul": _arithmetic(lambda a, b: a * b),
    "floor_div": _arithmetic(_floor_div),
    "maximum": _arithmetic(max),
    "minimum": _arithmetic(min),
    "reduce_prod": _reduction(math.prod),
    "sum": _reduction(sum),
    "fill": _fill,
    "range": _range,
}


def _as_type(values, dtype: str) -> list[int]:
    """``values`` converted to ``dtype`` as numpy converts integers (wrapping around), booleans as 0/1."""
    if dtype == "bool":
        return [bool(v) for v in values]
    bits = struct.calcsize(_INTEGER_TYPES[dtype]) * 8
    signed = not dtype.startswith("u")
    out = []
    for v in values:
        v = int(v) & ((1 << bits) - 1)
        out.append(v - (1 << bits) if signed and v >> (bits - 1) else v)
    return out


def _integer(t: Tensor) -> bool:
    return t.quant is None and t.dtype_name in _INTEGER_TYPES


class ShapeFolding:
    """Folds TFLite ops as the importer meets them, in order, and keeps the shapes after them consistent."""

    def __init__(
        self, path: str, tensors: dict[str, Tensor], graph_inputs: list[str], graph_outputs: list[str]
    ):
        self.path = path
        self.tensors = tensors
        self.graph_ends = set(graph_inputs) | set(graph_outputs)
        self.values: dict[str, Folded] = {}
        self.changed: set[str] = set()  # tensors whose shape differs from the file's
        self.folded: list[Op] = []

    def _known(self, name: str) -> bool:
        t = self.tensors[name]
        return name in self.values or t.is_constant and _integer(t)

    def _value(self, name: str) -> Folded:
        if name in self.values:
            return self.values[name]
        stored = self.tensors[name].stored_data
        return Folded.known(tuple(stored.shape), flat_values(stored))

    def fold(self, op: Op) -> bool:
        """Evaluate ``op`` if it is shape arithmetic on known values; its output becomes a constant."""
        if (
            op.kind not in FOLDERS
            and op.kind != "shape"
            or len(op.outputs) != 1
            or op.outputs[0] in self.graph_ends
        ):
            return False
        out = self.tensors[op.outputs[0]]
        if not _integer(out) or op.kind != "shape" and not all(self._known(n) for n in op.inputs if n):
            return False
        if op.kind == "shape":
            dims = self.tensors[op.inputs[0]].shape
            value = Folded((len(dims),), tuple(d or 1 for d in dims), tuple(d is None for d in dims))
        else:
            value = FOLDERS[op.kind](op, [self._value(n) for n in op.inputs if n], out)
            if value is None:
                return False
        dtype = out.dtype_name
        data = _as_type(value.data, dtype)
        self.values[out.name] = Folded(value.shape, tuple(data), value.unknown)
        raw = struct.pack(f"<{len(data)}{_INTEGER_TYPES[dtype]}", *data)
        self.tensors[out.name] = replace(
            out, shape=value.shape, dtype=dtype, data=StoredArray(raw, dtype, value.shape)
        )
        self.folded.append(op)
        return True

    def update_shapes(self, op: Op) -> None:
        """Give a kept op's outputs the shapes the folding implies: a RESHAPE to a folded target, and any op
        reading a tensor whose shape changed gets its shape from :mod:`hwsim.workload.shapes`."""
        if op.kind == "reshape" and len(op.inputs) > 1 and op.inputs[1] in self.values:
            target = self.values[op.inputs[1]]
            dims = [None if u else int(d) for d, u in zip(target.data, target.unknown)]
            shape = reshape_target(dims, self.tensors[op.inputs[0]].shape)
        elif any(n in self.changed for n in op.inputs):
            if op.kind not in SHAPE_RULES or len(op.outputs) != 1:
                raise ConfigError(
                    f"{self.path}: {op.describe()} reads a shape that folding changed, and "
                    "hwsim "
                    "has no shape rule for it"
                )
            shape = output_shape(Graph(self.tensors, [], [], [], self.path), op)
        else:
            return
        out = self.tensors[op.outputs[0]]
        if tuple(shape) != tuple(out.shape):
            out.shape = tuple(shape)
            self.changed.add(out.name)

    def prune(self, kept: list[Op]) -> None:
        """Drop the tensors that only folded ops read or wrote."""
        used = {n for op in kept for n in (*op.inputs, *op.outputs)} | self.graph_ends
        for op in self.folded:
            for name in (*op.inputs, *op.outputs):
                if name and name not in used:
                    self.tensors.pop(name, None)
