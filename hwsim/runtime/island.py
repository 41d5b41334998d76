"""Integer-graph ops that models quantized by hwsim add: float islands and nearest-neighbour resize.

``float_op`` runs a float op (``attrs["op"]``, any kind of :data:`~hwsim.runtime.float_exec.FLOAT_OPS`) on
tensors an earlier ``dequantize`` made real, for a ``quantize`` to turn back into codes: what ONNX Runtime
does with an op it has no quantized kernel for (:mod:`hwsim.quant.coverage` decides which ops).

``resize`` with ``mode: nearest`` copies codes: every output element is the input element the ONNX
coordinate rule picks (:func:`hwsim.runtime.float_ops.resize_nearest_index`), so the output keeps the
input's quantization and no arithmetic happens.
"""

from __future__ import annotations

import numpy as np

from hwsim.errors import ConfigError
from hwsim.runtime.op_io import input_value, output_tensor
from hwsim.runtime.float_exec import FLOAT_OPS
from hwsim.runtime.float_ops import resize_nearest_index
from hwsim.workload.graph import Op


def float_op(graph, op, values, sem):
    kind = op.attrs["op"]
    return FLOAT_OPS.get(kind)(graph, Op(op.name, kind, op.inputs, op.outputs, op.attrs), values)


def resize(graph, op, values, sem):
    x_t, y_t = graph.tensor(op.inputs[0]), output_tensor(graph, op)
    if op.attrs["mode"] != "nearest":
        raise ConfigError(
            f"{op.describe()}: a {op.attrs['mode']} resize of integer codes is not modelled; "
            "hwsim runs it between dequantize and quantize"
        )
    if (
        x_t.quant is not None
        and y_t.quant is not None
        and (
            not np.array_equal(x_t.quant.scale, y_t.quant.scale)
            or not np.array_equal(x_t.quant.zero_point, y_t.quant.zero_point)
        )
    ):
        raise ConfigError(f"{op.describe()}: a nearest resize with different input and output quantization")
    x = input_value(graph, values, op.inputs[0])
    rows = resize_nearest_index(op.attrs, 0, x.shape[2])
    cols = resize_nearest_index(op.attrs, 1, x.shape[3])
    return np.ascontiguousarray(x[:, :, rows][:, :, :, cols])
