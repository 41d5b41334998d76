"""An ONNX-imported graph as the TFLite file a full-integer conversion of the model would be (onnx2tf, then
TensorFlow Lite's converter), for the compilers that read only TFLite (Arm Vela).

What changes, and why each is what the converter emits:

* **layout**: feature maps (the rank-4 tensors convolutions and pools read and write, and every rank-4
  tensor joined to them through elementwise ops) are NCHW in ONNX and NHWC in TFLite: their shapes,
  constants and per-channel axes are permuted, spatial ops get ``layout="NHWC"``, axis attributes follow
  the axis. Other rank-4 tensors (an attention's [batch, heads, rows, columns]) keep ONNX's order. An op
  that cannot work on NHWC data (a Flatten or Reshape of a feature map, whose element order is NCHW's; a
  matrix product) reads and writes NCHW copies through TRANSPOSEs, as onnx2tf inserts them; a transpose
  that moves only axes of size 1 is a RESHAPE (TFLite's converter rewrites such trivial transposes), so a
  Flatten after a global pool stays a view;
* **weights**: convolutions OHWI (the importer's already), depthwise [1, H, W, C*multiplier] with the
  per-channel axis 3, fully connected [O, I];
* **padding**: ONNX's explicit pads read as SAME or VALID when they are; otherwise a convolution keeps
  explicit padding as Vela does once it folds the converter's PAD into it (bottom and right trimmed to what
  the stride reaches), or a PAD op when the pads reach the kernel size;
* **fusion**: an Add of a constant vector after a bias-less fully connected layer (ONNX's MatMul, Add) is
  the layer's bias, as TFLite's converter folds it;
* **kinds**: ONNX Runtime's ``qlinear_*`` ops are the TFLite ops (ADD, MUL, SOFTMAX, BATCH_MATMUL) with the
  same quantization; a global average pool is a MEAN over H and W; QDQ groups ONNX Runtime leaves in float
  are int8 ops (:mod:`hwsim.workload.requantize`); float ops stay float (Vela puts them on the CPU), and
  those with no TFLite builtin carry ``attrs["cpu_reason"]``;
* **integer types**: full-integer TFLite is int8, so uint8 tensors (ONNX Runtime's x86 int8->uint8
  rewrite, a QUInt8 model) become int8 with the zero point less 128; the values are unchanged.

Every op of the result comes from one op of the source (``origin``) and the ops keep their names (added
transposes and reshapes are ``<name>/<what>``), so per-layer results keep the ONNX node names; a source op
that disappears (a Quantize of a requantized group, a bias Add) has no op in the result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from hwsim.workload import nhwc as layout
from hwsim.workload.graph import Graph, Op, QuantInfo, Tensor
from hwsim.workload.requantize import requantize

RENAMED = {
    "qlinear_add": "add",
    "qlinear_mul": "mul",
    "qlinear_matmul": "batch_matmul",
    "add_f32": "add",
    "mul_f32": "mul",
    "sub_f32": "sub",
    "div_f32": "div",
    "relu_f32": "relu",
    "sqrt_f32": "sqrt",
    "pow_f32": "pow",
    "matmul_f32": "batch_matmul",
}
ELEMENTWISE = {"add", "mul", "sub", "div", "pow", "maximum", "minimum", "squared_difference"}
SAME_SHAPE = {
    "quantize",
    "dequantize",
    "relu",
    "relu6",
    "relu_n1_to_1",
    "leaky_relu",
    "logistic",
    "tanh",
    "hard_swish",
    "sqrt",
    "rsqrt",
    "neg",
    "abs",
    "exp",
    "log",
    "gelu",
    "elu",
    "erf_f32",
}
SPATIAL = {
    "conv2d",
    "depthwise_conv2d",
    "max_pool2d",
    "avg_pool2d",
    "conv_integer",
    "batchnorm",
    "global_avg_pool",
}
FOLLOWS_LAYOUT = ELEMENTWISE | SAME_SHAPE | {"qlinear_softmax", "concat"}  # rank-4 operands share one layout
CPU_ONLY = {  # kinds a TFLite conversion has no integer builtin for: float (or hybrid) ops on Vela's CPU
    "erf_f32": "ONNX Erf stays a float op in a TFLite conversion; Vela runs float ops on the CPU",
    "layer_norm_f32": "ONNX LayerNormalization stays a float op in a TFLite conversion; Vela runs float ops "
    "on the CPU",
    "conv_integer": "ONNX ConvInteger (dynamic quantization) is a hybrid float op in a TFLite conversion; "
    "Vela runs it on the CPU",
    "matmul_integer": "ONNX MatMulInteger (dynamic quantization) is a hybrid float op in a TFLite "
    "conversion; "
    "Vela runs it on the CPU",
    "batchnorm": "a float BatchNormalization (TFLite's converter folds it into a float convolution); Vela "
    "runs "
    "float ops on the CPU",
}


@dataclass
class Converted:
    """The TFLite-convention graph and, per op, the index in the source graph of the op it comes from."""

    graph: Graph
    origin: list[int]


def as_tflite(graph: Graph) -> Converted:
    """``graph`` (read from ONNX: NCHW, ONNX Runtime's kinds) as TFLite's converter would give it."""
    ops = requantize(graph)
    c = _Converter(graph, feature_maps(graph, [op for op, _ in ops]))
    for op, _ in ops:
        for name in op.inputs:
            c.readers.setdefault(name, []).append(op)
    for op, index in ops:
        c.position = index
        c.convert(op)
    out = Graph(
        c.tensors,
        c.ops,
        [c.nhwc(n) for n in graph.inputs],
        [c.nhwc(n) for n in graph.outputs],
        graph.source,
        "tflite",
    )
    out.check()
    return Converted(out, c.origin)


def feature_maps(graph: Graph, ops: list[Op]) -> set[str]:
    """The rank-4 tensors that are NCHW feature maps: those spatial ops read or write, and every rank-4
    tensor an elementwise op (or softmax, concat) joins to one of them."""
    parent: dict[str, str] = {}

    def find(name: str) -> str:
        while parent.setdefault(name, name) != name:
            name = parent[name]
        return name

    seeds = set()
    for op in ops:
        kind = RENAMED.get(op.kind, op.kind)
        if kind in SPATIAL and op.attrs.get("layout") == "NCHW":
            seeds.update(n for n in (op.inputs[0], *op.outputs) if len(graph.tensors[n].shape) == 4)
        elif kind in FOLLOWS_LAYOUT:
            names = [n for n in (*op.inputs, *op.outputs) if n and len(graph.tensors[n].shape) == 4]
            for name in names[1:]:
                parent[find(name)] = find(names[0])
    roots = {find(n) for n in seeds}
    return {n for n in parent if find(n) in roots} | seeds


def _int8(
    t: Tensor, shape: tuple, data: np.ndarray | None, quant: QuantInfo | None, name: str = ""
) -> Tensor:
    """A copy of ``t`` (named ``name``) with ``shape``, ``data`` and ``quant``; quantized uint8 becomes
    int8."""
    dtype = t.dtype
    if dtype == np.uint8 and quant is not None:
        dtype = np.dtype(np.int8)
        quant = QuantInfo(quant.scale, quant.zero_point - 128, quant.axis)
        data = None if data is None else (data.astype(np.int16) - 128).astype(np.int8)
    return Tensor(name or t.name, tuple(shape), dtype, quant, data, t.bits, t.role)


class _Converter:
    """Builds the converted graph op by op; tensors keep their names (NCHW copies get ``#nchw``)."""

    HANDLERS: ClassVar[dict[str, str]] = {
        k: f"_{k}"
        for k in (
            "global_avg_pool",
            "fully_connected",
            "batch_matmul",
            "qlinear_softmax",
            "reduce_mean_f32",
            "concat",
            "flatten",
            "reshape_to",
            "transpose",
        )
    }

    def __init__(self, graph: Graph, feature_maps: set[str]) -> None:
        self.src = graph
        self.maps = feature_maps
        self.tensors: dict[str, Tensor] = {}
        self.ops: list[Op] = []
        self.origin: list[int] = []
        self.position = 0
        self.op: Op | None = None
        self.nchw_of: dict[str, str] = {}
        self.skip: set[int] = set()  # ops folded into an earlier one
        self.readers: dict[str, list[Op]] = {}

    # -- tensors ------------------------------------------------------------------------------------------
    def is_map(self, name: str) -> bool:
        """True for an NCHW feature map of the source (stored NHWC in the result)."""
        return name in self.maps

    def nhwc(self, name: str) -> str:
        """Tensor ``name`` in TFLite convention (a feature map permuted to NHWC)."""
        if not name or name in self.tensors:
            return name
        t = self.src.tensors[name]
        shape, data, quant = tuple(t.shape), t.data, t.quant
        if self.is_map(name):
            shape = layout.permute(shape, layout.TO_NHWC)
            data = None if data is None else np.ascontiguousarray(np.transpose(data, layout.TO_NHWC))
            if quant is not None and quant.axis is not None:
                quant = QuantInfo(quant.scale, quant.zero_point, layout.nhwc_axis(quant.axis))
        self.tensors[name] = _int8(t, shape, data, quant)
        return name

    def nchw(self, name: str) -> str:
        """Tensor ``name`` in ONNX's order: itself, or for a feature map a transpose of its NHWC tensor."""
        if not self.is_map(name):
            return self.nhwc(name)
        if name not in self.nchw_of:
            t = self.src.tensors[name]
            new = f"{name}#nchw"
            self.tensors[new] = _int8(t, tuple(t.shape), t.data, t.quant, new)
            if not t.is_constant:
                self.transpose(self.nhwc(name), new, layout.TO_NCHW, f"{self.op.name}/to_nchw")
            self.nchw_of[name] = new
        return self.nchw_of[name]

    def new(self, name: str, like: str, shape: tuple) -> str:
        """A tensor the conversion adds, typed and quantized as ``like``."""
        t = self.tensors[like]
        self.tensors[name] = Tensor(name, tuple(shape), t.dtype, t.quant, None, t.bits)
        return name

    def const(self, name: str, values) -> str:
        """An int32 parameter tensor (axes, shapes, permutations), as TFLite stores them."""
        data = np.asarray(values, np.int32)
        self.tensors[name] = Tensor(name, data.shape, data.dtype, None, data)
        return name

    # -- ops ----------------------------------------------------------------------------------------------
    def emit(
        self, kind: str, inputs: list[str], outputs: list[str], attrs: dict, name: str | None = None
    ) -> None:
        self.ops.append(Op(name or self.op.name, kind, inputs, outputs, attrs))
        self.origin.append(self.position)

    def same(self, op: Op, kind: str, attrs: dict) -> None:
        """The op as it is, on its tensors in TFLite convention."""
        self.emit(kind, [self.nhwc(n) for n in op.inputs], [self.nhwc(n) for n in op.outputs], attrs)

    def transpose(self, src: str, dst: str, perm: tuple[int, ...], name: str) -> None:
        """Op ``name``: ``dst`` = ``src`` permuted; a RESHAPE when only axes of size 1 move."""
        if layout.moves_data(self.tensors[src].shape, perm):
            self.emit(
                "transpose", [src, self.const(f"{name}/perm", perm)], [dst], {"perm": tuple(perm)}, name
            )
        else:
            self.reshape(src, dst, name)

    def reshape(self, src: str, dst: str, name: str | None = None) -> None:
        shape = [int(d or 1) for d in self.tensors[dst].shape]
        self.emit("reshape", [src, self.const(f"{name or self.op.name}/shape", shape)], [dst], {}, name)

    def convert(self, op: Op) -> None:
        if id(op) in self.skip:
            return
        self.op = op
        kind = RENAMED.get(op.kind, op.kind)
        attrs = dict(op.attrs)
        if op.kind in CPU_ONLY:
            attrs["cpu_reason"] = CPU_ONLY[op.kind]
        handler = self.HANDLERS.get(kind)
        if handler is not None:
            getattr(self, handler)(op, kind, attrs)
        elif kind in SPATIAL:
            self._spatial(op, kind, attrs)
        elif kind in ELEMENTWISE:
            self._elementwise(op, kind, attrs)
        elif kind in SAME_SHAPE:
            self.same(op, kind, attrs)
        else:
            self.on_nchw(op, kind, attrs)

    def on_nchw(self, op: Op, kind: str, attrs: dict) -> None:
        """The op on its tensors in ONNX's order: feature maps read through NCHW copies, and written as NCHW
        copies transposed back to NHWC."""
        outputs = [f"{n}#nchw" if self.is_map(n) else self.nhwc(n) for n in op.outputs]
        for name, written in zip(op.outputs, outputs):
            if written != name:
                t = self.src.tensors[name]
                self.tensors[written] = _int8(t, tuple(t.shape), None, t.quant, written)
        self.emit(kind, [self.nchw(n) for n in op.inputs], outputs, attrs)
        for name, written in zip(op.outputs, outputs):
            if written != name:
                self.nchw_of[name] = written
                self.transpose(written, self.nhwc(name), layout.TO_NHWC, f"{op.name}/to_nhwc")

    # -- spatial ops ----------------------------------------------------------------------------------------
    def _spatial(self, op: Op, kind: str, attrs: dict) -> None:
        if attrs.get("layout") != "NCHW":
            return self.same(op, kind, attrs)
        attrs["layout"] = "NHWC"
        x = self.nhwc(op.inputs[0])
        inputs = [x, *op.inputs[1:]]
        if kind in ("conv2d", "depthwise_conv2d", "conv_integer"):
            inputs[1] = self._conv_weights(kind, op.inputs[1], attrs.pop("weights_layout", None) == "OIHW")
        inputs = [self.nhwc(n) for n in inputs]
        if "padding" in attrs:
            attrs["padding"] = self._tflite_padding(attrs, x, kind in ("conv2d", "depthwise_conv2d"))
            if attrs["padding"] == "pad":  # pads reaching the kernel size: the converter's PAD op stays
                inputs[0] = self._pad_input(x, op.attrs["padding"])
                attrs["padding"] = "valid"
        self.emit(kind, inputs, [self.nhwc(n) for n in op.outputs], attrs)

    def _conv_weights(self, kind: str, name: str, oihw: bool = False) -> str:
        """Convolution weights as TFLite stores them: OHWI, depthwise [1, H, W, C*multiplier]."""
        t = self.src.tensors[name]
        if oihw and kind == "depthwise_conv2d":  # ONNX's [C*multiplier, 1, H, W]
            quant = t.quant
            if quant is not None and quant.axis is not None:
                quant = QuantInfo(quant.scale, quant.zero_point, 3)
            data = None if t.data is None else np.ascontiguousarray(np.transpose(t.data, (1, 2, 3, 0)))
            self.tensors[name] = _int8(t, (1, t.shape[2], t.shape[3], t.shape[0]), data, quant)
        elif (oihw or kind == "conv_integer") and len(t.shape) == 4:  # raw ONNX OIHW
            self.tensors[name] = _int8(
                t,
                layout.permute(t.shape, layout.TO_NHWC),
                None if t.data is None else np.ascontiguousarray(np.transpose(t.data, layout.TO_NHWC)),
                t.quant,
            )
        elif kind == "depthwise_conv2d" and len(t.shape) == 3:  # the importer's [H, W, C]
            quant = t.quant
            if quant is not None and quant.axis is not None:
                quant = QuantInfo(quant.scale, quant.zero_point, 3)
            self.tensors[name] = _int8(t, (1, *t.shape), None if t.data is None else t.data[None], quant)
        elif name not in self.tensors:  # OHWI already (the importer transposed OIHW)
            self.tensors[name] = _int8(t, tuple(t.shape), t.data, t.quant)
        return name

    def _tflite_padding(self, attrs: dict, x: str, folds: bool):
        """TFLite's padding for an op of the source's (top, bottom, left, right) pads: "same" or "valid" when
        it is one, else the explicit pads Vela keeps when it folds a PAD into a convolution ("pad" when it
        cannot: a pad reaching the kernel size)."""
        pads = attrs["padding"]
        if not isinstance(pads, (tuple, list)):
            return pads
        if not any(pads):
            return "valid"
        _, h, w, _ = (int(d or 1) for d in self.tensors[x].shape)
        (kh, kw), (sy, sx) = attrs["kernel"], attrs.get("stride", (1, 1))
        dy, dx = attrs.get("dilation", (1, 1))
        top, bottom, left, right = pads
        if (top, bottom) == layout.same_pads(h, kh, sy, dy) and (left, right) == layout.same_pads(
            w, kw, sx, dx
        ):
            return "same"
        if not folds:
            return tuple(pads)  # a pool: timed with its own padding (the converter pads with a PAD op)
        bottom = layout.folded_pad_after(h, sy, (kh - 1) * dy + 1, top, bottom)
        right = layout.folded_pad_after(w, sx, (kw - 1) * dx + 1, left, right)
        if max(top, bottom) >= (kh - 1) * dy + 1 or max(left, right) >= (kw - 1) * dx + 1:
            return "pad"
        return (top, bottom, left, right)

    def _pad_input(self, x: str, pads) -> str:
        top, bottom, left, right = pads
        n, h, w, c = self.tensors[x].shape
        out = self.new(f"{x}#padded", x, (n, h + top + bottom, w + left + right, c))
        self.emit(
            "pad",
            [x, self.const(f"{self.op.name}/paddings", [[0, 0], [top, bottom], [left, right], [0, 0]])],
            [out],
            {},
            f"{self.op.name}/pad",
        )
        return out

    def _global_avg_pool(self, op: Op, kind: str, attrs: dict) -> None:
        """A global average pool is TFLite's MEAN over H and W, dimensions kept."""
        axes = (1, 2) if attrs.get("layout") == "NCHW" else (2, 3)
        x = self.nhwc(op.inputs[0])
        self.emit(
            "mean",
            [x, self.const(f"{op.name}/axes", axes)],
            [self.nhwc(op.outputs[0])],
            {"axes": axes, "keep_dims": True},
        )

    # -- matrix products ----------------------------------------------------------------------------------
    def _fully_connected(self, op: Op, kind: str, attrs: dict) -> None:
        if attrs.pop("weights_kn", False):  # a MatMul's [K, N] constant, as TFLite's [N, K]
            t = self.src.tensors[op.inputs[1]]
            name = f"{t.name}#nk"
            quant = t.quant
            if quant is not None and quant.axis is not None:
                quant = QuantInfo(quant.scale, quant.zero_point, 1 - quant.axis)
            self.tensors[name] = _int8(t, t.shape[::-1], np.ascontiguousarray(t.data.T), quant, name)
            op = Op(op.name, kind, [op.inputs[0], name, *op.inputs[2:]], op.outputs, attrs)
        attrs["keep_num_dims"] = len(self.src.tensors[op.inputs[0]].shape) > 2
        add = self._bias_add(op)
        if add is not None:  # TFLite's converter folds a bias add into the layer (FuseFullyConnectedAndAdd)
            self.skip.add(id(add))
            bias = self._bias(op, add)
            op = Op(op.name, kind, [op.inputs[0], op.inputs[1], bias], add.outputs, attrs)
        self.on_nchw(op, kind, attrs)

    def _bias_add(self, op: Op) -> Op | None:
        """The add of a constant vector that alone reads a bias-less fully connected layer's output."""
        out = op.outputs[0]
        readers = self.readers.get(out, [])
        if len(op.inputs) > 2 and op.inputs[2] or len(readers) != 1 or out in self.src.outputs:
            return None
        add = readers[0]
        if RENAMED.get(add.kind, add.kind) != "add" or add.attrs.get("activation") or self.is_map(out):
            return None
        other = [self.src.tensors[n] for n in add.inputs if n != out]
        units = (self.tensors.get(op.inputs[1]) or self.src.tensors[op.inputs[1]]).shape[0]
        if (
            len(other) != 1
            or not other[0].is_constant
            or other[0].data.size != units
            or tuple(other[0].shape[-1:]) != (units,)
        ):
            return None
        return add

    def _bias(self, op: Op, add: Op) -> str:
        """The add's constant as an int32 bias of scale input scale x weight scale (float layers: as is)."""
        b = next(self.src.tensors[n] for n in add.inputs if n != op.outputs[0])
        x, w = (self.tensors.get(n) or self.src.tensors[n] for n in op.inputs[:2])
        real = np.asarray(b.data, np.float64).ravel()
        if b.quant is not None:
            real = (real - b.quant.zero_point) * b.quant.scale
        name = f"{b.name}#bias"
        if x.quant is None or w.quant is None:
            self.tensors[name] = Tensor(name, real.shape, np.dtype(np.float32), None, real.astype(np.float32))
            return name
        codes = np.round(real / (float(x.quant.scale[0]) * np.asarray(w.quant.scale, np.float64)))
        codes = np.clip(codes, -(2**31), 2**31 - 1).astype(np.int32)
        self.tensors[name] = Tensor(name, codes.shape, codes.dtype, None, codes, role="bias")
        return name

    def _batch_matmul(self, op: Op, kind: str, attrs: dict) -> None:
        attrs.setdefault("adj_x", False)
        attrs.setdefault("adj_y", False)
        self.on_nchw(op, kind, attrs)

    # -- elementwise ops ------------------------------------------------------------------------------------
    def _elementwise(self, op: Op, kind: str, attrs: dict) -> None:
        """A broadcasting op; a lower-rank operand of a feature map is first made rank 4 (NCHW-aligned)."""
        attrs.setdefault("activation", None)
        wide = self.is_map(op.outputs[0])
        inputs = [
            self._broadcast_operand(n) if wide and len(self.src.tensors[n].shape) < 4 else self.nhwc(n)
            for n in op.inputs
            if n
        ]
        self.emit(kind, inputs, [self.nhwc(op.outputs[0])], attrs)

    def _broadcast_operand(self, name: str) -> str:
        t = self.src.tensors[name]
        shape4 = (1,) * (4 - len(t.shape)) + tuple(t.shape)
        new = f"{name}#4d"
        if new in self.tensors:
            return new
        if t.is_constant:
            data = np.ascontiguousarray(np.transpose(np.reshape(t.data, shape4), layout.TO_NHWC))
            self.tensors[new] = _int8(t, data.shape, data, t.quant, new)
            return new
        x = self.nhwc(name)
        self.new(f"{new}#nchw", x, shape4)
        self.reshape(x, f"{new}#nchw", f"{self.op.name}/expand")
        self.new(new, x, layout.permute(shape4, layout.TO_NHWC))
        self.transpose(f"{new}#nchw", new, layout.TO_NHWC, f"{self.op.name}/expand_to_nhwc")
        return new

    # -- axes
    # -------------------------------------------------------------------------------------------------
    def _qlinear_softmax(self, op: Op, kind: str, attrs: dict) -> None:
        """SOFTMAX reduces the last axis: the axes ONNX reduces are moved last (a view when they already
        are)."""
        rank = len(self.src.tensors[op.inputs[0]].shape)
        axis = int(attrs.get("axis", -1)) % rank
        logical = range(axis, rank) if attrs.get("opset", 13) < 13 else (axis,)
        axes = [layout.nhwc_axis(a) for a in logical] if self.is_map(op.inputs[0]) else list(logical)
        self._last_axes(op, sorted(axes), {"beta": 1.0})

    def _last_axes(self, op: Op, axes: list[int], attrs: dict) -> None:
        """SOFTMAX over stored ``axes``: moved last (transpose) and merged (reshape), then back."""
        x, y = self.nhwc(op.inputs[0]), self.nhwc(op.outputs[0])
        stored = self.tensors[x].shape
        identity = tuple(range(len(stored)))
        perm = tuple([a for a in identity if a not in axes] + axes)
        moved = layout.permute(stored, perm)
        kept = len(moved) - len(axes)
        flat = (*moved[:kept], math.prod(int(d or 1) for d in moved[kept:]))
        src = x
        if perm != identity:
            src = self.new(f"{x}#moved", x, moved)
            self.transpose(x, src, perm, f"{op.name}/axes_last")
        if flat != moved:
            self.reshape(src, self.new(f"{x}#flat", x, flat), f"{op.name}/merge_axes")
            src = f"{x}#flat"
        back = y if perm == identity else self.new(f"{y}#moved", y, moved)
        dst = back if flat == moved else self.new(f"{y}#flat", y, flat)
        self.emit("softmax", [src], [dst], attrs)
        if dst != back:
            self.reshape(dst, back, f"{op.name}/split_axes")
        if back != y:
            self.transpose(back, y, tuple(int(i) for i in np.argsort(perm)), f"{op.name}/axes_back")

    def _reduce_mean_f32(self, op: Op, kind: str, attrs: dict) -> None:
        """MEAN (float: on the CPU); a feature map losing the axis is reduced in NCHW."""
        axis, keep = int(attrs.pop("axis")), bool(attrs.pop("keepdims", 1))
        if self.is_map(op.inputs[0]) and keep:
            axis = layout.nhwc_axis(axis)
        elif self.is_map(op.inputs[0]):
            return self.on_nchw(op, "mean", {**attrs, "axes": (axis,), "keep_dims": False})
        x = self.nhwc(op.inputs[0])
        self.emit(
            "mean",
            [x, self.const(f"{op.name}/axes", (axis,))],
            [self.nhwc(op.outputs[0])],
            {**attrs, "axes": (axis,), "keep_dims": keep},
        )

    def _concat(self, op: Op, kind: str, attrs: dict) -> None:
        if self.is_map(op.outputs[0]):
            attrs["axis"] = layout.nhwc_axis(int(attrs["axis"]))
        self.same(op, kind, attrs)

    # -- shape ops ----------------------------------------------------------------------------------------
    def _flatten(self, op: Op, kind: str, attrs: dict) -> None:
        self._reshape_to(op, kind, attrs)

    def _reshape_to(self, op: Op, kind: str, attrs: dict) -> None:
        """A Flatten or Reshape keeps ONNX's element order: a feature map is read through an NCHW copy and
        written as one, transposed to NHWC (no transposes where they would move only axes of size 1)."""
        x, y = op.inputs[0], op.outputs[0]
        x = (
            self.nchw(x)
            if self.is_map(x) and layout.moves_data(self.src.tensors[x].shape, layout.TO_NHWC)
            else self.nhwc(x)
        )
        if not self.is_map(y) or not layout.moves_data(self.src.tensors[y].shape, layout.TO_NHWC):
            return self.reshape(x, self.nhwc(y))
        t = self.src.tensors[y]
        self.tensors[f"{y}#nchw"] = _int8(t, tuple(t.shape), None, t.quant, f"{y}#nchw")
        self.reshape(x, f"{y}#nchw")
        self.nchw_of[y] = f"{y}#nchw"
        self.transpose(f"{y}#nchw", self.nhwc(y), layout.TO_NHWC, f"{op.name}/to_nhwc")

    def _transpose(self, op: Op, kind: str, attrs: dict) -> None:
        """One transpose from the stored input to the stored output (none when the data is already in
        order)."""
        x, y = op.inputs[0], op.outputs[0]
        into = layout.TO_NCHW if self.is_map(x) else tuple(range(len(self.src.tensors[x].shape)))
        out = layout.TO_NHWC if self.is_map(y) else tuple(range(len(self.src.tensors[y].shape)))
        perm = tuple(into[int(attrs["perm"][out[i]])] for i in range(len(out)))
        x, y = self.nhwc(x), self.nhwc(y)
        if perm == tuple(range(len(perm))):
            return self.reshape(x, y)
        self.transpose(x, y, perm, op.name)
