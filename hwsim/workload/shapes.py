"""Output shapes of hwsim ops from their input shapes and attributes, without running any kernel.

Importers use these rules where the file does not give a shape: ONNX Runtime's ``com.microsoft`` ops (which
``onnx.shape_inference`` does not know) and TFLite ops downstream of shape arithmetic folded at import.
Running the integer graph on zeros would also give the shapes, but it imports the whole datapath
(numba), which a shape-only simulation does not need.

A dimension may be None: the batch of a model converted with an unknown batch size. Rules carry None
through; where a rule must multiply it with other dimensions (flattening it into rows), it counts as 1,
the size the TFLite interpreter allocates for such a file by default.
"""

from __future__ import annotations

import math
from typing import Callable

from hwsim.errors import ConfigError
from hwsim.registry import Registry
from hwsim.workload.graph import Graph, Op, flat_values

Shape = tuple["int | None", ...]
ShapeRule = Callable[[Graph, Op], Shape]
SHAPE_RULES: Registry[ShapeRule] = Registry("shape rule")


def output_shape(graph: Graph, op: Op) -> Shape:
    """The shape of ``op``'s first output, from its inputs' shapes and its attributes."""
    return SHAPE_RULES.get(op.kind)(graph, op)


def _shape(graph: Graph, name: str) -> Shape:
    return tuple(graph.tensor(name).shape)


def _size(shape: Shape) -> int:
    """Elements of ``shape``, an unknown dimension counting 1 (see the module docstring)."""
    return math.prod(d or 1 for d in shape)


def _const(graph: Graph, op: Op, index: int, what: str) -> list[int]:
    t = graph.tensor(op.inputs[index]) if len(op.inputs) > index and op.inputs[index] else None
    if t is None or not t.is_constant:
        raise ConfigError(
            f"{graph.source}: {op.describe()}: the {what} must be a constant tensor to infer the output shape"
        )
    return [int(v) for v in flat_values(t.stored_data)]


def broadcast(a: Shape, b: Shape, where: str = "") -> Shape:
    """numpy broadcasting of two shapes; an unknown dimension against 1 stays unknown.

    >>> broadcast((None, 1, 8), (4, 1))
    (None, 4, 8)
    """
    out = []
    for i in range(1, max(len(a), len(b)) + 1):
        x = a[-i] if i <= len(a) else 1
        y = b[-i] if i <= len(b) else 1
        if x == 1 or x == y:
            out.append(y)
        elif y == 1:
            out.append(x)
        elif x is None or y is None:
            out.append(x if y is None else y)
        else:
            raise ConfigError(f"{where}shapes {a} and {b} do not broadcast")
    return tuple(reversed(out))


def _same(graph: Graph, op: Op) -> Shape:
    return _shape(graph, op.inputs[0])


def _broadcast_all(graph: Graph, op: Op) -> Shape:
    shapes = [_shape(graph, n) for n in op.inputs if n]
    out = shapes[0]
    for s in shapes[1:]:
        out = broadcast(out, s, f"{graph.source}: {op.describe()}: ")
    return out


_SAME_AS_INPUT = (
    "quantize",
    "dequantize",
    "softmax",
    "logistic",
    "tanh",
    "hard_swish",
    "relu",
    "relu6",
    "relu_n1_to_1",
    "leaky_relu",
    "neg",
    "rsqrt",
    "qlinear_softmax",
    "layer_norm_f32",
    "erf_f32",
    "sqrt_f32",
    "relu_f32",
    "batchnorm",
    "abs",
    "exp",
    "log",
    "sqrt",
    "square",
    "gelu",
    "elu",
    "log_softmax",
    "floor",
    "ceil",
    "cast",
    "l2_normalization",
    "clip",
    "hard_sigmoid",
    "erf",
    "layer_norm",
    "float_op",
)
_BROADCAST = (
    "add",
    "sub",
    "mul",
    "squared_difference",
    "qlinear_add",
    "qlinear_mul",
    "add_f32",
    "sub_f32",
    "mul_f32",
    "div_f32",
    "pow_f32",
    "maximum",
    "minimum",
    "div",
    "floor_div",
    "pow",
    "prelu",
)
for _kind in _SAME_AS_INPUT:
    SHAPE_RULES.add(_kind, _same)
