"""Read a ``.tflite`` flatbuffer into a :class:`~hwsim.workload.graph.Graph`.

TensorFlow is not needed, nor hwsim's integer datapath: loading a file for a shape-only simulation imports
no kernel, and the flatbuffer is read by :mod:`hwsim.importers.tflite_schema` (no generated schema
package). Weights, biases and every tensor's scale and zero point come from the file; int4 buffers (two
codes per byte, low nibble first) are unpacked. Shape arithmetic on constants and static shapes (what
the converter emits for Keras' Flatten and Reshape with an unknown batch size) is folded at import
(:mod:`hwsim.importers.tflite_fold`); each remaining op is named ``"<operator index>:<OPERATOR>"``.

Ops in :data:`SHAPE_ONLY` are read with their shapes only: hwsim places and times them (``simulate``,
``energy``) but has no bit-exact kernel for them, and ``infer`` names the first one it meets. Any other op
or option hwsim does not model is an error naming the op, its index and the option, never a silent
approximation.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

from hwsim.errors import ConfigError
from hwsim.importers import tflite_schema as fb
from hwsim.importers.tflite_fold import ShapeFolding
from hwsim.workload.graph import Graph, Op, QuantInfo, StoredArray, Tensor, flat_values

_ACTIVATION = {0: None, 1: "relu", 2: "relu_n1_to_1", 3: "relu6"}
_PADDING = {0: "same", 1: "valid"}
_T = fb.TENSOR_TYPES
# tensor type -> (dtype name, bytes per element); an int4 tensor is read into int8
_DTYPES = {
    _T[name]: dtype
    for name, dtype in (
        ("FLOAT32", ("float32", 4)),
        ("INT8", ("int8", 1)),
        ("UINT8", ("uint8", 1)),
        ("INT16", ("int16", 2)),
        ("INT32", ("int32", 4)),
        ("INT64", ("int64", 8)),
        ("INT4", ("int8", 1)),
        ("BOOL", ("bool", 1)),
        ("FLOAT16", ("float16", 2)),
    )
}
_OP_NAMES = {code: name for name, code in fb.BUILTIN_OPERATORS.items()}


def _enum_name(enum: str, value: int) -> str:
    """The schema's name of an enum value hwsim does not read, for an error message (the number without the
    optional ``tflite`` package)."""
    try:
        import tflite
    except ImportError:
        return str(value)
    return next(
        (k for k, v in vars(getattr(tflite, enum)).items() if v == value and not k.startswith("_")),
        str(value),
    )


def load_tflite(path: str | Path) -> Graph:
    """Parse ``path`` into a graph of hwsim ops (the first subgraph)."""
    path = Path(path)
    try:
        buf = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the file ({exc.strerror})") from None
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise ConfigError(f"{path}: not a TFLite flatbuffer (no 'TFL3' identifier at byte 4)")
    try:
        return _build(fb.root(buf), path)
    except ConfigError:
        raise
    except Exception as exc:  # a damaged flatbuffer raises from deep inside the reader
        raise ConfigError(
            f"{path}: the flatbuffer is damaged or truncated ({type(exc).__name__}: {exc})"
        ) from None


def _build(model: fb.Table, path: Path) -> Graph:
    subgraphs = model.tables(fb.MODEL_SUBGRAPHS)
    if not subgraphs:
        raise ConfigError(f"{path}: the model has no subgraph")
    sub = subgraphs[0]
    buffers = model.tables(fb.MODEL_BUFFERS)
    opcodes = model.tables(fb.MODEL_OPERATOR_CODES)
    tensors: dict[str, Tensor] = {}
    names: list[str] = []
    for i, t in enumerate(sub.tables(fb.SUBGRAPH_TENSORS)):
        name = t.string(fb.TENSOR_NAME).decode() or f"tensor_{i}"
        if name in tensors:
            name = f"{name}#{i}"
        names.append(name)
        ttype = t.scalar(fb.TENSOR_TYPE, fb.BYTE, 0)
        if ttype not in _DTYPES:
            raise ConfigError(
                f"{path}: tensor {name!r} has type {_enum_name('TensorType', ttype)}, "
                "which hwsim does not model"
            )
        shape = t.array(fb.TENSOR_SHAPE, "i")
        signature = t.array(fb.TENSOR_SHAPE_SIGNATURE, "i") or shape
        shape = tuple(None if s == -1 else d for d, s in zip(shape, signature)) if signature else shape
        int4 = ttype == _T["INT4"]
        buffer = buffers[t.scalar(fb.TENSOR_BUFFER, fb.UINT, 0)] if buffers else None
        data = _buffer(buffer, _DTYPES[ttype], shape, int4, path, name)
        tensors[name] = Tensor(name, shape, _DTYPES[ttype][0], _quant(t), data, 4 if int4 else None)
    graph_inputs = [names[j] for j in sub.array(fb.SUBGRAPH_INPUTS, "i")]
    graph_outputs = [names[j] for j in sub.array(fb.SUBGRAPH_OUTPUTS, "i")]
    folding = ShapeFolding(str(path), tensors, graph_inputs, graph_outputs)
    ops: list[Op] = []
    for i, o in enumerate(sub.tables(fb.SUBGRAPH_OPERATORS)):
        code = opcodes[o.scalar(fb.OPERATOR_OPCODE_INDEX, fb.UINT, 0)]
        builtin = max(
            code.scalar(fb.OPCODE_BUILTIN, fb.INT, 0), code.scalar(fb.OPCODE_DEPRECATED_BUILTIN, fb.BYTE, 0)
        )
        op_name = _OP_NAMES.get(builtin) or _enum_name("BuiltinOperator", builtin)
        if builtin == fb.BUILTIN_OPERATORS["CUSTOM"]:
            op_name = f"CUSTOM:{code.string(fb.OPCODE_CUSTOM_CODE).decode()}"
        inputs = [names[j] if j >= 0 else "" for j in o.array(fb.OPERATOR_INPUTS, "i")]
        outputs = [names[j] for j in o.array(fb.OPERATOR_OUTPUTS, "i")]
        convert = _CONVERTERS.get(op_name)
        if convert is None:
            raise ConfigError(
                f"{path}: operator {i} ({op_name}, output {outputs[0]!r}) is not supported by "
                f"hwsim; supported: {', '.join(sorted(_CONVERTERS))}"
            )
        where = f"{path}: operator {i} ({op_name})"
        kind, attrs = convert(o, [tensors[n] if n else None for n in inputs], where)
        op = Op(f"{i}:{op_name}", kind, inputs, outputs, attrs)
        if folding.fold(op):
            continue
        if op_name in FOLDED_ONLY:
            raise ConfigError(
                f"{path}: {op.describe()} is supported only where it folds at import (constant "
                "or static-shape inputs, an output that is not a graph output)"
            )
        folding.update_shapes(op)
        ops.append(op)
    folding.prune(ops)
    graph = Graph(
        tensors,
        ops,
        graph_inputs,
        graph_outputs,
        str(path),
        "tflite",
        {name: i for i, name in enumerate(names) if name in tensors},
        folding.folded,
    )
    graph.check()
    return graph


def _buffer(
    b: fb.Table | None, dtype: tuple[str, int], shape, packed_int4: bool, path: Path, name: str
) -> StoredArray | None:
    """The tensor's values as the file stores them (made into an array only when read)."""
    raw = b.raw(fb.BUFFER_DATA, 1) if b is not None else b""
    if len(raw) == 0:
        return None
    count = math.prod(shape) if shape else 1
    if packed_int4:
        if len(raw) * 2 < count:
            raise ConfigError(
                f"{path}: tensor {name!r} holds {len(raw)} bytes, its shape {shape} needs "
                f"{-(-count // 2)} (int4)"
            )
        return StoredArray(raw, "int8", shape, int4=True)
    expected = count * dtype[1]
    if len(raw) != expected:
        raise ConfigError(
            f"{path}: tensor {name!r} holds {len(raw)} bytes, its shape {shape} needs {expected}"
        )
    return StoredArray(raw, dtype[0], shape)


