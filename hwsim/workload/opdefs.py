"""What each op kind costs: multiply-accumulates and the loop dimensions a scheduler tiles.

Loop dimension names follow ZigZag's einsum convention: B batch, K output channels, C input channels,
OY/OX output rows/columns, FY/FX filter rows/columns, G groups; GEMMs use M, N, K... as B, K, C. A transposed
convolution loops over its input rows/columns IY/IX instead of its output.
"""

from __future__ import annotations

import math

from hwsim.workload.graph import Graph, Op

MAC_OPS = ("conv2d", "depthwise_conv2d", "fully_connected", "batch_matmul", "transpose_conv2d")
# Kinds that compute the same loop nest as a MAC op under another runtime's arithmetic (ONNX Runtime's
# QLinearMatMul of two activations, its float MatMul and Conv inside a quantized graph).
ALIASES = {"qlinear_matmul": "batch_matmul", "matmul_f32": "batch_matmul", "conv2d_f32": "conv2d"}


def schedule_kind(kind: str) -> str:
    """The op kind a scheduler maps: the MAC op an aliased kind stands for, else the kind itself."""
    return ALIASES.get(kind, kind)


def _spatial(graph: Graph, op: Op) -> tuple[int, int, int, int]:
    """(batch, out_h, out_w, out_channels) of a conv-like op's output, whatever its layout."""
    shape = graph.tensor(op.outputs[0]).shape
    if op.attrs.get("layout", "NHWC") == "NCHW":
        b, c, h, w = shape
    else:
        b, h, w, c = shape
    return int(b or 1), int(h), int(w), int(c)


def loop_dims(graph: Graph, op: Op) -> dict[str, int]:
    """The loop nest of a MAC op as {dimension: size}; empty for ops without multiplies."""
    kind = schedule_kind(op.kind)
    if kind in ("conv2d", "depthwise_conv2d"):
        b, oh, ow, k = _spatial(graph, op)
        fy, fx = op.attrs["kernel"]
        if kind == "depthwise_conv2d":
            return {"B": b, "K": k, "C": 1, "OY": oh, "OX": ow, "FY": fy, "FX": fx}
        groups = op.attrs.get("groups", 1)
        cin = op.attrs["in_channels"] // groups
        return {"B": b, "G": groups, "K": k // groups, "C": cin, "OY": oh, "OX": ow, "FY": fy, "FX": fx}
    if kind == "transpose_conv2d":  # every input pixel scatters a K x FY x FX patch (GEMM, then col2im)
        x = graph.tensor(op.inputs[2]).shape
        fy, fx = op.attrs["kernel"]
        return {
            "B": int(x[0] or 1),
            "K": _spatial(graph, op)[3],
            "C": int(x[3]),
            "IY": int(x[1]),
            "IX": int(x[2]),
            "FY": fy,
            "FX": fx,
        }
    if kind == "fully_connected":
        w = graph.tensor(op.inputs[1]).shape
        out = graph.tensor(op.outputs[0]).shape
        rows = math.prod(int(d or 1) for d in out[:-1])
        return {"B": rows, "K": int(w[0]), "C": int(w[1])}
    if kind == "batch_matmul":
        out = graph.tensor(op.outputs[0]).shape
        batch = math.prod(int(d or 1) for d in out[:-2])
        depth = op.attrs.get("depth") or graph.tensor(op.inputs[0]).shape[-1]
        return {"B": batch, "M": int(out[-2]), "N": int(out[-1]), "C": int(depth)}
    return {}


def mac_count(graph: Graph, op: Op) -> int:
    """Multiply-accumulates of one op (0 for elementwise and data-movement ops)."""
    return math.prod(loop_dims(graph, op).values()) if schedule_kind(op.kind) in MAC_OPS else 0
