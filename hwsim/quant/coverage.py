"""Which ops of a float model run on hwsim's integer kernels once quantized, and which run in float32
between a ``dequantize`` and a ``quantize`` (a *float island*, as ONNX Runtime runs ops it has no
quantized kernel for).

An op runs on integer codes when hwsim has a bit-exact kernel for it under the recipe's semantics:
:data:`ANY_SEMANTICS` kinds under every semantics and activation width; :data:`TFLITE_INT8` kinds (TFLite's
int8 kernels, checked against the TFLite interpreter) under a TFLite semantics with 8-bit activations.
Everything else with a float implementation becomes a float island; the simulator places and times it on
a vector unit like any other op.
"""

from __future__ import annotations

from hwsim.workload.graph import Op

ANY_SEMANTICS = frozenset(
    {
        "conv2d",
        "depthwise_conv2d",
        "fully_connected",
        "add",
        "max_pool2d",
        "avg_pool2d",
        "global_avg_pool",
        "flatten",
        "reshape_to",
        "reshape",
        "concat",
        "pad",
        "transpose",
        "slice",
        "gather",
        "expand_dims",
    }
)
TFLITE_INT8 = frozenset(
    {
        "mul",
        "sub",
        "mean",
        "softmax",
        "batch_matmul",
        "logistic",
        "tanh",
        "hard_swish",
        "hard_sigmoid",
        "gelu",
        "relu",
        "relu6",
        "relu_n1_to_1",
        "clip",
        "leaky_relu",
    }
)
#: Ops whose output keeps its input's quantization (pure data movement, or a max).
PASS_THROUGH = frozenset(
    {
        "max_pool2d",
        "avg_pool2d",
        "flatten",
        "reshape_to",
        "reshape",
        "transpose",
        "slice",
        "gather",
        "expand_dims",
        "pad",
    }
)


def pass_through(op: Op) -> bool:
    """True when ``op``'s output keeps its input's scale and zero point (nearest resize included)."""
    return op.kind in PASS_THROUGH or (op.kind == "resize" and op.attrs.get("mode") == "nearest")


def integer_kernel(op: Op, semantics, activation_bits: int) -> bool:
    """True when ``op`` runs on integer codes under ``semantics`` (a
    :class:`~hwsim.numerics.semantics.Semantics`) with activations of ``activation_bits``; False for a float
    island."""
    if op.kind in ANY_SEMANTICS:
        return True
    if op.kind == "resize":  # nearest copies codes; linear interpolates (no TFLite-exact kernel here)
        return op.attrs.get("mode") == "nearest"
    if op.kind not in TFLITE_INT8 or semantics.add_form == "float" or activation_bits != 8:
        return False
    if op.kind == "softmax":  # TFLite normalizes the last axis
        return op.attrs.get("axis", -1) == -1
    return True
