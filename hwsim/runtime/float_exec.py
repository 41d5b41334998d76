"""Run a float32 graph in numpy: the reference every quantized run is compared with.

:data:`FLOAT_OPS` is the float op registry, the float sibling of :data:`hwsim.runtime.execute.OP_IMPLS`:
one table of every op kind hwsim runs in float32 and its function, from :mod:`~hwsim.runtime.float_core`
(a CNN's ops), :mod:`~hwsim.runtime.float_ops` (what ONNX exports add) and
:mod:`~hwsim.runtime.dynamic_ops` (dynamically quantized layers on integer kernels).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from hwsim.errors import ConfigError
from hwsim.registry import Registry
from hwsim.runtime import dynamic_ops, float_core, float_ops
from hwsim.workload.graph import Graph, Op

FloatImpl = Callable[[Graph, Op, dict], np.ndarray]
FLOAT_OPS: Registry[FloatImpl] = Registry(
    "float op",
    {
        # MAC layers
        "conv2d": float_core.conv2d,
        "depthwise_conv2d": float_core.depthwise_conv2d,
        "fully_connected": float_core.fully_connected,
        "batch_matmul": float_ops.batch_matmul_op,
        "dynamic_conv2d": dynamic_ops.dynamic_conv2d,
        "dynamic_depthwise_conv2d": dynamic_ops.dynamic_depthwise_conv2d,
        "dynamic_fully_connected": dynamic_ops.dynamic_fully_connected,
        # normalisation and activations
        "batchnorm": float_core.batchnorm,
        "layer_norm": float_ops.layer_norm_op,
        "softmax": float_core.softmax,
        "relu": float_core.relu,
        "relu6": float_core.relu6,
        "relu_n1_to_1": float_ops.relu_n1_to_1_op,
        "leaky_relu": float_ops.leaky_relu_op,
        "clip": float_ops.clip_op,
        "logistic": float_ops.logistic_op,
        "tanh": float_ops.tanh_op,
        "hard_swish": float_ops.hard_swish_op,
        "hard_sigmoid": float_ops.hard_sigmoid_op,
        "gelu": float_ops.gelu_op,
        "erf": float_ops.erf_op,
        "exp": float_ops.exp_op,
        "sqrt": float_ops.sqrt_op,
        # elementwise arithmetic
        "add": float_core.add,
        "sub": float_ops.sub_op,
        "mul": float_core.mul,
        "div": float_ops.div_op,
        "pow": float_ops.pow_op,
        # pooling and reductions
        "max_pool2d": float_core.max_pool2d,
        "avg_pool2d": float_core.avg_pool2d,
        "global_avg_pool": float_core.global_avg_pool,
        "mean": float_ops.mean_op,
        "sum": float_ops.sum_op,
        # data movement
        "flatten": float_core.flatten,
        "reshape_to": float_core.reshape_to,
        "reshape": float_core.reshape,
        "concat": float_ops.concat_op,
        "slice": float_ops.slice_op,
        "transpose": float_ops.transpose_op,
        "expand_dims": float_ops.expand_dims_op,
        "gather": float_ops.gather_op,
        "pad": float_ops.pad_op,
        "resize": float_ops.resize_op,
    },
)
Hook = Callable[[str, np.ndarray], np.ndarray]


def run_float(
    graph: Graph,
    inputs: dict[str, np.ndarray] | list[np.ndarray],
    *,
    hook: Hook | None = None,
    impls: Registry[FloatImpl] | None = None,
) -> dict[str, np.ndarray]:
    """Execute ``graph`` in float32 and return every tensor's value.

    ``hook(name, value)`` sees each graph input and each op output and returns the value to carry on with
    (calibration records it; fake quantization rounds it). ``impls`` replaces the op registry.
    """
    registry = impls or FLOAT_OPS
    inputs = graph.named_inputs(inputs)
    values: dict[str, np.ndarray] = {}
    for name in graph.inputs:
        x = np.asarray(inputs[name], np.float32)
        values[name] = hook(name, x) if hook else x
    for op in graph.ops:
        try:
            y = registry.get(op.kind)(graph, op, values)
        except ValueError as exc:  # shapes: most often a batch the file fixes (torch.export specializes 1)
            _refuse_fixed_batch(graph, values, op, exc)
            raise
        values[op.outputs[0]] = hook(op.outputs[0], y) if hook else y
    return values


def _refuse_fixed_batch(graph: Graph, values: dict, op, exc: ValueError) -> None:
    """A one-line error when ``op`` failed because an input's batch differs from the one the file fixes."""
    for name in graph.inputs:
        declared = graph.tensor(name).shape
        got = values[name].shape
        if declared and declared[0] is not None and got and got[0] != declared[0]:
            raise ConfigError(
                f"{graph.source}: {op.describe()} cannot run a batch of {got[0]} ({exc}): the model fixes "
                f"input {name!r} to a batch of {declared[0]}; export it with a dynamic batch axis "
                "(torch.export specializes an example batch of 1: give it 2)"
            ) from None
