"""Float-graph transforms that prepare a network for quantization, each exact in real arithmetic.

- :func:`fold_batchnorm`: conv/depthwise/FC followed by inference batch norm becomes one op with
  w' = w gamma / sqrt(var + eps) per output channel and b' = (b - mean) gamma / sqrt(var + eps) + beta.
- :func:`fuse_activations`: a ReLU/ReLU6 after a MAC or add op becomes that op's ``activation``
  (TFLite's fused activation; the integer path clamps in the requantizer).
- :func:`equalize`: cross-layer equalization (Nagel et al., "Data-Free Quantization", ICCV 2019, section
  4.1): for consecutive layers joined by ReLU (positive homogeneous), output channel i of the first is
  divided by s_i and input channel i of the second multiplied by s_i, with s_i = sqrt(r1_i / r2_i), so
  both ranges become sqrt(r1_i r2_i). Chains through pooling, global average pooling and flatten (of a
  1x1 map) are followed, since they commute with a positive per-channel scale.
- :func:`correct_bias`: empirical bias correction (same paper, section 4.2, with data): each layer's
  bias absorbs the mean per-channel error of its quantized output, layer after layer.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from hwsim.workload.graph import Graph, Op, Tensor

MAC_KINDS = ("conv2d", "depthwise_conv2d", "fully_connected")
_THROUGH = ("max_pool2d", "avg_pool2d", "global_avg_pool", "flatten", "reshape_to")


def copy_graph(graph: Graph) -> Graph:
    """A deep copy: tensors (with copied data) and ops (with copied attributes)."""
    tensors = {
        n: dataclasses.replace(t, data=None if t.data is None else t.data.copy())
        for n, t in graph.tensors.items()
    }
    ops = [Op(op.name, op.kind, list(op.inputs), list(op.outputs), dict(op.attrs)) for op in graph.ops]
    return Graph(
        tensors,
        ops,
        list(graph.inputs),
        list(graph.outputs),
        graph.source,
        graph.format,
        dict(graph.file_index),
    )


def consumers(graph: Graph) -> dict[str, list[Op]]:
    """Map each tensor name to the ops that read it."""
    out: dict[str, list[Op]] = {}
    for op in graph.ops:
        for name in op.inputs:
            out.setdefault(name, []).append(op)
    return out


def _sole_reader(graph: Graph, readers: dict, name: str) -> Op | None:
    ops = readers.get(name, [])
    return ops[0] if len(ops) == 1 and name not in graph.outputs else None


def bias_tensor(graph: Graph, op: Op, channels: int, data: np.ndarray | None = None) -> Tensor:
    """The op's bias tensor, created when the op has none; holding ``data`` when given (else, new, zeros)."""
    if len(op.inputs) > 2 and op.inputs[2]:
        t = graph.tensor(op.inputs[2])
        if data is not None:
            t.data = data
        return t
    name = f"{op.name}#bias"
    t = Tensor(
        name,
        (channels,),
        np.dtype(np.float32),
        None,
        np.zeros(channels, np.float32) if data is None else data,
    )
    graph.tensors[name] = t
    op.inputs[2:] = [name]
    return t


def out_channels(graph: Graph, op: Op) -> int:
    """Number of output channels of a MAC op."""
    w = graph.tensor(op.inputs[1]).data
    return w.shape[-1] if op.kind == "depthwise_conv2d" else w.shape[0]


def scale_output_channels(graph: Graph, op: Op, factor: np.ndarray) -> None:
    """Multiply output channel c of a MAC op (weights and bias) by ``factor[c]`` in place."""
    w_t = graph.tensor(op.inputs[1])
    shape = [1] * w_t.data.ndim
    shape[-1 if op.kind == "depthwise_conv2d" else 0] = -1
    w_t.data = (w_t.data * factor.reshape(shape)).astype(np.float32)
    b_t = bias_tensor(graph, op, factor.size)
    b_t.data = (b_t.data * factor).astype(np.float32)


def scale_input_channels(graph: Graph, op: Op, factor: np.ndarray) -> None:
    """Multiply the weights reading input channel i of a MAC op by ``factor[i]`` in place."""
    w_t = graph.tensor(op.inputs[1])
    if op.kind == "fully_connected":
        w_t.data = (w_t.data * factor[None, :]).astype(np.float32)
    else:  # conv2d OHWI and depthwise [kh, kw, C] both keep the input channel last
        w_t.data = (w_t.data * factor).astype(np.float32)


def input_channel_ranges(graph: Graph, op: Op) -> np.ndarray:
    """max |w| over everything that multiplies input channel i."""
    w = np.abs(graph.tensor(op.inputs[1]).data)
    if op.kind == "fully_connected":
        return w.max(axis=0)
    return w.reshape(-1, w.shape[-1]).max(axis=0)