for _kind in _BROADCAST:
    SHAPE_RULES.add(_kind, _broadcast_all)


# ---------------------------------------------------------------- spatial ops


def spatial_size(size: int | None, kernel: int, stride: int, dilation: int, padding, axis: int) -> int | None:
    """Output positions along one spatial axis (``axis`` 0 rows, 1 columns) for TFLite/ONNX padding.

    ``padding`` is "same" (SAME_UPPER: ceil(size / stride)), "valid", or (top, bottom, left, right).

    >>> [spatial_size(7, 3, 2, 1, padding, 0) for padding in ("same", "valid", (1, 1, 0, 0))]
    [4, 3, 4]
    """
    if size is None:
        return None
    effective = dilation * (kernel - 1) + 1
    if padding == "same":
        return -(-size // stride)
    before, after = (0, 0) if padding == "valid" else tuple(padding)[2 * axis : 2 * axis + 2]
    return (size + before + after - effective) // stride + 1


def _hw_axes(op: Op) -> tuple[int, int, int]:
    """(row axis, column axis, channel axis) of the op's layout."""
    return (2, 3, 1) if op.attrs.get("layout") == "NCHW" else (1, 2, 3)


def _windowed(graph: Graph, op: Op, channels: int | None) -> Shape:
    x = list(_shape(graph, op.inputs[0]))
    h, w, c = _hw_axes(op)
    a = op.attrs
    stride, dilation = a.get("stride", (1, 1)), a.get("dilation", (1, 1))
    for i, axis in enumerate((h, w)):
        x[axis] = spatial_size(x[axis], a["kernel"][i], stride[i], dilation[i], a["padding"], i)
    if channels is not None:
        x[c] = channels
    return tuple(x)


@SHAPE_RULES.register("conv2d")
def _conv2d(graph: Graph, op: Op) -> Shape:
    return _windowed(graph, op, _shape(graph, op.inputs[1])[0])  # weights OHWI


@SHAPE_RULES.register("conv2d_f32")
@SHAPE_RULES.register("conv_integer")
def _conv_integer(graph: Graph, op: Op) -> Shape:
    return _windowed(graph, op, _shape(graph, op.inputs[1])[0])  # ONNX weights OIHW


@SHAPE_RULES.register("depthwise_conv2d")
def _depthwise(graph: Graph, op: Op) -> Shape:
    return _windowed(graph, op, _shape(graph, op.inputs[1])[-1])  # TFLite 1HWC, ONNX-derived HWC


for _kind in ("avg_pool2d", "max_pool2d"):
    SHAPE_RULES.add(_kind, lambda graph, op: _windowed(graph, op, None))


@SHAPE_RULES.register("global_avg_pool")
def _global_avg_pool(graph: Graph, op: Op) -> Shape:
    x = list(_shape(graph, op.inputs[0]))
    h, w, _ = _hw_axes(op)
    x[h] = x[w] = 1
    return tuple(x)


@SHAPE_RULES.register("resize_bilinear")
@SHAPE_RULES.register("resize_nearest_neighbor")
def _resize(graph: Graph, op: Op) -> Shape:
    n, _, _, c = _shape(graph, op.inputs[0])
    h, w = _const(graph, op, 1, "size")
    return (n, h, w, c)


@SHAPE_RULES.register("resize")
def _resize_onnx(graph: Graph, op: Op) -> Shape:
    """ONNX Resize of the spatial axes of NCHW to ``attrs["size"]``."""
    n, c, _, _ = _shape(graph, op.inputs[0])
    return (n, c, *op.attrs["size"])


# ---------------------------------------------------------------- matrix products


@SHAPE_RULES.register("fully_connected")
def _fully_connected(graph: Graph, op: Op) -> Shape:
    """Weights are (units, depth). TFLite without keep_num_dims flattens the input to rows of ``depth``."""
    x = _shape(graph, op.inputs[0])
    units, depth = _shape(graph, op.inputs[1])
    if op.attrs.get("keep_num_dims", True) or len(x) == 2:
        return (*x[:-1], units)
    if x[0] is None and _size(x[1:]) == depth:  # one row per (unknown) batch element
        return (None, units)
    return (_size(x) // depth, units)


def _matmul(a: Shape, b: Shape, where: str) -> Shape:
    """numpy.matmul of two shapes of rank >= 2 (batch dimensions broadcast)."""
    return (*broadcast(a[:-2], b[:-2], where), a[-2], b[-1])


@SHAPE_RULES.register("batch_matmul")
def _batch_matmul(graph: Graph, op: Op) -> Shape:
    a, b = list(_shape(graph, op.inputs[0])), list(_shape(graph, op.inputs[1]))
    if op.attrs.get("adj_x"):
        a[-2:] = a[:-3:-1]
    if op.attrs.get("adj_y"):
        b[-2:] = b[:-3:-1]
    return _matmul(tuple(a), tuple(b), f"{graph.source}: {op.describe()}: ")


for _kind in ("qlinear_matmul", "matmul_f32", "matmul_integer"):
    SHAPE_RULES.add(
        _kind,
        lambda graph, op: _matmul(
            _shape(graph, op.inputs[0]), _shape(graph, op.inputs[1]), f"{graph.source}: {op.describe()}: "
        ),
    )


# ---------------------------------------------------------------- data movement and reductions


def reshape_target(target: list[int | None], input_shape: Shape) -> Shape:
    """A reshape target with its -1 resolved against the input's elements (unknown dimensions count 1 on
    both sides, so an unknown batch copied into the target cancels the input's).

    >>> reshape_target([None, -1, 8], (None, 6, 4)), reshape_target([-1, 8], (None, 6, 4))
    ((None, 3, 8), (3, 8))
    """
    if -1 not in target:
        return tuple(target)
    rest = _size(tuple(d for d in target if d != -1))
    return tuple(_size(input_shape) // rest if d == -1 else d for d in target)


@SHAPE_RULES.register("reshape")
def _reshape(graph: Graph, op: Op) -> Shape:
    """TFLite RESHAPE with a constant shape input (-1 inferred), or SQUEEZE (``squeeze_dims``, empty: every
    1)."""
    x = _shape(graph, op.inputs[0])
    if "squeeze_dims" in op.attrs:
        dims = {d % len(x) for d in op.attrs["squeeze_dims"]} or {i for i, d in enumerate(x) if d == 1}
        return tuple(d for i, d in enumerate(x) if i not in dims)
    return reshape_target(_const(graph, op, 1, "shape"), x)


@SHAPE_RULES.register("expand_dims")
def _expand_dims(graph: Graph, op: Op) -> Shape:
    x = _shape(graph, op.inputs[0])
    axis = op.attrs["axis"] % (len(x) + 1)
    return (*x[:axis], 1, *x[axis:])


@SHAPE_RULES.register("reshape_to")
def _reshape_to(graph: Graph, op: Op) -> Shape:
    """ONNX Reshape: 0 copies the input dimension, -1 is inferred."""
    x = _shape(graph, op.inputs[0])
    return reshape_target([x[i] if d == 0 else d for i, d in enumerate(op.attrs["shape"])], x)


@SHAPE_RULES.register("flatten")
def _flatten(graph: Graph, op: Op) -> Shape:
    x = _shape(graph, op.inputs[0])
    axis = op.attrs["axis"] % len(x) if x else 0
    head, tail = x[:axis], x[axis:]
    return (None if None in head else math.prod(head), None if None in tail else math.prod(tail))


@SHAPE_RULES.register("transpose")
def _transpose(graph: Graph, op: Op) -> Shape:
    x = _shape(graph, op.inputs[0])
    return tuple(x[p] for p in op.attrs["perm"])


@SHAPE_RULES.register("concat")
def _concat(graph: Graph, op: Op) -> Shape:
    shapes = [_shape(graph, n) for n in op.inputs if n]
    axis = op.attrs["axis"] % len(shapes[0])
    parts = [s[axis] for s in shapes]
    return (*shapes[0][:axis], None if None in parts else sum(parts), *shapes[0][axis + 1 :])


@SHAPE_RULES.register("pack")
def _pack(graph: Graph, op: Op) -> Shape:
    x = _shape(graph, op.inputs[0])
    axis = op.attrs["axis"] % (len(x) + 1)
    return (*x[:axis], len([n for n in op.inputs if n]), *x[axis:])


@SHAPE_RULES.register("pad")
@SHAPE_RULES.register("mirror_pad")
def _pad(graph: Graph, op: Op) -> Shape:
    x = _shape(graph, op.inputs[0])
    pads = _const(graph, op, 1, "paddings")
    return tuple(None if d is None else d + pads[2 * i] + pads[2 * i + 1] for i, d in enumerate(x))


@SHAPE_RULES.register("tile")
def _tile(graph: Graph, op: Op) -> Shape:
    x = _shape(graph, op.inputs[0])
    return tuple(None if d is None else d * m for d, m in zip(x, _const(graph, op, 1, "multiples")))


def _reduced(x: Shape, axes, keep: bool) -> Shape:
    axes = {a % len(x) for a in axes}
    return (
        tuple(1 if i in axes else d for i, d in enumerate(x))
        if keep
        else tuple(d for i, d in enumerate(x) if i not in axes)
    )


for _kind in ("mean", "sum", "reduce_max"):
    SHAPE_RULES.add(
        _kind,
        lambda graph, op: _reduced(_shape(graph, op.inputs[0]), op.attrs["axes"], op.attrs["keep_dims"]),
    )


@SHAPE_RULES.register("reduce_mean_f32")
def _reduce_mean_f32(graph: Graph, op: Op) -> Shape:
    return _reduced(_shape(graph, op.inputs[0]), (op.attrs["axis"],), bool(op.attrs["keepdims"]))


@SHAPE_RULES.register("slice")
def _slice(graph: Graph, op: Op) -> Shape:
    x = _shape(graph, op.inputs[0])
    a = op.attrs
    return tuple(
        (None if d is None else d - b) if s == -1 else s for d, b, s in zip(x, a["begin"], a["size"])
    )


@SHAPE_RULES.register("strided_slice")
def _strided_slice(graph: Graph, op: Op) -> Shape:
    """TFLite STRIDED_SLICE (begin/end masks, shrink_axis_mask, offset); an unknown dimension sliced whole
    stays unknown."""
    x = _shape(graph, op.inputs[0])
    a = op.attrs
    out: list[int | None] = []
    for i, dim in enumerate(x):
        if i >= len(a["begin"]):
            out.append(dim)
            continue
        if a["shrink_axis_mask"] >> i & 1:
            continue
        begin = None if a["begin_mask"] >> i & 1 else a["begin"][i]
        end = None if a["end_mask"] >> i & 1 else a["end"][i] + (a["begin"][i] if a["offset"] else 0)
        whole = begin in (None, 0) and end is None and a["strides"][i] == 1
        out.append(
            None if dim is None and whole else len(range(dim or 1)[slice(begin, end, a["strides"][i])])
        )
    return tuple(out)


@SHAPE_RULES.register("gather")
def _gather(graph: Graph, op: Op) -> Shape:
    x, idx = _shape(graph, op.inputs[0]), _shape(graph, op.inputs[1])
    axis = op.attrs["axis"] % len(x)
    return (*x[:axis], *idx, *x[axis + 1 :])
