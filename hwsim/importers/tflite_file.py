"""Read a ``.tflite`` flatbuffer into a :class:`~hwsim.workload.graph.Graph` (with the ``tflite`` schema package).

TensorFlow is not needed. Weights, biases and every tensor's scale and zero point come from the file;
int4 buffers (two codes per byte, low nibble first) are unpacked. An op or option hwsim does not model is an
error naming the op, its index and the option, never a silent approximation. A few ops (transposed
convolution, resizes, arg max, the detection post-processing custom op) are read for the scheduler only:
``hwsim simulate`` times them, the bit-exact runtime refuses them by name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from hwsim.errors import ConfigError, RuntimeUnavailable
from hwsim.numerics.ops import unpack_int4
from hwsim.workload.graph import Graph, Op, QuantInfo, Tensor

_ACTIVATION = {0: None, 1: "relu", 2: "relu_n1_to_1", 3: "relu6"}
_PADDING = {0: "same", 1: "valid"}


def _schema():
    try:
        import tflite
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeUnavailable(f"reading .tflite files needs the 'tflite' package (pip install tflite): {exc}")
    return tflite


def _dtypes(tfl) -> dict[int, np.dtype]:
    t = tfl.TensorType
    return {t.FLOAT32: np.dtype(np.float32), t.INT8: np.dtype(np.int8), t.UINT8: np.dtype(np.uint8),
            t.INT16: np.dtype(np.int16), t.INT32: np.dtype(np.int32), t.INT64: np.dtype(np.int64),
            t.INT4: np.dtype(np.int8), t.BOOL: np.dtype(np.bool_), t.FLOAT16: np.dtype(np.float16)}


def load_tflite(path: str | Path) -> Graph:
    """Parse ``path`` into a graph of hwsim ops (the first subgraph)."""
    tfl = _schema()
    path = Path(path)
    try:
        buf = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the file ({exc.strerror})") from None
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise ConfigError(f"{path}: not a TFLite flatbuffer (no 'TFL3' identifier at byte 4)")
    try:
        model = tfl.Model.GetRootAsModel(buf, 0)
        return _build(tfl, model, path)
    except ConfigError:
        raise
    except Exception as exc:  # a damaged flatbuffer raises from deep inside the generated reader
        raise ConfigError(f"{path}: the flatbuffer is damaged or truncated ({type(exc).__name__}: {exc})") from None


def _build(tfl, model, path: Path) -> Graph:
    if model.SubgraphsLength() < 1:
        raise ConfigError(f"{path}: the model has no subgraph")
    sub = model.Subgraphs(0)
    dtypes = _dtypes(tfl)
    type_names = {v: k for k, v in vars(tfl.TensorType).items() if not k.startswith("_")}
    op_names = {v: k for k, v in vars(tfl.BuiltinOperator).items() if not k.startswith("_")}
    tensors: dict[str, Tensor] = {}
    names: list[str] = []
    for i in range(sub.TensorsLength()):
        t = sub.Tensors(i)
        name = (t.Name() or b"").decode() or f"tensor_{i}"
        if name in tensors:
            name = f"{name}#{i}"
        names.append(name)
        if t.Type() not in dtypes:
            raise ConfigError(f"{path}: tensor {name!r} has type {type_names.get(t.Type(), t.Type())}, "
                              "which hwsim does not model")
        shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        signature = tuple(int(d) for d in t.ShapeSignatureAsNumpy()) if t.ShapeSignatureLength() else shape
        shape = tuple(None if s == -1 else d for d, s in zip(shape, signature)) if signature else shape
        data = _buffer(model, t, dtypes[t.Type()], shape, t.Type() == tfl.TensorType.INT4, path, name)
        tensors[name] = Tensor(name, shape, dtypes[t.Type()], _quant(t), data,
                               4 if t.Type() == tfl.TensorType.INT4 else None)
    ops: list[Op] = []
    for i in range(sub.OperatorsLength()):
        o = sub.Operators(i)
        code = model.OperatorCodes(o.OpcodeIndex())
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        op_name = op_names.get(builtin, str(builtin))
        if builtin == tfl.BuiltinOperator.CUSTOM:
            op_name = f"CUSTOM:{(code.CustomCode() or b'').decode()}"
        inputs = [names[j] if j >= 0 else "" for j in o.InputsAsNumpy()] if o.InputsLength() else []
        outputs = [names[j] for j in o.OutputsAsNumpy()]
        convert = _CONVERTERS.get(op_name)
        if convert is None:
            raise ConfigError(f"{path}: operator {i} ({op_name}, output {outputs[0]!r}) is not supported by hwsim; "
                              f"supported: {', '.join(sorted(_CONVERTERS))}")
        kind, attrs = convert(tfl, o, [tensors[n] if n else None for n in inputs], f"{path}: operator {i} ({op_name})")
        ops.append(Op(f"{i}:{op_name}", kind, inputs, outputs, attrs))
    graph = Graph(tensors, ops, [names[j] for j in sub.InputsAsNumpy()], [names[j] for j in sub.OutputsAsNumpy()],
                  str(path), "tflite", {name: i for i, name in enumerate(names)})
    graph.check()
    return graph


def _buffer(model, t, dtype, shape, packed_int4: bool, path: Path, name: str) -> np.ndarray | None:
    b = model.Buffers(t.Buffer())
    if b is None or b.DataLength() == 0:
        return None
    raw = b.DataAsNumpy()
    count = int(np.prod(shape)) if shape else 1
    if packed_int4:
        return unpack_int4(raw, count).reshape(shape)
    expected = count * dtype.itemsize
    if raw.size != expected:
        raise ConfigError(f"{path}: tensor {name!r} holds {raw.size} bytes, its shape {shape} needs {expected}")
    return raw.view(dtype).reshape(shape).copy()


def _quant(t) -> QuantInfo | None:
    q = t.Quantization()
    if q is None or q.ScaleLength() == 0:
        return None
    scale = q.ScaleAsNumpy().astype(np.float32)
    zero = q.ZeroPointAsNumpy().astype(np.int64) if q.ZeroPointLength() else np.zeros(scale.size, np.int64)
    return QuantInfo(scale, zero, int(q.QuantizedDimension()) if scale.size > 1 else None)


def _options(tfl, o, cls_name: str):
    table = o.BuiltinOptions()
    if table is None:
        return None
    opts = getattr(tfl, cls_name)()
    opts.Init(table.Bytes, table.Pos)
    return opts


def _activation(value: int, where: str):
    if value not in _ACTIVATION:
        raise ConfigError(f"{where}: fused activation {value} (TANH/SIGN_BIT) is not supported")
    return _ACTIVATION[value]


def _conv(tfl, o, ins, where):
    opt = _options(tfl, o, "Conv2DOptions")
    w = ins[1]
    return "conv2d", {"layout": "NHWC", "stride": (opt.StrideH(), opt.StrideW()),
                      "dilation": (opt.DilationHFactor(), opt.DilationWFactor()), "padding": _PADDING[opt.Padding()],
                      "activation": _activation(opt.FusedActivationFunction(), where), "kernel": w.shape[1:3],
                      "groups": ins[0].shape[3] // w.shape[3], "in_channels": ins[0].shape[3]}


def _depthwise(tfl, o, ins, where):
    opt = _options(tfl, o, "DepthwiseConv2DOptions")
    w = ins[1]
    return "depthwise_conv2d", {"layout": "NHWC", "stride": (opt.StrideH(), opt.StrideW()),
                                "dilation": (opt.DilationHFactor(), opt.DilationWFactor()),
                                "padding": _PADDING[opt.Padding()], "depth_multiplier": w.shape[3] // ins[0].shape[3],
                                "activation": _activation(opt.FusedActivationFunction(), where),
                                "kernel": w.shape[1:3], "in_channels": ins[0].shape[3]}


def _fully_connected(tfl, o, ins, where):
    opt = _options(tfl, o, "FullyConnectedOptions")
    if opt is not None and opt.WeightsFormat() != 0:
        raise ConfigError(f"{where}: weights_format {opt.WeightsFormat()} (shuffled) is not supported")
    return "fully_connected", {"activation": _activation(opt.FusedActivationFunction() if opt else 0, where),
                               "keep_num_dims": bool(opt.KeepNumDims()) if opt else False}


def _binary(kind: str, cls_name: str):
    def convert(tfl, o, ins, where):
        opt = _options(tfl, o, cls_name)
        return kind, {"activation": _activation(opt.FusedActivationFunction() if opt else 0, where)}
    return convert


def _pool(kind: str):
    def convert(tfl, o, ins, where):
        opt = _options(tfl, o, "Pool2DOptions")
        return kind, {"layout": "NHWC", "stride": (opt.StrideH(), opt.StrideW()), "padding": _PADDING[opt.Padding()],
                      "kernel": (opt.FilterHeight(), opt.FilterWidth()),
                      "activation": _activation(opt.FusedActivationFunction(), where)}
    return convert


def _concat(tfl, o, ins, where):
    opt = _options(tfl, o, "ConcatenationOptions")
    return "concat", {"axis": int(opt.Axis()), "activation": _activation(opt.FusedActivationFunction(), where)}


def _plain(kind: str) -> Callable:
    return lambda tfl, o, ins, where: (kind, {})



def _const_ints(t, where: str, what: str) -> tuple[int, ...]:
    if t is None or t.data is None:
        raise ConfigError(f"{where}: the {what} must be a constant tensor")
    return tuple(int(v) for v in np.asarray(t.data).ravel())


def _softmax(tfl, o, ins, where):
    opt = _options(tfl, o, "SoftmaxOptions")
    return "softmax", {"beta": float(opt.Beta()) if opt else 1.0}


def _mean(tfl, o, ins, where):
    opt = _options(tfl, o, "ReducerOptions")
    return "mean", {"axes": _const_ints(ins[1], where, "axes"), "keep_dims": bool(opt.KeepDims()) if opt else False}


def _leaky_relu(tfl, o, ins, where):
    opt = _options(tfl, o, "LeakyReluOptions")
    return "leaky_relu", {"alpha": float(opt.Alpha())}


def _batch_matmul(tfl, o, ins, where):
    opt = _options(tfl, o, "BatchMatMulOptions")
    return "batch_matmul", {"adj_x": bool(opt.AdjX()) if opt else False, "adj_y": bool(opt.AdjY()) if opt else False}


def _transpose(tfl, o, ins, where):
    return "transpose", {"perm": _const_ints(ins[1], where, "permutation")}


def _strided_slice(tfl, o, ins, where):
    opt = _options(tfl, o, "StridedSliceOptions")
    if opt.EllipsisMask() or opt.NewAxisMask():
        raise ConfigError(f"{where}: ellipsis_mask and new_axis_mask are not supported")
    return "strided_slice", {"begin": _const_ints(ins[1], where, "begin"), "end": _const_ints(ins[2], where, "end"),
                             "strides": _const_ints(ins[3], where, "strides"), "begin_mask": int(opt.BeginMask()),
                             "end_mask": int(opt.EndMask()), "shrink_axis_mask": int(opt.ShrinkAxisMask()),
                             "offset": bool(opt.Offset())}


def _slice(tfl, o, ins, where):
    return "slice", {"begin": _const_ints(ins[1], where, "begin"), "size": _const_ints(ins[2], where, "size")}


def _gather(tfl, o, ins, where):
    opt = _options(tfl, o, "GatherOptions")
    return "gather", {"axis": int(opt.Axis()) if opt else 0, "batch_dims": int(opt.BatchDims()) if opt else 0}

def _transpose_conv(tfl, o, ins, where):
    """TRANSPOSE_CONV: inputs are the output shape, the filter [K, FY, FX, C], the input and an optional bias."""
    opt = _options(tfl, o, "TransposeConvOptions")
    w, x = ins[1], ins[2]
    return "transpose_conv2d", {"layout": "NHWC", "stride": (opt.StrideH(), opt.StrideW()),
                                "padding": _PADDING[opt.Padding()],
                                "activation": _activation(opt.FusedActivationFunction(), where),
                                "kernel": tuple(w.shape[1:3]), "in_channels": x.shape[3]}


def _resize(kind: str, cls_name: str):
    def convert(tfl, o, ins, where):
        opt = _options(tfl, o, cls_name)
        return kind, {"size": _const_ints(ins[1], where, "size"),
                      "align_corners": bool(opt.AlignCorners()) if opt else False,
                      "half_pixel_centers": bool(opt.HalfPixelCenters()) if opt else False}
    return convert


def _arg_max(tfl, o, ins, where):
    axis = _const_ints(ins[1], where, "axis")[0]
    return "arg_max", {"axis": axis % len(ins[0].shape)}


_CONVERTERS: dict[str, Callable] = {
    "CONV_2D": _conv,
    "DEPTHWISE_CONV_2D": _depthwise,
    "FULLY_CONNECTED": _fully_connected,
    "ADD": _binary("add", "AddOptions"),
    "AVERAGE_POOL_2D": _pool("avg_pool2d"),
    "MAX_POOL_2D": _pool("max_pool2d"),
    "RESHAPE": _plain("reshape"),
    "SQUEEZE": _plain("reshape"),
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
    # ops hwsim schedules but does not run bit-exactly (hwsim.runtime has no kernel for them)
    "TRANSPOSE_CONV": _transpose_conv,
    "RESIZE_BILINEAR": _resize("resize_bilinear", "ResizeBilinearOptions"),
    "RESIZE_NEAREST_NEIGHBOR": _resize("resize_nearest", "ResizeNearestNeighborOptions"),
    "ARG_MAX": _arg_max,
    "CUSTOM:TFLite_Detection_PostProcess": _plain("detection_postprocess"),
}
