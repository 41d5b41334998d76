"""Run a quantized graph through the bit-accurate kernels under a runtime's semantics.

:data:`OP_IMPLS` is the op registry: the one table of every op kind hwsim runs on integer codes and the
function that implements it. Each function reads its inputs' codes and quantization from the graph
(:mod:`hwsim.runtime.op_io`) and returns its output codes, exactly as the named runtime computes them; they
live in modules by origin: :mod:`~hwsim.runtime.core_ops` (MAC layers, add, pooling, data movement,
(de)quantization), :mod:`~hwsim.runtime.nonlinear` (TFLite's nonlinear and remaining ops),
:mod:`~hwsim.runtime.onnx_ops` (ONNX Runtime's own), :mod:`~hwsim.runtime.island` (float islands, resize)
and :mod:`~hwsim.runtime.per_group` (hwsim.quant's per-group weight scales).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from hwsim.errors import ConfigError
from hwsim.numerics.semantics import Semantics, resolve
from hwsim.numerics.threads import single_threaded_blas
from hwsim.registry import Registry
from hwsim.runtime import core_ops, island, nonlinear, onnx_ops, per_group
from hwsim.workload.graph import Graph, Op, Tensor

OpImpl = Callable[[Graph, Op, dict, Semantics], np.ndarray]
OP_IMPLS: Registry[OpImpl] = Registry(
    "op",
    {
        # MAC layers and their ONNX integer forms
        "conv2d": core_ops.conv2d,
        "depthwise_conv2d": core_ops.depthwise_conv2d,
        "fully_connected": core_ops.fully_connected,
        "conv_integer": core_ops.conv_integer,
        "matmul_integer": core_ops.matmul_integer,
        "batch_matmul": nonlinear.batch_matmul,
        "qlinear_matmul": onnx_ops.qlinear_matmul,
        "conv2d_per_group": per_group.conv2d_per_group,
        "fully_connected_per_group": per_group.fully_connected_per_group,
        # elementwise arithmetic
        "add": core_ops.add,
        "sub": nonlinear.sub,
        "mul": nonlinear.mul,
        "squared_difference": nonlinear.squared_difference,
        "neg": nonlinear.neg,
        "qlinear_add": onnx_ops.qlinear_add,
        "qlinear_mul": onnx_ops.qlinear_mul,
        # activations and normalisation
        "relu": nonlinear.relu,
        "relu6": nonlinear.relu6,
        "relu_n1_to_1": nonlinear.relu_n1_to_1,
        "clip": nonlinear.clip,
        "leaky_relu": nonlinear.leaky_relu,
        "logistic": nonlinear.logistic,
        "tanh": nonlinear.tanh,
        "gelu": nonlinear.gelu,
        "hard_sigmoid": nonlinear.hard_sigmoid,
        "hard_swish": nonlinear.hard_swish,
        "rsqrt": nonlinear.rsqrt,
        "softmax": nonlinear.softmax,
        "qlinear_softmax": onnx_ops.qlinear_softmax,
        # pooling and reductions
        "avg_pool2d": core_ops.avg_pool2d,
        "max_pool2d": core_ops.max_pool2d,
        "global_avg_pool": core_ops.global_avg_pool,
        "mean": nonlinear.mean,
        # data movement
        "reshape": core_ops.reshape,
        "reshape_to": core_ops.reshape_to,
        "flatten": core_ops.flatten,
        "pad": core_ops.pad,
        "concat": core_ops.concat,
        "transpose": nonlinear.transpose,
        "expand_dims": nonlinear.expand_dims,
        "slice": nonlinear.slice_,
        "strided_slice": nonlinear.strided_slice,
        "gather": nonlinear.gather,
        "resize": island.resize,
        # (de)quantization
        "quantize": core_ops.quantize,
        "dequantize": core_ops.dequantize,
        # float32 ops between dequantize and quantize, as ONNX Runtime computes them
        "float_op": island.float_op,
        "add_f32": onnx_ops.add_f32,
        "sub_f32": onnx_ops.sub_f32,
        "mul_f32": onnx_ops.mul_f32,
        "div_f32": onnx_ops.div_f32,
        "sqrt_f32": onnx_ops.sqrt_f32,
        "pow_f32": onnx_ops.pow_f32,
        "erf_f32": onnx_ops.erf_f32,
        "relu_f32": onnx_ops.relu_f32,
        "reduce_mean_f32": onnx_ops.reduce_mean_f32,
        "layer_norm_f32": onnx_ops.layer_norm_f32,
        "matmul_f32": onnx_ops.matmul_f32,
        "conv2d_f32": onnx_ops.conv2d_f32,
    },
)


def run_graph(
    graph: Graph, inputs: dict[str, np.ndarray] | list[np.ndarray], semantics: str | Semantics
) -> dict[str, np.ndarray]:
    """Execute ``graph`` on ``inputs`` (by name, or in graph-input order) and return every tensor's value."""
    sem = resolve(semantics)
    for op in graph.ops:
        if op.kind not in OP_IMPLS:
            raise ConfigError(
                f"{graph.source}: {op.describe()} has no bit-exact kernel in hwsim yet; the "
                "model "
                "loads for simulate and energy only (the scheduler still times it)"
            )
    inputs = graph.named_inputs(inputs)
    values: dict[str, np.ndarray] = {}
    for name in graph.inputs:
        values[name] = check_input(graph.tensor(name), np.asarray(inputs[name]))
    with single_threaded_blas():  # entered once here rather than by each fused GEMM
        for op in graph.ops:
            values[op.outputs[0]] = OP_IMPLS.get(op.kind)(graph, op, values, sem)
    return values


def check_input(t: Tensor, x: np.ndarray) -> np.ndarray:
    """``x`` if its dtype and shape are those of input ``t`` (None matches any size); else an error."""
    if x.dtype != t.dtype:
        raise ConfigError(f"input {t.name!r}: expected dtype {t.dtype} (got {x.dtype})")
    if len(x.shape) != len(t.shape) or any(d is not None and d != s for d, s in zip(t.shape, x.shape)):
        shape = tuple("?" if d is None else d for d in t.shape)
        raise ConfigError(f"input {t.name!r}: expected shape {shape} (got {tuple(x.shape)})")
    return x
