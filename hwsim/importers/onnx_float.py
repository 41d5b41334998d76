"""ONNX nodes of float models (what ``torch.onnx.export`` and tf2onnx emit) as hwsim ops.

:data:`FLOAT_NODES` maps an ONNX op type to a handler ``(builder, node)`` that emits hwsim ops; the ONNX
importer consults it for float32 models before its own handlers (which read quantized models). Each op
kind has a float implementation (:mod:`hwsim.runtime.float_ops`), so hwsim can quantize the model; which
kinds then run on integer kernels and which between ``dequantize`` and ``quantize`` is the quantizer's
business (:mod:`hwsim.quant.convert`). Shapes come from ONNX's shape inference.
"""

from __future__ import annotations

import numpy as np

from hwsim.errors import ConfigError

FLOAT_NODES: dict = {}


def _node(op_type: str):
    def register(fn):
        FLOAT_NODES[op_type] = fn
        return fn

    return register


def _optional(b, n, index: int, what: str):
    """The constant value of optional input ``index`` (None when absent)."""
    if len(n.inputs) <= index or not n.inputs[index]:
        return None
    return b.const(n, n.inputs[index], what)


def _rank(b, n, name: str) -> tuple:
    shape = b.info.get(name, (None,))[0]
    if shape is None:
        raise ConfigError(
            f"{b.where(n)}: the shape of {name!r} is unknown (ONNX's shape inference gives none)"
        )
    return shape


def _unary(kind: str, **fixed):
    def handler(b, n):
        b.emit(n, kind, [n.inputs[0]], {**fixed, **{k: v(n) for k, v in _ATTRS.get(kind, {}).items()}})

    return handler


_ATTRS = {
    "hard_sigmoid": {
        "alpha": lambda n: float(n.attrs.get("alpha", 0.2)),
        "beta": lambda n: float(n.attrs.get("beta", 0.5)),
    },
    "leaky_relu": {"alpha": lambda n: float(n.attrs.get("alpha", 0.01))},
    "gelu": {"approximate": lambda n: n.attrs.get("approximate", b"none") in (b"tanh", "tanh")},
}
for _op, _kind in (
    ("Sigmoid", "logistic"),
    ("Tanh", "tanh"),
    ("HardSwish", "hard_swish"),
    ("HardSigmoid", "hard_sigmoid"),
    ("LeakyRelu", "leaky_relu"),
    ("Gelu", "gelu"),
    ("Erf", "erf"),
    ("Exp", "exp"),
    ("Sqrt", "sqrt"),
):
    FLOAT_NODES[_op] = _unary(_kind)


@_node("Clip")
def _clip(b, n):
    """Clip with bounds as inputs (opset >= 11) or attributes: ReLU, ReLU6 and [-1, 1] keep TFLite's names."""
    low = _optional(b, n, 1, "min")
    high = _optional(b, n, 2, "max")
    low = float(low) if low is not None else n.attrs.get("min")
    high = float(high) if high is not None else n.attrs.get("max")
    named = {(0.0, None): "relu", (0.0, 6.0): "relu6", (-1.0, 1.0): "relu_n1_to_1"}
    kind = named.get((low, high), "clip")
    b.emit(n, kind, [n.inputs[0]], {"low": low, "high": high} if kind == "clip" else {})


@_node("Softmax")
def _softmax(b, n):
    axis = int(n.attrs.get("axis", -1))
    rank = len(b.info.get(n.inputs[0], ((None,) * (axis + 1),))[0])
    if axis == rank - 1:
        axis = -1
    b.emit(n, "softmax", [n.inputs[0]], {"axis": axis, "beta": 1.0})


@_node("ReduceMean")
@_node("ReduceSum")
def _reduce(b, n):
    """ReduceMean (torch's ``x.mean((2, 3))``) and ReduceSum, axes from the attribute or (opset 13+/18+) the
    second input."""
    if n.attrs.get("noop_with_empty_axes", 0):
        raise ConfigError(f"{b.where(n)}: attribute noop_with_empty_axes=1 is not supported")
    axes = n.attrs.get("axes")
    if axes is None:
        axes = _optional(b, n, 1, "axes")
    if axes is None:
        axes = range(len(_rank(b, n, n.inputs[0])))
    rank = len(_rank(b, n, n.inputs[0]))
    attrs = {
        "axes": tuple(int(a) % rank for a in np.ravel(axes)),
        "keep_dims": bool(n.attrs.get("keepdims", 1)),
    }
    if rank == 4:  # NCHW: the integer kernel computes in NHWC, as the same model converted to TFLite would
        attrs["layout"] = "NCHW"
    b.emit(n, "mean" if n.op_type == "ReduceMean" else "sum", [n.inputs[0]], attrs)


