"""Float32 implementations of the ops common ONNX exports add to a CNN, MLP or transformer encoder.

Each ``<kind>_op`` is registered in :data:`hwsim.runtime.float_exec.FLOAT_OPS`, so a float model that
uses them can be calibrated, fake-quantized and evaluated, and an integer graph can run them between
``dequantize`` and ``quantize`` (``float_op``, see :mod:`hwsim.runtime.island`). Each follows the ONNX
operator's definition in float32 numpy; tensors keep the file's layout (NCHW for ONNX).
"""

from __future__ import annotations

import math

import numpy as np

from hwsim.errors import ConfigError
from hwsim.runtime.float_core import value

_F32 = np.float32


def _unary(fn):
    def impl(graph, op, values):
        return np.asarray(fn(value(graph, values, op.inputs[0]).astype(np.float32), op.attrs), np.float32)

    return impl


def hard_sigmoid(x: np.ndarray, alpha: float = 1 / 6, beta: float = 0.5) -> np.ndarray:
    """ONNX HardSigmoid: max(0, min(1, alpha x + beta)), in float32 (torch's hardsigmoid: alpha 1/6).

    >>> hard_sigmoid(np.array([-3.0, 0.0, 3.0], np.float32)).tolist()
    [0.0, 0.5, 1.0]
    """
    y = np.asarray(x, np.float32) * _F32(alpha) + _F32(beta)
    return np.clip(y, _F32(0), _F32(1)).astype(np.float32)


def hard_swish(x: np.ndarray) -> np.ndarray:
    """ONNX HardSwish: x * HardSigmoid(x) with alpha 1/6, beta 1/2.

    >>> hard_swish(np.array([-3.0, 0.0, 3.0], np.float32)).tolist()
    [-0.0, 0.0, 3.0]
    """
    return (np.asarray(x, np.float32) * hard_sigmoid(x)).astype(np.float32)


def erf(x: np.ndarray) -> np.ndarray:
    """erf in float64, rounded once to float32 (C's erff is correctly rounded to within an ulp).

    >>> erf(np.array([0.0, 10.0], np.float32)).tolist()
    [0.0, 1.0]
    """
    x = np.asarray(x, np.float64)
    if not x.size:
        return x.astype(np.float32)
    return np.vectorize(math.erf, otypes=[np.float64])(x).astype(np.float32)