def unpack_int4_codes(packed, count: int):
    """``count`` signed 4-bit codes from bytes, low nibble first (TFLite's order), as int8.

    The numpy twin of :func:`hwsim.numerics.ops.unpack_int4`, so that reading a file imports no kernel.

    >>> import numpy as np
    >>> unpack_int4_codes(np.array([225, 7], np.uint8), 3)
    array([ 1, -2,  7], dtype=int8)
    """
    import numpy as np

    return StoredArray(np.asarray(packed, np.uint8).tobytes(), "int8", (count,), int4=True).array()


def _quant(t: fb.Table) -> QuantInfo | None:
    q = t.table(fb.TENSOR_QUANTIZATION)
    if q is None:
        return None
    scale = q.raw(fb.QUANT_SCALE, 4)
    if not scale:
        return None
    n = len(scale) // 4
    zero = q.raw(fb.QUANT_ZERO_POINT, 8) or bytes(8 * n)
    return QuantInfo(
        StoredArray(scale, "float32", (n,)),
        StoredArray(zero, "int64", (len(zero) // 8,)),
        int(q.scalar(fb.QUANT_DIMENSION, fb.INT, 0)) if n > 1 else None,
    )


def _options(o: fb.Table, table: str) -> dict | None:
    """The op's builtin options (``table`` names their type), field by field; None when the file has none."""
    opts = o.table(fb.OPERATOR_BUILTIN_OPTIONS)
    return None if opts is None else opts.fields(fb.OPTIONS[table])


def _activation(value: int, where: str):
    if value not in _ACTIVATION:
        raise ConfigError(f"{where}: fused activation {value} (TANH/SIGN_BIT) is not supported")
    return _ACTIVATION[value]


def _conv(o, ins, where):
    opt = _options(o, "Conv2DOptions")
    w = ins[1]
    return "conv2d", {
        "layout": "NHWC",
        "stride": (opt["stride_h"], opt["stride_w"]),
        "dilation": (opt["dilation_h_factor"], opt["dilation_w_factor"]),
        "padding": _PADDING[opt["padding"]],
        "activation": _activation(opt["fused_activation_function"], where),
        "kernel": w.shape[1:3],
        "groups": ins[0].shape[3] // w.shape[3],
        "in_channels": ins[0].shape[3],
    }


def _depthwise(o, ins, where):
    opt = _options(o, "DepthwiseConv2DOptions")
    w = ins[1]
    return "depthwise_conv2d", {
        "layout": "NHWC",
        "stride": (opt["stride_h"], opt["stride_w"]),
        "dilation": (opt["dilation_h_factor"], opt["dilation_w_factor"]),
        "padding": _PADDING[opt["padding"]],
        "depth_multiplier": w.shape[3] // ins[0].shape[3],
        "activation": _activation(opt["fused_activation_function"], where),
        "kernel": w.shape[1:3],
        "in_channels": ins[0].shape[3],
    }


_INT64 = 4  # TensorType.INT64 in the TFLite schema


def _fully_connected(o, ins, where):
    opt = _options(o, "FullyConnectedOptions")
    if opt is not None and opt["weights_format"] != 0:
        raise ConfigError(f"{where}: weights_format {opt['weights_format']} (shuffled) is not supported")
    activation = _activation(opt["fused_activation_function"] if opt else 0, where)
    attrs = {"activation": activation, "keep_num_dims": opt["keep_num_dims"] if opt else False}
    if opt is not None and opt["quantized_bias_type"] == _INT64:  # LiteRT's 16x8 kernel choice reads it
        attrs["bias_type"] = "int64"
    return "fully_connected", attrs


def _binary(kind: str, table: str):
    def convert(o, ins, where):
        opt = _options(o, table)
        return kind, {"activation": _activation(opt["fused_activation_function"] if opt else 0, where)}

    return convert


def _pool(kind: str):
    def convert(o, ins, where):
        opt = _options(o, "Pool2DOptions")
        return kind, {
            "layout": "NHWC",
            "stride": (opt["stride_h"], opt["stride_w"]),
            "padding": _PADDING[opt["padding"]],
            "kernel": (opt["filter_height"], opt["filter_width"]),
            "activation": _activation(opt["fused_activation_function"], where),
        }

    return convert


def _concat(o, ins, where):
    opt = _options(o, "ConcatenationOptions")
    return "concat", {"axis": opt["axis"], "activation": _activation(opt["fused_activation_function"], where)}


def _plain(kind: str) -> Callable:
    return lambda o, ins, where: (kind, {})


def _const_ints(t, where: str, what: str) -> tuple[int, ...]:
    if t is None or not t.is_constant:
        raise ConfigError(f"{where}: the {what} must be a constant tensor")
    return tuple(int(v) for v in flat_values(t.stored_data))


def _softmax(o, ins, where):
    opt = _options(o, "SoftmaxOptions")
    return "softmax", {"beta": opt["beta"] if opt else 1.0}


def _mean(o, ins, where):
    opt = _options(o, "ReducerOptions")
    return "mean", {
        "axes": _const_ints(ins[1], where, "axes"),
        "keep_dims": opt["keep_dims"] if opt else False,
    }


def _leaky_relu(o, ins, where):
    return "leaky_relu", {"alpha": _options(o, "LeakyReluOptions")["alpha"]}


def _batch_matmul(o, ins, where):
    opt = _options(o, "BatchMatMulOptions")
    return "batch_matmul", {"adj_x": opt["adj_x"] if opt else False, "adj_y": opt["adj_y"] if opt else False}


def _transpose(o, ins, where):
    return "transpose", {"perm": _const_ints(ins[1], where, "permutation")}


def _strided_slice(o, ins, where):
    opt = _options(o, "StridedSliceOptions")
    if opt["ellipsis_mask"] or opt["new_axis_mask"]:
        raise ConfigError(f"{where}: ellipsis_mask and new_axis_mask are not supported")
    return "strided_slice", {
        "begin": _const_ints(ins[1], where, "begin"),
        "end": _const_ints(ins[2], where, "end"),
        "strides": _const_ints(ins[3], where, "strides"),
        "begin_mask": opt["begin_mask"],
        "end_mask": opt["end_mask"],
        "shrink_axis_mask": opt["shrink_axis_mask"],
        "offset": opt["offset"],
    }


def _slice(o, ins, where):
    return "slice", {"begin": _const_ints(ins[1], where, "begin"), "size": _const_ints(ins[2], where, "size")}


def _gather(o, ins, where):
    opt = _options(o, "GatherOptions")
    return "gather", {"axis": opt["axis"] if opt else 0, "batch_dims": opt["batch_dims"] if opt else 0}


def _squeeze(o, ins, where):
    opts = o.table(fb.OPERATOR_BUILTIN_OPTIONS)
    dims = opts.array(fb.SQUEEZE_DIMS, "i") if opts is not None else ()
    return "reshape", {"squeeze_dims": tuple(int(d) for d in dims)}


def _expand_dims(o, ins, where):
    axis = _const_ints(ins[1], where, "axis")
    if len(axis) != 1:
        raise ConfigError(f"{where}: the axis must hold one value (got {len(axis)})")
    return "expand_dims", {"axis": axis[0]}


def _pack(o, ins, where):
    opt = _options(o, "PackOptions")
    return "pack", {"axis": opt["axis"] if opt else 0}


def _reducer(kind: str) -> Callable:
    def convert(o, ins, where):
        opt = _options(o, "ReducerOptions")
        return kind, {
            "axes": _const_ints(ins[1], where, "axes"),
            "keep_dims": opt["keep_dims"] if opt else False,
        }

    return convert


def _transpose_conv(o, ins, where):
    """TRANSPOSE_CONV: inputs are the output shape, the filter [K, FY, FX, C], the input and an optional
    bias."""
    opt = _options(o, "TransposeConvOptions")
    w, x = ins[1], ins[2]
    return "transpose_conv2d", {
        "layout": "NHWC",
        "stride": (opt["stride_h"], opt["stride_w"]),
        "padding": _PADDING[opt["padding"]],
        "activation": _activation(opt["fused_activation_function"], where),
        "kernel": tuple(w.shape[1:3]),
        "in_channels": x.shape[3],
    }


def _resize(kind: str, table: str):
    def convert(o, ins, where):
        opt = _options(o, table) or {}
        return kind, {
            "size": _const_ints(ins[1], where, "size"),
            "align_corners": bool(opt.get("align_corners", False)),
            "half_pixel_centers": bool(opt.get("half_pixel_centers", False)),
        }

    return convert


def _arg_max(o, ins, where):
    axis = _const_ints(ins[1], where, "axis")[0]
    return "arg_max", {"axis": axis % len(ins[0].shape)}


#: Ops read with their shapes only: placed and timed by ``simulate``/``energy`` like any vector-unit op,
#: with no bit-exact kernel yet (options are read only where the shapes need them), so ``infer`` and
#: ``verify`` refuse them.
SHAPE_ONLY: dict[str, Callable] = {
    **{
        name: _plain(name.lower())
        for name in (
            "ABS",
            "EXP",
            "LOG",
            "SQRT",
            "SQUARE",
            "GELU",
            "ELU",
            "LOG_SOFTMAX",
            "FLOOR",
            "CEIL",
            "CAST",
            "L2_NORMALIZATION",
            "PRELU",
            "MAXIMUM",
            "MINIMUM",
            "DIV",
            "FLOOR_DIV",
            "POW",
            "MIRROR_PAD",
            "TILE",
        )
    },
    "RESIZE_BILINEAR": _resize("resize_bilinear", "ResizeBilinearOptions"),
    "RESIZE_NEAREST_NEIGHBOR": _resize("resize_nearest_neighbor", "ResizeNearestNeighborOptions"),
    "TRANSPOSE_CONV": _transpose_conv,
    "ARG_MAX": _arg_max,
    "CUSTOM:TFLite_Detection_PostProcess": _plain("detection_postprocess"),
    "PACK": _pack,
    "SUM": _reducer("sum"),
    "REDUCE_MAX": _reducer("reduce_max"),
}

#: Ops accepted only when the importer can fold them (shape arithmetic on constants and static shapes).
FOLDED_ONLY: dict[str, Callable] = {
    "SHAPE": _plain("shape"),
    "FILL": _plain("fill"),
    "RANGE": _plain("range"),
    "REDUCE_PROD": _reducer("reduce_prod"),
}

_CONVERTERS: dict[str, Callable] = {
    "CONV_2D": _conv,
    "DEPTHWISE_CONV_2D": _depthwise,
    "FULLY_CONNECTED": _fully_connected,
    "ADD": _binary("add", "AddOptions"),
    "AVERAGE_POOL_2D": _pool("avg_pool2d"),
    "MAX_POOL_2D": _pool("max_pool2d"),
    "RESHAPE": _plain("reshape"),
    "SQUEEZE": _squeeze,
    "EXPAND_DIMS": _expand_dims,
    "CONCATENATION": _concat,
    "PAD": _plain("pad"),
    "PADV2": _plain("pad"),
    "QUANTIZE": _plain("quantize"),
    "DEQUANTIZE": _plain("dequantize"),
    # nonlinear and remaining ops (hwsim.runtime.nonlinear)
    "SOFTMAX": _softmax,
    "LOGISTIC": _plain("logistic"),
    "TANH": _plain("tanh"),
    "HARD_SWISH": _plain("hard_swish"),
    "MEAN": _mean,
    "MUL": _binary("mul", "MulOptions"),
    "SUB": _binary("sub", "SubOptions"),
    "SQUARED_DIFFERENCE": _plain("squared_difference"),
    "RSQRT": _plain("rsqrt"),
    "NEG": _plain("neg"),
    "RELU": _plain("relu"),
    "RELU6": _plain("relu6"),
    "RELU_N1_TO_1": _plain("relu_n1_to_1"),
    "LEAKY_RELU": _leaky_relu,
    "BATCH_MATMUL": _batch_matmul,
    "TRANSPOSE": _transpose,
    "STRIDED_SLICE": _strided_slice,
    "SLICE": _slice,
    "GATHER": _gather,
    **SHAPE_ONLY,
    **FOLDED_ONLY,
}