@_node("Concat")
def _concat(b, n):
    b.emit(n, "concat", [i for i in n.inputs if i], {"axis": int(n.attrs["axis"])})


def _slice_attrs(shape: tuple, starts, ends, axes, steps, where: str) -> dict:
    begin, size = [0] * len(shape), [-1] * len(shape)
    for s, e, a, st in zip(starts, ends, axes, steps):
        a = int(a) % len(shape)
        if int(st) != 1:
            raise ConfigError(f"{where}: a Slice step of {st} is not supported (only 1)")
        dim = shape[a]
        if dim is None:
            if int(s) != 0 or int(e) < 2**31 - 1:
                raise ConfigError(f"{where}: slicing the dynamic dimension {a} is not supported")
            continue
        lo, hi, _ = slice(int(s), int(e)).indices(dim)
        begin[a], size[a] = lo, max(hi - lo, 0)
    return {"begin": tuple(begin), "size": tuple(size)}


@_node("Slice")
def _slice(b, n):
    shape = _rank(b, n, n.inputs[0])
    starts = _optional(b, n, 1, "starts")
    if starts is None:  # opset < 10: attributes
        starts, ends = n.attrs["starts"], n.attrs["ends"]
        axes, steps = n.attrs.get("axes", range(len(starts))), [1] * len(starts)
    else:
        ends = _optional(b, n, 2, "ends")
        axes = _optional(b, n, 3, "axes")
        steps = _optional(b, n, 4, "steps")
        axes = range(len(starts)) if axes is None else axes
        steps = [1] * len(starts) if steps is None else steps
    b.emit(
        n,
        "slice",
        [n.inputs[0]],
        _slice_attrs(shape, np.ravel(starts), np.ravel(ends), np.ravel(axes), np.ravel(steps), b.where(n)),
    )


