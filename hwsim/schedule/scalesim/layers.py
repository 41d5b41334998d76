"""A graph op as the SCALE-Sim layers it runs as: convolution parameters, one layer per depthwise channel.

SCALE-Sim 3.0.0 knows one kind of layer, a convolution of an unpadded ``ifmap_h x ifmap_w x channels`` IFMAP
by ``filters`` filters of ``filter_h x filter_w x channels`` (``topology_utils.py``); its OFMAP is
``ceil((ifmap - filter + stride) / stride)`` per side, so a window may reach past the IFMAP's bottom or right
edge (those reads are not fetched). Everything else is expressed through it:

* a GEMM ``M x K`` by ``K x N`` (``-i gemm``, or a fully connected op) is an ``M x K`` IFMAP with ``N``
  filters of ``1 x K``, one channel (``load_arrays_gemm``);
* a depthwise layer (``DP`` in its name) runs as ``channels`` layers of one channel each, one after another;
  hwsim does the same for every depthwise op, and for each group of a grouped convolution or batch of a
  batched matmul.

Padding has no place in SCALE-Sim's layer, so a padded op is mapped as SCALE-Sim users write it: the top and
left padding become part of the IFMAP, the bottom and right padding are the reads past its edge (when the
OFMAP formula then gives the op's output size; otherwise all padding joins the IFMAP).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hwsim.errors import ConfigError
from hwsim.workload.graph import Graph, Op
from hwsim.workload.opdefs import schedule_kind


@dataclass(frozen=True)
class ScaleSimLayer:
    """One SCALE-Sim layer: an IFMAP, filters and a stride, as a row of its topology file."""

    name: str
    ifmap_h: int
    ifmap_w: int
    filter_h: int
    filter_w: int
    channels: int
    filters: int
    stride_h: int = 1
    stride_w: int = 1

    @property
    def ofmap_h(self) -> int:
        """OFMAP rows: ``ceil((ifmap_h - filter_h + stride) / stride)``."""
        return math.ceil((self.ifmap_h - self.filter_h + self.stride_h) / self.stride_h)

    @property
    def ofmap_w(self) -> int:
        """OFMAP columns."""
        return math.ceil((self.ifmap_w - self.filter_w + self.stride_w) / self.stride_w)

    @property
    def pixels(self) -> int:
        """OFMAP pixels per filter (the GEMM's ``M``)."""
        return self.ofmap_h * self.ofmap_w

    @property
    def window(self) -> int:
        """Elements of one convolution window (the GEMM's ``K``)."""
        return self.filter_h * self.filter_w * self.channels

    @property
    def reads_past_edge(self) -> bool:
        """Whether a window reads past the IFMAP's bottom or right edge (its IFMAP matrix then holds
        ``-1``)."""
        return (self.ofmap_h - 1) * self.stride_h + self.filter_h > self.ifmap_h or (
            self.ofmap_w - 1
        ) * self.stride_w + self.filter_w > self.ifmap_w

    @property
    def macs(self) -> int:
        """Multiply-accumulates of the layer."""
        return self.pixels * self.window * self.filters


def gemm_layer(name: str, m: int, n: int, k: int) -> ScaleSimLayer:
    """An ``M x K`` by ``K x N`` product as SCALE-Sim's GEMM mode builds it."""
    return ScaleSimLayer(name, m, k, 1, k, 1, n)


def layers_of(graph: Graph, op: Op) -> list[ScaleSimLayer]:
    """The SCALE-Sim layers an op runs as (empty for ops SCALE-Sim does not model)."""
    kind = schedule_kind(op.kind)
    where = f"op {op.name!r} of {graph.source}"
    if kind in ("conv2d", "depthwise_conv2d"):
        n, h, w, c = (int(d) for d in graph.tensors[op.inputs[0]].shape)
        k = int(graph.tensors[op.outputs[0]].shape[-1])
        fh, fw = (int(v) for v in op.attrs["kernel"])
        sh, sw = (int(v) for v in op.attrs.get("stride", (1, 1)))
        if n != 1:
            raise ConfigError(f"{where}: batch {n}: SCALE-Sim 3.0.0 runs one image per layer (batch 1)")
        if tuple(op.attrs.get("dilation", (1, 1))) != (1, 1):
            raise ConfigError(
                f"{where}: dilation {op.attrs['dilation']}: SCALE-Sim 3.0.0 has no dilated convolution"
            )
        oh, ow = (int(d) for d in graph.tensors[op.outputs[0]].shape[1:3])
        ih, iw = _ifmap_extent(h, fh, sh, oh, op, 0), _ifmap_extent(w, fw, sw, ow, op, 2)
        if kind == "depthwise_conv2d":
            mult = k // c
            return [ScaleSimLayer(f"{op.name}Channel_{i}", ih, iw, fh, fw, 1, mult, sh, sw) for i in range(c)]
        groups = int(op.attrs.get("groups", 1))
        if groups > 1:
            return [
                ScaleSimLayer(f"{op.name}Group_{i}", ih, iw, fh, fw, c // groups, k // groups, sh, sw)
                for i in range(groups)
            ]
        return [ScaleSimLayer(op.name, ih, iw, fh, fw, c, k, sh, sw)]
    if kind == "fully_connected":
        x = graph.tensors[op.inputs[0]].shape
        kk, cc = (int(d) for d in graph.tensors[op.inputs[1]].shape)
        m = math.prod(int(d or 1) for d in x) // cc
        return [gemm_layer(op.name, m, kk, cc)]
    if kind == "batch_matmul":
        a = [int(d or 1) for d in graph.tensors[op.inputs[0]].shape]
        b = [int(d or 1) for d in graph.tensors[op.inputs[1]].shape]
        batches, m, k = math.prod(a[:-2]), a[-2], a[-1]
        n = b[-1]
        if batches == 1:
            return [gemm_layer(op.name, m, n, k)]
        return [gemm_layer(f"{op.name}Batch_{i}", m, n, k) for i in range(batches)]
    return []


def _ifmap_extent(size: int, filt: int, stride: int, out: int, op: Op, axis: int) -> int:
    """IFMAP extent along one axis: the input plus its leading padding (and its trailing padding when
    needed)."""
    padding = op.attrs.get("padding", "valid")
    if isinstance(padding, str):
        if padding.lower() == "valid":
            return size
        total = max((out - 1) * stride + filt - size, 0)  # SAME: TFLite puts the odd one at the end
        lead, trail = total // 2, total - total // 2
    else:
        lead, trail = int(padding[axis]), int(padding[axis + 1])
    extent = size + lead
    if math.ceil((extent - filt + stride) / stride) == out:
        return extent
    return size + lead + trail
