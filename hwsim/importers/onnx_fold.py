"""Fold the shape arithmetic and constant subgraphs of exported ONNX models, at import.

``torch.onnx.export`` (both exporters) and tf2onnx compute Reshape targets at run time when the batch is
dynamic: ``Shape -> Gather -> Unsqueeze -> Concat -> Reshape`` for ``x.reshape(x.shape[0], -1)``, with
``Cast``, ``Div``, ``Sqrt`` for an attention scale. Every input of such a chain is a constant or a static
shape, so hwsim evaluates it once when it reads the file (as ONNX Runtime's constant folding does); the
folded nodes leave the graph and their outputs become constants. ``Identity``, inference ``Dropout`` and
same-type ``Cast`` nodes are removed (their readers read the input).

A dynamic batch is folded twice, with the batch set to 2 and to 3 (:func:`fold_dynamic`). A value equal in
both is a constant. Shape arithmetic is linear in the batch, so a Reshape target entry that differs is
``a * batch + c``: the batch itself at the position where the input has it becomes 0 (ONNX: copy that
dimension), a single other one becomes -1. Any other use of a batch-dependent value is an error naming
the node.
"""

from __future__ import annotations

import copy
from typing import Callable

import numpy as np

from hwsim.errors import ConfigError

PROBE_BATCHES = (2, 3)


def _attr_or_input(node, args: list, index: int, name: str):
    if name in node.attrs:
        return list(node.attrs[name])
    if len(args) > index and args[index] is not None:
        return np.ravel(args[index]).tolist()
    return None


def _shape(node, args, info):
    shape = info.get(node.inputs[0], (None,))[0]
    if shape is None or None in shape:
        return None
    start, end = node.attrs.get("start", 0), node.attrs.get("end", len(shape))
    return np.array(list(shape)[start:end], np.int64)


def _unsqueeze(node, args, info):
    axes = _attr_or_input(node, args, 1, "axes")
    out = args[0]
    for ax in sorted(v % (np.ndim(args[0]) + len(axes)) for v in axes):
        out = np.expand_dims(out, ax)
    return out


def _squeeze(node, args, info):
    axes = _attr_or_input(node, args, 1, "axes")
    return np.squeeze(args[0], axis=None if axes is None else tuple(axes))


def _slice(node, args, info):
    starts, ends = np.ravel(args[1]), np.ravel(args[2])
    axes = np.ravel(args[3]) if len(args) > 3 and args[3] is not None else range(len(starts))
    steps = np.ravel(args[4]) if len(args) > 4 and args[4] is not None else [1] * len(starts)
    index = [slice(None)] * np.ndim(args[0])
    for s, e, a, st in zip(starts, ends, axes, steps):
        index[int(a)] = slice(int(s), int(e), int(st))
    return np.asarray(args[0])[tuple(index)]


def _div(a, b):
    """ONNX Div: integer division truncates toward zero (C semantics), floats divide."""
    a, b = np.asarray(a), np.asarray(b)
    if np.issubdtype(a.dtype, np.integer):
        return np.trunc(a / b).astype(a.dtype)
    return (a / b).astype(a.dtype)


def _cast(node, args, info):
    import onnx

    return np.asarray(args[0]).astype(onnx.helper.tensor_dtype_to_np_dtype(node.attrs["to"]))


def _constant_of_shape(node, args, info):
    import onnx

    value = node.attrs.get("value")
    fill = onnx.numpy_helper.to_array(value) if value is not None else np.zeros(1, np.float32)
    return np.full(np.asarray(args[0]).astype(np.int64), fill.ravel()[0], fill.dtype)


def _reshape(node, args, info):
    x, target = np.asarray(args[0]), [int(v) for v in np.ravel(args[1])]
    return x.reshape([x.shape[i] if v == 0 else v for i, v in enumerate(target)])


def _elementwise(fn):
    return lambda node, args, info: np.asarray(fn(*args))


FOLDERS: dict[str, Callable] = {
    "Shape": _shape,
    "Unsqueeze": _unsqueeze,
    "Squeeze": _squeeze,
    "Slice": _slice,
    "Cast": _cast,
    "ConstantOfShape": _constant_of_shape,
    "Reshape": _reshape,
    "Gather": lambda node, args, info: np.take(args[0], args[1], axis=node.attrs.get("axis", 0)),
    "Concat": lambda node, args, info: np.concatenate([np.atleast_1d(a) for a in args], node.attrs["axis"]),
    "Range": lambda node, args, info: np.arange(*(np.ravel(a)[0] for a in args)),
    "Expand": lambda node, args, info: args[0] * np.ones([int(v) for v in np.ravel(args[1])], args[0].dtype),
    "Transpose": lambda node, args, info: np.transpose(args[0], node.attrs.get("perm")),
    "ReduceProd": lambda node, args, info: np.prod(args[0], keepdims=bool(node.attrs.get("keepdims", 1))),
    "Add": _elementwise(np.add),
    "Sub": _elementwise(np.subtract),
    "Mul": _elementwise(np.multiply),
    "Div": _elementwise(_div),
    "Mod": _elementwise(np.mod),
    "Sqrt": _elementwise(np.sqrt),
    "Neg": _elementwise(np.negative),
    "Equal": _elementwise(np.equal),
    "Floor": _elementwise(np.floor),
    "Ceil": _elementwise(np.ceil),
    "Min": _elementwise(np.minimum),
    "Max": _elementwise(np.maximum),
    "Where": _elementwise(np.where),
}
_PASS = ("Identity", "Dropout")