def gelu(x: np.ndarray, approximate: bool = False) -> np.ndarray:
    """GELU: x Phi(x) (exact, with erf) or the tanh approximation, in float64 rounded to float32.

    >>> gelu(np.array([0.0, 1.0], np.float32)).round(4).tolist()
    [0.0, 0.8413]
    """
    v = np.asarray(x, np.float64)
    if approximate:
        y = 0.5 * v * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (v + 0.044715 * v**3)))
    else:
        y = 0.5 * v * (1.0 + erf(v / math.sqrt(2.0)).astype(np.float64))
    return y.astype(np.float32)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)) in float64, rounded once to float32."""
    return (1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))).astype(np.float32)


logistic_op = _unary(lambda x, a: sigmoid(x))
tanh_op = _unary(lambda x, a: np.tanh(x))
hard_swish_op = _unary(lambda x, a: hard_swish(x))
hard_sigmoid_op = _unary(lambda x, a: hard_sigmoid(x, a.get("alpha", 1 / 6), a.get("beta", 0.5)))
gelu_op = _unary(lambda x, a: gelu(x, a.get("approximate", False)))
erf_op = _unary(lambda x, a: erf(x))
exp_op = _unary(lambda x, a: np.exp(x))
sqrt_op = _unary(lambda x, a: np.sqrt(x))
relu_n1_to_1_op = _unary(lambda x, a: np.clip(x, _F32(-1), _F32(1)))
leaky_relu_op = _unary(lambda x, a: np.where(x >= 0, x, x * _F32(a["alpha"])))
clip_op = _unary(
    lambda x, a: np.clip(
        x,
        _F32(-np.inf if a["low"] is None else a["low"]),
        _F32(np.inf if a["high"] is None else a["high"]),
    )
)


def _binary(fn):
    def impl(graph, op, values):
        a, b = (value(graph, values, n).astype(np.float32) for n in op.inputs[:2])
        return np.asarray(fn(a, b), np.float32)

    return impl


sub_op = _binary(np.subtract)
div_op = _binary(np.divide)
pow_op = _binary(np.power)


def batch_matmul_op(graph, op, values):
    a, b = (value(graph, values, n).astype(np.float32) for n in op.inputs[:2])
    return np.matmul(a, b).astype(np.float32)


def mean_op(graph, op, values):
    x = value(graph, values, op.inputs[0])
    return x.mean(axis=tuple(op.attrs["axes"]), keepdims=bool(op.attrs["keep_dims"]), dtype=np.float32)


def sum_op(graph, op, values):
    x = value(graph, values, op.inputs[0])
    return x.sum(axis=tuple(op.attrs["axes"]), keepdims=bool(op.attrs["keep_dims"]), dtype=np.float32)


def concat_op(graph, op, values):
    parts = [value(graph, values, n) for n in op.inputs]
    return np.concatenate(parts, axis=op.attrs["axis"]).astype(np.float32)


def slice_op(graph, op, values):
    x = value(graph, values, op.inputs[0])
    index = tuple(slice(b, None if s == -1 else b + s) for b, s in zip(op.attrs["begin"], op.attrs["size"]))
    return np.ascontiguousarray(x[index])


def transpose_op(graph, op, values):
    return np.ascontiguousarray(np.transpose(value(graph, values, op.inputs[0]), op.attrs["perm"]))


def expand_dims_op(graph, op, values):
    return np.expand_dims(value(graph, values, op.inputs[0]), op.attrs["axis"])


def gather_op(graph, op, values):
    idx = value(graph, values, op.inputs[1]).astype(np.int64)
    return np.ascontiguousarray(np.take(value(graph, values, op.inputs[0]), idx, axis=op.attrs["axis"]))


def pad_op(graph, op, values):
    pads = graph.tensor(op.inputs[1]).data
    return np.pad(value(graph, values, op.inputs[0]), [tuple(int(v) for v in row) for row in pads])


def layer_norm_op(graph, op, values):
    """LayerNormalization over the axes from ``axis`` on: (x - mean) / sqrt(var + eps) * scale + bias."""
    x = value(graph, values, op.inputs[0]).astype(np.float32)
    axes = tuple(range(op.attrs["axis"] % x.ndim, x.ndim))
    mean = x.mean(axis=axes, keepdims=True, dtype=np.float32)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True, dtype=np.float32)
    y = (x - mean) / np.sqrt(var + _F32(op.attrs["epsilon"]))
    y = y * value(graph, values, op.inputs[1])
    if len(op.inputs) > 2 and op.inputs[2]:
        y = y + value(graph, values, op.inputs[2])
    return y.astype(np.float32)


def resize_op(graph, op, values):
    """ONNX Resize of the two spatial axes of NCHW (nearest or linear)."""
    x = value(graph, values, op.inputs[0])
    if op.attrs["mode"] == "nearest":
        return np.ascontiguousarray(
            x[:, :, resize_nearest_index(op.attrs, 0, x.shape[2])][
                :, :, :, resize_nearest_index(op.attrs, 1, x.shape[3])
            ]
        )
    y = x.astype(np.float32)
    for axis in (2, 3):
        lo, hi, frac = _linear_taps(op.attrs, axis - 2, y.shape[axis])
        shape = [1] * 4
        shape[axis] = -1
        f = frac.reshape(shape)
        y = (np.take(y, lo, axis=axis) * (_F32(1) - f) + np.take(y, hi, axis=axis) * f).astype(np.float32)
    return y


def source_coordinate(attrs: dict, axis: int, size_in: int) -> np.ndarray:
    """The input coordinate of each output position along spatial ``axis`` (ONNX's
    ``coordinate_transformation_mode``: half_pixel, pytorch_half_pixel, align_corners, asymmetric),
    float32."""
    size_out = attrs["size"][axis]
    scale = _F32(attrs["scale"][axis])
    out = np.arange(size_out, dtype=np.float32)
    mode = attrs["coordinate"]
    if mode == "asymmetric":
        return (out / scale).astype(np.float32)
    if mode == "align_corners":
        return (out * _F32((size_in - 1) / (size_out - 1)) if size_out > 1 else out * 0).astype(np.float32)
    if mode == "pytorch_half_pixel" and size_out == 1:
        return np.zeros(1, np.float32)
    if mode in ("half_pixel", "pytorch_half_pixel"):
        return ((out + _F32(0.5)) / scale - _F32(0.5)).astype(np.float32)
    raise ConfigError(f"coordinate_transformation_mode {mode!r} is not supported")


def resize_nearest_index(attrs: dict, axis: int, size_in: int) -> np.ndarray:
    """The input index each output position copies (ONNX ``nearest_mode``: floor, ceil, round_prefer_floor,
    round_prefer_ceil), clamped to the input.

    >>> attrs = {"size": (4, 4), "scale": (2.0, 2.0), "coordinate": "asymmetric", "nearest_mode": "floor"}
    >>> resize_nearest_index(attrs, 0, 2).tolist()
    [0, 0, 1, 1]
    """
    c = source_coordinate(attrs, axis, size_in).astype(np.float64)
    mode = attrs["nearest_mode"]
    if mode == "floor":
        idx = np.floor(c)
    elif mode == "ceil":
        idx = np.ceil(c)
    elif mode == "round_prefer_floor":
        idx = np.where(c - np.floor(c) == 0.5, np.floor(c), np.floor(c + 0.5))
    elif mode == "round_prefer_ceil":
        idx = np.floor(c + 0.5)
    else:
        raise ConfigError(f"nearest_mode {mode!r} is not supported")
    return np.clip(idx, 0, size_in - 1).astype(np.int64)


def _linear_taps(attrs: dict, axis: int, size_in: int):
    c = np.clip(source_coordinate(attrs, axis, size_in), _F32(0), _F32(size_in - 1))
    lo = np.floor(c).astype(np.int64)
    hi = np.minimum(lo + 1, size_in - 1)
    return lo, hi, (c - lo.astype(np.float32)).astype(np.float32)
