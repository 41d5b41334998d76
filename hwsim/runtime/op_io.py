"""How an op implementation reads a quantized graph: its inputs' codes, its output tensor, their formats.

Shared by every module that implements ops for :data:`hwsim.runtime.execute.OP_IMPLS`, so that none of them
reaches into another's helpers.
"""

from __future__ import annotations

import numpy as np

from hwsim.errors import ConfigError
from hwsim.numerics import quantized as Q
from hwsim.numerics.accumulator import Accumulator
from hwsim.numerics.formats import IntFormat
from hwsim.workload.graph import Graph, Op, Tensor


def input_value(graph: Graph, values: dict, name: str) -> np.ndarray:
    """An op input's codes: a constant's data, else the value computed so far (one of ``values``)."""
    t = graph.tensor(name)
    return t.data if t.is_constant else values[name]


def output_tensor(graph: Graph, op: Op) -> Tensor:
    """The op's (first) output tensor: its shape, dtype and quantization."""
    return graph.tensor(op.outputs[0])


def qparams(t: Tensor) -> Q.QParams:
    """The scale and zero point of a quantized tensor (an error for a float one)."""
    if t.quant is None:
        raise ConfigError(f"tensor {t.name!r} is not quantized; hwsim runs integer graphs here")
    return Q.QParams(t.quant.scale, t.quant.zero_point)


def int_format(t: Tensor) -> IntFormat:
    """The tensor's integer format: ``bits`` wide when set (4-bit codes in int8), else its dtype's width."""
    return IntFormat(t.bits or t.dtype.itemsize * 8, np.issubdtype(t.dtype, np.signedinteger))


def op_accumulator(op: Op) -> Accumulator:
    """The op's accumulator register (``attrs["accumulator"]``, set by hwsim.quant), else int32 exact."""
    return op.attrs.get("accumulator") or Accumulator()


def constant_bias(graph: Graph, op: Op) -> np.ndarray | None:
    """The op's constant bias (its third input), or None."""
    return graph.tensor(op.inputs[2]).data if len(op.inputs) > 2 and op.inputs[2] else None


def to_nhwc(x: np.ndarray, op: Op) -> np.ndarray:
    """A spatial op's input as contiguous NHWC (the kernels' layout), whatever the op's layout."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)) if op.attrs.get("layout") == "NCHW" else x


def from_nhwc(y: np.ndarray, op: Op) -> np.ndarray:
    """An NHWC result back in the op's layout."""
    return np.ascontiguousarray(y.transpose(0, 3, 1, 2)) if op.attrs.get("layout") == "NCHW" else y


def shape_like(t: Tensor, size: int, batch: int) -> tuple[int, ...]:
    """``t``'s shape for ``size`` values: one unknown dimension takes what the others leave (it need not be
    the input's first dimension, after a reshape folded at import), several take ``batch``."""
    known = int(np.prod([d for d in t.shape if d is not None]))
    if sum(d is None for d in t.shape) == 1 and known and size % known == 0:
        batch = size // known
    shape = [batch if d is None else d for d in t.shape]
    if int(np.prod(shape)) != size:
        raise ConfigError(f"tensor {t.name!r}: computed {size} values for declared shape {t.shape}")
    return tuple(shape)


def xnnpack_q8_ok(scale: float) -> bool:
    """XNNPACK's Q8 elementwise kernels take |scale| in [2**-8, 2**7]; others stay with TFLite's kernels."""
    return 2.0**-8 <= abs(float(scale)) <= 2.0**7
