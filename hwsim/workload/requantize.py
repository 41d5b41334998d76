"""QDQ groups ONNX Runtime leaves in float, as the integer ops a TFLite conversion makes of them.

On x86, ONNX Runtime fuses ``DequantizeLinear -> Add -> QuantizeLinear`` into QLinearAdd only when every
tensor has one type; a residual Add whose inputs ended up int8 and uint8 (its int8->uint8 rewrite skips a
tensor with two readers) stays DequantizeLinear, a float Add and QuantizeLinear, and the ONNX importer
keeps it so (``add_f32``). A full-integer TFLite conversion of the same model has one int8 ADD there.
:func:`requantize` rewrites such groups (Add, Mul, Sub, MatMul, an optional ReLU before the Quantize) into
that op, reading the quantized inputs and writing the quantized output; the Dequantize and Quantize ops
disappear (a Dequantize stays while something else reads it). Convolutions with int8 activations, which
ONNX Runtime's x86 selectors never fuse (``conv2d_f32``), become the int8 CONV_2D or DEPTHWISE_CONV_2D the
converter emits; their weights are still ONNX's OIHW codes, marked ``weights_layout="OIHW"``.
"""

from __future__ import annotations

import numpy as np

from hwsim.workload.graph import Graph, Op

FUSED = {
    "add_f32": "add",
    "mul_f32": "mul",
    "sub_f32": "sub",
    "matmul_f32": "batch_matmul",
    "conv2d_f32": "conv2d",
}


def requantize(graph: Graph) -> list[tuple[Op, int]]:
    """The ops of ``graph`` with each float QDQ group as one integer op, each with its op's index in ``graph``
    (a group keeps its float op's name and index)."""
    producer = {o: op for op in graph.ops for o in op.outputs}
    readers: dict[str, list[Op]] = {}
    for op in graph.ops:
        for name in op.inputs:
            readers.setdefault(name, []).append(op)
    outputs = set(graph.outputs)
    replaced: dict[int, Op] = {}
    gone: set[int] = set()
    for op in graph.ops:
        group = _group(graph, op, producer, readers, outputs)
        if group is None:
            continue
        fused, absorbed = group
        replaced[id(op)] = fused
        gone.update(id(o) for o in absorbed)
    kept = [(replaced.get(id(op), op), i) for i, op in enumerate(graph.ops) if id(op) not in gone]
    read = {name for op, _ in kept for name in op.inputs} | outputs
    return [(op, i) for op, i in kept if op.kind != "dequantize" or op.outputs[0] in read]


def _group(graph: Graph, op: Op, producer, readers, outputs) -> tuple[Op, list[Op]] | None:
    """The integer op replacing float ``op`` and the ops it absorbs, or None when ``op`` is no QDQ group."""
    if op.kind not in FUSED:
        return None
    dqs = [producer.get(name) for name in op.inputs if name]
    if not all(
        d is not None and d.kind == "dequantize" and graph.tensors[d.inputs[0]].quant is not None for d in dqs
    ):
        return None
    absorbed = []
    activation = None
    out = op.outputs[0]
    after = readers.get(out, [])
    if len(after) == 1 and after[0].kind == "relu_f32" and out not in outputs:
        activation = "relu"
        absorbed.append(after[0])
        out = after[0].outputs[0]
        after = readers.get(out, [])
    if out in outputs or len(after) != 1 or after[0].kind != "quantize":
        return None
    absorbed.append(after[0])
    kind = FUSED[op.kind]
    attrs = {"activation": activation}
    if kind == "conv2d":
        kind, attrs = _conv(graph, op, dqs, activation)
        if kind is None:
            return None
    if kind == "batch_matmul":
        attrs = {"adj_x": False, "adj_y": False}
        weights = graph.tensors[dqs[1].inputs[0]]
        if activation is not None:
            return None
        if weights.is_constant and np.ndim(weights.data) == 2:
            kind, attrs = "fully_connected", {"activation": None, "weights_kn": True}
    return Op(op.name, kind, [d.inputs[0] for d in dqs], [after[0].outputs[0]], attrs), absorbed


def _conv(graph: Graph, op: Op, dqs: list[Op], activation: str | None) -> tuple[str | None, dict]:
    """The int8 convolution kind and attributes of a float Conv group: CONV_2D for one group,
    DEPTHWISE_CONV_2D for one input channel a group (any multiplier); None for other grouped convolutions (no
    TFLite
    builtin)."""
    w = graph.tensors[dqs[1].inputs[0]] if len(dqs) > 1 else None
    if w is None or not w.is_constant or len(w.shape) != 4:
        return None, {}
    groups = int(op.attrs.get("groups", 1))
    attrs = {**op.attrs, "activation": activation, "weights_layout": "OIHW"}
    if groups == 1:
        return "conv2d", attrs
    if w.shape[1] == 1 and groups == op.attrs.get("in_channels"):
        return "depthwise_conv2d", {**attrs, "depth_multiplier": w.shape[0] // groups}
    return None, {}
