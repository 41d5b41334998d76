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

from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from hwsim.errors import ConfigError
from hwsim.workload.graph import Graph, Op, Tensor
from hwsim.workload.shapes import SHAPE_RULES, output_shape, reshape_target


@dataclass(frozen=True)
class Folded:
    """A folded integer tensor; ``unknown`` marks entries that stand for an unknown dimension (the batch),
    whose ``data`` holds the interpreter's default size of 1."""

    data: np.ndarray
    unknown: np.ndarray

    @classmethod
    def known(cls, data: np.ndarray) -> Folded:
        """A value with every entry known."""
        data = np.asarray(data)
        return cls(data, np.zeros(data.shape, bool))

    def map(self, fn: Callable[[np.ndarray], np.ndarray]) -> Folded:
        """Apply a pure data-movement function to the values and the unknown marks alike."""
        return Folded(fn(self.data), fn(self.unknown))


def _stack(fn, parts: list[Folded]) -> Folded:
    return Folded(fn([p.data for p in parts]), fn([p.unknown for p in parts]))


def _strided_slice(op: Op, args: list[Folded], out: Tensor) -> Folded:
    a = op.attrs
    x = args[0]
    index: list[slice] = []
    shape: list[int] = []
    for i, dim in enumerate(x.data.shape):
        if i >= len(a["begin"]):
            index.append(slice(None))
            shape.append(dim)
            continue
        begin, end, stride = (
            a["begin"][i],
            a["end"][i] + (a["begin"][i] if a["offset"] else 0),
            a["strides"][i],
        )
        if a["shrink_axis_mask"] >> i & 1:
            index.append(slice(begin % dim, begin % dim + 1))
            continue
        index.append(
            slice(
                None if a["begin_mask"] >> i & 1 else begin, None if a["end_mask"] >> i & 1 else end, stride
            )
        )
        shape.append(len(range(dim)[index[-1]]))
    return x.map(lambda v: v[tuple(index)].reshape(shape))


def _slice(op: Op, args: list[Folded], out: Tensor) -> Folded:
    index = tuple(slice(b, None if s == -1 else b + s) for b, s in zip(op.attrs["begin"], op.attrs["size"]))
    return args[0].map(lambda v: v[index])


def _gather(op: Op, args: list[Folded], out: Tensor) -> Folded | None:
    if op.attrs["batch_dims"] or args[1].unknown.any():
        return None
    return args[0].map(lambda v: np.take(v, args[1].data, axis=op.attrs["axis"]))


def _reshape(op: Op, args: list[Folded], out: Tensor) -> Folded | None:
    if "squeeze_dims" in op.attrs:
        return args[0].map(lambda v: np.squeeze(v, axis=tuple(op.attrs["squeeze_dims"]) or None))
    if len(args) < 2 or args[1].unknown.any():
        return None
    shape = tuple(int(d) for d in args[1].data.ravel())
    return args[0].map(lambda v: v.reshape(shape))


def _arithmetic(fn: Callable[..., np.ndarray]) -> Callable:
    """An elementwise op over the values (an unknown entry counts with its default of 1); the result is
    known."""
    def fold(op: Op, args: list[Folded], out: Tensor) -> Folded | None:
        if op.attrs.get("activation"):
            return None
        return Folded.known(fn(*[a.data for a in args]))
    return fold


def _reduction(fn: Callable[..., np.ndarray]) -> Callable:
    def fold(op: Op, args: list[Folded], out: Tensor) -> Folded:
        axes = tuple(int(v) % max(args[0].data.ndim, 1) for v in args[1].data.ravel())
        return Folded.known(fn(args[0].data, axis=axes, keepdims=op.attrs["keep_dims"]))
    return fold


def _fill(op: Op, args: list[Folded], out: Tensor) -> Folded:
    return Folded.known(np.full(tuple(int(d) for d in args[0].data.ravel()), args[1].data))


def _range(op: Op, args: list[Folded], out: Tensor) -> Folded:
    start, limit, delta = (a.data.item() for a in args)
    return Folded.known(np.arange(start, limit, delta))


_FOLDERS: dict[str, Callable[[Op, list[Folded], Tensor], Folded | None]] = {
    "strided_slice": _strided_slice,
    "slice": _slice,
    "gather": _gather,
    "reshape": _reshape,
    "expand_dims": lambda op, args, out: args[0].map(lambda v: np.expand_dims(v, op.attrs["axis"])),
    "transpose": lambda op, args, out: args[0].map(lambda v: np.transpose(v, op.attrs["perm"])),
    "pack": lambda op, args, out: _stack(lambda vs: np.stack(vs, axis=op.attrs["axis"]), args),
    "concat": lambda op, args, out: None if op.attrs["activation"] else _stack(
        lambda vs: np.concatenate(vs, axis=op.attrs["axis"]), args),
    "cast": lambda op, args, out: Folded(args[0].data, args[0].unknown),
    "add": _arithmetic(np.add),
    "sub": _arithmetic(np.subtract),
    "mul": _arithmetic(np.multiply),
    "floor_div": _arithmetic(np.floor_divide),
    "maximum": _arithmetic(np.maximum),
    "minimum": _arithmetic(np.minimum),
    "reduce_prod": _reduction(np.prod),
    "sum": _reduction(np.sum),
    "fill": _fill,
    "range": _range,
}


def _integer(t: Tensor) -> bool:
    return t.quant is None and (np.issubdtype(t.dtype, np.integer) or t.dtype == np.bool_)


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

    def _value(self, name: str) -> Folded | None:
        if name in self.values:
            return self.values[name]
        t = self.tensors[name]
        return Folded.known(t.data) if t.data is not None and _integer(t) else None

    def fold(self, op: Op) -> bool:
        """Evaluate ``op`` if it is shape arithmetic on known values; its output becomes a constant."""
        if len(op.outputs) != 1 or op.outputs[0] in self.graph_ends:
            return False
        out = self.tensors[op.outputs[0]]
        if not _integer(out):
            return False
        if op.kind == "shape":
            dims = self.tensors[op.inputs[0]].shape
            value = Folded(
                np.array([d or 1 for d in dims], out.dtype), np.array([d is None for d in dims], bool)
            )
        else:
            folder = _FOLDERS.get(op.kind)
            args = [self._value(n) for n in op.inputs if n]
            if folder is None or any(a is None for a in args):
                return False
            value = folder(op, args, out)
            if value is None:
                return False
        data = np.array(value.data, dtype=out.dtype, order="C")
        self.values[out.name] = Folded(data, value.unknown)
        self.tensors[out.name] = replace(out, shape=data.shape, data=data)
        self.folded.append(op)
        return True

    def update_shapes(self, op: Op) -> None:
        """Give a kept op's outputs the shapes the folding implies: a RESHAPE to a folded target, and any op
        reading a tensor whose shape changed gets its shape from :mod:`hwsim.workload.shapes`."""
        if op.kind == "reshape" and len(op.inputs) > 1 and op.inputs[1] in self.values:
            target = self.values[op.inputs[1]]
            dims = [None if u else int(d) for d, u in zip(target.data.ravel(), target.unknown.ravel())]
            shape = reshape_target(dims, self.tensors[op.inputs[0]].shape)
        elif any(n in self.changed for n in op.inputs):
            if op.kind not in SHAPE_RULES or len(op.outputs) != 1:
                raise ConfigError(f"{self.path}: {op.describe()} reads a shape that folding changed, and "
                                  "hwsim "
                                  "has no shape rule for it")
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