def fold_once(nodes: list, consts: dict, info: dict, graph_outputs: set[str]) -> list:
    """One pass: nodes whose inputs are all constant (or, for Shape, whose input's shape ``info`` knows)
    are evaluated into ``consts`` and leave the list; pass-through nodes are removed."""
    alias: dict[str, str] = {}
    kept = []
    for n in nodes:
        n.inputs = [alias.get(i, i) for i in n.inputs]
        if (n.op_type in _PASS or _same_type_cast(n, info)) and n.outputs[0] not in graph_outputs:
            alias[n.outputs[0]] = n.inputs[0]
            continue
        folder = FOLDERS.get(n.op_type)
        ready = n.op_type == "Shape" or all(i in consts for i in n.inputs if i)
        value = (
            folder(n, [consts.get(i) if i else None for i in n.inputs], info)
            if folder is not None and ready and n.outputs[0] not in graph_outputs
            else None
        )
        if value is None:
            kept.append(n)
        else:
            consts[n.outputs[0]] = np.asarray(value)
    for n in kept:
        n.inputs = [alias.get(i, i) for i in n.inputs]
    return kept


def _same_type_cast(n, info) -> bool:
    """A Cast to the type its input already has (exporters leave them around scalars and masks)."""
    if n.op_type != "Cast" or n.inputs[0] not in info:
        return False
    import onnx

    return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(n.attrs["to"])) == info[n.inputs[0]][1]


def fold_dynamic(runs: list[tuple[list, dict, dict]], constants: set[str], where: Callable) -> tuple:
    """Merge the folds of the same graph at the probe batches (:data:`PROBE_BATCHES`).

    ``runs`` holds (nodes, consts, info) per probe; ``constants`` are the names the file itself holds.
    Returns (nodes, consts, info): values equal in every run, Reshape targets rewritten with 0 / -1, and
    shapes whose differing dimensions are None.
    """
    (nodes, c2, i2), (_, c3, i3) = runs
    b2, b3 = PROBE_BATCHES
    consts = {k: v for k, v in c2.items() if k in c3 and np.array_equal(v, c3[k])}
    info = {}
    for name, (s2, dtype) in i2.items():
        s3 = i3.get(name, (None,))[0]
        if s3 is not None and len(s2) == len(s3):
            info[name] = (tuple(a if a == b else None for a, b in zip(s2, s3)), dtype)
    for n in nodes:
        for pos, name in enumerate(n.inputs):
            if not name or name in consts or name not in c2:
                continue
            if n.op_type != "Reshape" or pos != 1:
                raise ConfigError(
                    f"{where(n)}: input {name!r} is computed from the dynamic batch, which "
                    "hwsim folds only into Reshape targets; export the model with a fixed "
                    "batch"
                )
            slope = (c3[name].astype(np.int64) - c2[name].astype(np.int64)) // (b3 - b2)
            offset = c2[name].astype(np.int64) - slope * b2
            s2, s3 = i2.get(n.inputs[0], (None,))[0], i3.get(n.inputs[0], (None,))[0]
            batch_at = [] if s2 is None or s3 is None else [a == b2 and b == b3 for a, b in zip(s2, s3)]
            consts[name] = _reshape_target(slope, offset, batch_at, where(n))
    return nodes, consts, info


def _reshape_target(slope: np.ndarray, offset: np.ndarray, batch_at: list[bool], where: str) -> np.ndarray:
    """A Reshape target ``slope * batch + offset``: 0 where it is the batch at a position where the input
    has the batch itself (``batch_at``), -1 for a single other batch-dependent entry."""
    target = offset.copy()
    other = []
    for i in np.flatnonzero(slope):
        if slope[i] == 1 and offset[i] == 0 and i < len(batch_at) and batch_at[i]:
            target[i] = 0
        else:
            other.append(i)
    if len(other) > 1 or (other and -1 in offset[slope == 0]):
        raise ConfigError(
            f"{where}: the Reshape target depends on the dynamic batch in a way hwsim cannot "
            "fold; export the model with a fixed batch"
        )
    for i in other:
        target[i] = -1
    return target


def probe_copy(nodes: list) -> list:
    """Independent copies of the nodes, for one probe's fold (folding rewrites node inputs)."""
    return [copy.copy(n) for n in nodes]