@_node("Split")
def _split(b, n):
    """Split into one ``slice`` op per output."""
    shape = _rank(b, n, n.inputs[0])
    axis = int(n.attrs.get("axis", 0)) % len(shape)
    sizes = _optional(b, n, 1, "split")
    sizes = n.attrs.get("split") if sizes is None else sizes
    if sizes is None:
        parts = len(n.outputs)
        sizes = [-(-shape[axis] // parts)] * parts
        sizes[-1] = shape[axis] - sum(sizes[:-1])
    start = 0
    for i, (out, size) in enumerate(zip(n.outputs, np.ravel(sizes))):
        begin, length = [0] * len(shape), [-1] * len(shape)
        begin[axis], length[axis] = start, int(size)
        start += int(size)
        b.emit_one(
            f"{n.name}:{i}", "slice", [n.inputs[0]], out, {"begin": tuple(begin), "size": tuple(length)}
        )


@_node("Pad")
def _pad(b, n):
    mode = n.attrs.get("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    pads = _optional(b, n, 1, "pads")
    pads = n.attrs.get("pads") if pads is None else pads
    fill = _optional(b, n, 2, "constant_value")
    if mode != "constant" or (fill is not None and float(np.ravel(fill)[0]) != 0.0):
        raise ConfigError(f"{b.where(n)}: only a constant Pad with value 0 is supported (mode {mode})")
    rank = len(_rank(b, n, n.inputs[0]))
    axes = _optional(b, n, 3, "axes")
    axes = list(range(rank)) if axes is None else [int(a) % rank for a in np.ravel(axes)]
    pads = np.ravel(pads).astype(np.int64)
    table = np.zeros((rank, 2), np.int64)
    for j, a in enumerate(axes):
        table[a] = (pads[j], pads[j + len(axes)])
    name = f"{n.name}#paddings"
    b.constant(name, table)
    b.emit(n, "pad", [n.inputs[0], name], {})


@_node("Resize")
@_node("Upsample")
def _resize(b, n):
    """Resize / Upsample of the spatial axes of an NCHW tensor, nearest or linear."""
    x = _rank(b, n, n.inputs[0])
    y = b.info.get(n.outputs[0], (None,))[0]
    if len(x) != 4 or y is None or None in y[1:] or y[1] != x[1]:
        raise ConfigError(
            f"{b.where(n)}: only a Resize of the two spatial axes of a 4-D tensor with a known "
            "output shape is supported"
        )
    mode = n.attrs.get("mode", b"nearest")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if mode not in ("nearest", "linear"):
        raise ConfigError(f"{b.where(n)}: Resize mode {mode!r} is not supported (nearest, linear)")
    coord = n.attrs.get(
        "coordinate_transformation_mode", b"half_pixel" if n.op_type == "Resize" else b"asymmetric"
    )
    nearest = n.attrs.get("nearest_mode", b"round_prefer_floor")
    scales = _optional(b, n, 2, "scales") if n.op_type == "Resize" else _optional(b, n, 1, "scales")
    scales = n.attrs.get("scales") if scales is None else scales
    if scales is None or np.size(scales) == 0:
        scales = [y[2] / x[2], y[3] / x[3]]
    else:
        scales = list(np.ravel(scales)[-2:])
    b.emit(
        n,
        "resize",
        [n.inputs[0]],
        {
            "mode": mode,
            "coordinate": coord.decode() if isinstance(coord, bytes) else coord,
            "nearest_mode": nearest.decode() if isinstance(nearest, bytes) else nearest,
            "size": (int(y[2]), int(y[3])),
            "scale": tuple(float(s) for s in scales),
            "layout": "NCHW",
        },
    )


@_node("Squeeze")
def _squeeze(b, n):
    axes = n.attrs.get("axes")
    axes = _optional(b, n, 1, "axes") if axes is None else axes
    b.emit(
        n,
        "reshape",
        [n.inputs[0]],
        {"squeeze_dims": tuple(int(a) for a in np.ravel(axes)) if axes is not None else ()},
    )


@_node("Unsqueeze")
def _unsqueeze(b, n):
    axes = n.attrs.get("axes")
    axes = _optional(b, n, 1, "axes") if axes is None else axes
    axes = [int(a) for a in np.ravel(axes)]
    if len(axes) != 1:
        raise ConfigError(f"{b.where(n)}: Unsqueeze of {len(axes)} axes at once is not supported")
    b.emit(n, "expand_dims", [n.inputs[0]], {"axis": axes[0]})


@_node("Gather")
def _gather(b, n):
    if n.inputs[1] not in b.consts:
        raise ConfigError(
            f"{b.where(n)}: a Gather with computed indices (an embedding of token ids) is not "
            "supported; hwsim quantizes models with a float input"
        )
    b.tensor(n.inputs[1])
    b.emit(n, "gather", [n.inputs[0], n.inputs[1]], {"axis": int(n.attrs.get("axis", 0))})


@_node("MatMul")
def _matmul(b, n):
    w = b.consts.get(n.inputs[1])
    if w is not None and w.ndim == 2:
        name = b._float_weight(n, n.inputs[1], w.T, "nk")
        return b.emit(n, "fully_connected", [n.inputs[0], name], {"activation": None})
    if w is not None:
        b.tensor(n.inputs[1])
    b.emit(n, "batch_matmul", list(n.inputs[:2]), {})


@_node("Div")
def _div(b, n):
    """Division by a constant becomes a multiplication by its float32 reciprocal."""
    c = b.consts.get(n.inputs[1])
    if c is None or not np.issubdtype(c.dtype, np.floating):
        return b.emit(n, "div", list(n.inputs[:2]), {})
    name = f"{n.name}#reciprocal"
    b.constant(name, (np.float32(1) / c.astype(np.float32)).astype(np.float32))
    b.emit(n, "mul", [n.inputs[0], name], {"activation": None})


@_node("Sub")
def _sub(b, n):
    b.emit(n, "sub", list(n.inputs[:2]), {"activation": None})


@_node("Pow")
def _pow(b, n):
    b.const(n, n.inputs[1], "exponent")
    b.emit(n, "pow", list(n.inputs[:2]), {})


@_node("LayerNormalization")
def _layer_norm(b, n):
    if len(n.outputs) > 1 and any(n.outputs[1:]):
        raise ConfigError(f"{b.where(n)}: the Mean and InvStdDev outputs are not supported")
    b.emit(
        n,
        "layer_norm",
        [i for i in n.inputs if i],
        {"axis": int(n.attrs.get("axis", -1)), "epsilon": float(n.attrs.get("epsilon", 1e-5))},
    )


@_node("AveragePool")
def _average_pool(b, n):
    if n.attrs.get("count_include_pad", 0) and any(n.attrs.get("pads", [0])):
        raise ConfigError(f"{b.where(n)}: count_include_pad=1 with padding is not supported")
    attrs = b.spatial(n, tuple(n.attrs["kernel_shape"]), extra=("count_include_pad",))
    b.emit(n, "avg_pool2d", [n.inputs[0]], attrs)