def output_channel_ranges(graph: Graph, op: Op) -> np.ndarray:
    """max |w| over each output channel's weights."""
    w = np.abs(graph.tensor(op.inputs[1]).data)
    if op.kind == "depthwise_conv2d":
        return w.reshape(-1, w.shape[-1]).max(axis=0)
    return w.reshape(w.shape[0], -1).max(axis=1)


def fold_batchnorm(graph: Graph) -> Graph:
    """A copy of ``graph`` with every batch norm that follows a MAC op (its only reader) folded into it."""
    g = copy_graph(graph)
    producer = g.producer()
    readers = consumers(g)
    keep = []
    for op in g.ops:
        src = producer.get(op.inputs[0]) if op.kind == "batchnorm" else None
        if (
            src is None
            or src.kind not in MAC_KINDS
            or src.attrs.get("activation") not in (None, "none")
            or _sole_reader(g, readers, op.inputs[0]) is not op
        ):
            keep.append(op)
            continue
        gamma, beta, mean, var = (g.tensor(n).data.astype(np.float64) for n in op.inputs[1:5])
        factor = gamma / np.sqrt(var + np.float64(np.float32(op.attrs.get("epsilon", 1e-5))))
        b_t = bias_tensor(g, src, factor.size)
        bias = (b_t.data.astype(np.float64) - mean) * factor + beta
        scale_output_channels(g, src, factor.astype(np.float32))
        b_t.data = bias.astype(np.float32)
        del g.tensors[src.outputs[0]]
        src.outputs = [op.outputs[0]]
    g.ops = keep
    return g


def fuse_activations(graph: Graph) -> Graph:
    """A copy of ``graph`` with each ReLU / ReLU6 merged into the MAC or add op producing its input."""
    g = copy_graph(graph)
    producer = g.producer()
    readers = consumers(g)
    keep = []
    for op in g.ops:
        src = producer.get(op.inputs[0]) if op.kind in ("relu", "relu6") else None
        if (
            src is None
            or src.kind not in (*MAC_KINDS, "add")
            or src.attrs.get("activation") not in (None, "none")
            or _sole_reader(g, readers, op.inputs[0]) is not op
        ):
            keep.append(op)
            continue
        src.attrs["activation"] = op.kind
        del g.tensors[src.outputs[0]]
        src.outputs = [op.outputs[0]]
    g.ops = keep
    return g


def prepare(graph: Graph) -> Graph:
    """Batch-norm folding then activation fusion: the float graph every quantizer starts from."""
    return fuse_activations(fold_batchnorm(graph))


def equalization_pairs(graph: Graph) -> list[tuple[Op, Op]]:
    """(first, second) MAC ops joined by ReLU or nothing, through ops that commute with channel scaling."""
    readers = consumers(graph)
    pairs = []
    for op in graph.ops:
        if op.kind not in MAC_KINDS or op.attrs.get("activation") not in (None, "none", "relu"):
            continue
        name = op.outputs[0]
        nxt = _sole_reader(graph, readers, name)
        while nxt is not None and nxt.kind in _THROUGH:
            if nxt.kind in ("flatten", "reshape_to"):
                shape = graph.tensor(nxt.inputs[0]).shape
                if len(shape) == 4 and not (shape[2] == 1 and shape[3] == 1):
                    nxt = None
                    break
            name = nxt.outputs[0]
            nxt = _sole_reader(graph, readers, name)
        if nxt is None or nxt.kind not in MAC_KINDS:
            continue
        if nxt.kind == "depthwise_conv2d" and nxt.attrs.get("depth_multiplier", 1) != 1:
            continue
        if input_channel_ranges(graph, nxt).size != out_channels(graph, op):
            continue
        pairs.append((op, nxt))
    return pairs


def equalize(graph: Graph, iterations: int = 20, tol: float = 1e-4) -> tuple[Graph, list[tuple[str, str]]]:
    """Cross-layer equalization of every pair of :func:`equalization_pairs`; returns the new graph and the
    pairs (by op name). Sweeps repeat until no scale moves by more than ``tol`` (relative)."""
    g = copy_graph(graph)
    pairs = equalization_pairs(g)
    for _ in range(iterations):
        moved = 0.0
        for first, second in pairs:
            r1, r2 = output_channel_ranges(g, first), input_channel_ranges(g, second)
            ok = (r1 > 0) & (r2 > 0)
            s = np.ones_like(r1)
            s[ok] = np.sqrt(r1[ok] / r2[ok])
            scale_output_channels(g, first, (1.0 / s).astype(np.float32))
            scale_input_channels(g, second, s.astype(np.float32))
            moved = max(moved, float(np.abs(np.log(s)).max(initial=0.0)))
        if moved < tol:
            break
    return g, [(a.name, b.name) for a, b in pairs]


def correct_bias(graph: Graph, op: Op, error_mean: np.ndarray) -> None:
    """Subtract the measured mean output error (quantized minus float, per output channel) from the bias."""
    b_t = bias_tensor(graph, op, error_mean.size)
    b_t.data = (b_t.data - error_mean).astype(np.float32)
