"""From an hwsim graph to the op list Vela 5.2.0 schedules: its graph rewrites, execution order and packing.

What is reproduced, each from Vela's ``ethosu/regor/compiler`` sources:

* **rewrites** (``tflite_graph_optimiser.cpp``, ``graphir_optimiser.cpp``, ``softmax.cpp``): fully
  connected layers become 1x1 convolutions on a batch folded into a near-square HxW; MEAN becomes a
  depthwise convolution over the reduced axes and a multiply; SOFTMAX becomes Vela's integer chain (a max
  pool, subtract, exponent LUT, shifts, a reduce-sum and three Newton-Raphson steps: 28 ops for int8, 16
  for int16); SQUARED_DIFFERENCE becomes casts, multiplies and a subtract; RSQRT, LOGISTIC, TANH and
  HARD_SWISH become lookup tables; BATCH_MATMUL a MatMul; a PAD before a VALID convolution becomes its
  explicit padding (``graphir_optimiser.cpp``: ReplacePadByExplicitPadding); a binary op whose two inputs both
  broadcast first materialises one of them with an Add of zeros; reshapes are views; float ops stay on the
  CPU;
* **execution order** (``Graph::TraverseGraphFromEnd``): depth first from the outputs, last input first;
* **placement** (:mod:`.supported`): an operator of a ``.tflite`` file that Vela's supported-operator rules
  reject becomes a CPU op whose ``cpu_reason`` names the rule;
* **packing** (``scheduler_packing.cpp``): an activation (ReLU family, LUT) that alone consumes its
  producer's output is fused into it; small elementwise ops are reshaped to at least 16 deep. On U85 ops
  form op groups (``PackOperations``): activations and transposes fuse, elementwise ops chain.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import TYPE_CHECKING

from hwsim.errors import ConfigError
from hwsim.schedule.ethos_u.geometry import Kernel, Shape, as_nhwc, elements
from hwsim.schedule.ethos_u.ir import GroupMember, VConn, VOp, VTensor
from hwsim.schedule.ethos_u.supported import npu_ok
from hwsim.workload.graph import Graph, Op, StoredArray, flat_values
from hwsim.workload.nhwc import folded_pad_after

if TYPE_CHECKING:  # the U85's modules load only when a U85 is lowered
    from hwsim.schedule.ethos_u.op_group_u85 import GroupQuery

ACTIVATIONS = {"relu": "Relu", "relu6": "Relu6", "relu_n1_to_1": "ReluN1To1"}
LUT_OPS = {"rsqrt", "logistic", "tanh", "hard_swish", "gelu", "exp", "log", "elu"}
VIEW_OPS = {"reshape", "squeeze", "expand_dims", "flatten", "identity"}
CPU_FLOAT_OPS = {"dequantize", "neg", "quantize"}
ELEMENTWISE = {"add": "Add", "sub": "Sub", "mul": "Mul", "maximum": "Maximum", "minimum": "Minimum"}
SCALAR = (1, 1, 1, 1)
FUSED_NON_ACTIVATIONS = frozenset({"Transpose", "Reverse"})  # U85: fuse into the op before, as activations do


def _bits(graph: Graph, name: str) -> int:
    return graph.tensors[name].element_bits


class _Builder:
    """Lowers ops one by one, keeping one VTensor per model tensor (views share their source's tensor)."""

    def __init__(self, graph: Graph, family: str) -> None:
        self.graph = graph
        self.family = family
        self.tensors: dict[str, VTensor] = {}
        self.ops: list[VOp] = []
        self.view_of: dict[str, tuple[str, Shape]] = {}
        # padded tensor -> (source, pads)
        self.folded_pads: dict[str, tuple[str, tuple[int, int, int, int]]] = {}
        self.op: Op | None = None
        self.position = 0  # the model op being lowered: its position in the graph
        outputs = set(graph.outputs)
        for name in graph.inputs:
            self.tensor(name).is_graph_input = True
        for name in outputs:
            self.tensor(name).is_graph_output = True

    # -- tensors ------------------------------------------------------------------------------------------
    def tensor(self, name: str) -> VTensor:
        """The VTensor of model tensor ``name`` (views resolve to the tensor they view)."""
        if name in self.view_of:
            name = self.view_of[name][0]
        if name not in self.tensors:
            t = self.graph.tensors[name]
            data = t.stored_data  # a file's constant stays unread: encodings are found by its digest
            if data is None and t.role == "weight":
                data = StandInWeights(tuple(int(d or 1) for d in t.shape), t.element_bits)
            self.tensors[name] = VTensor(name, as_nhwc(t.shape), _bits(self.graph, name), data)
        return self.tensors[name]

    def conn(self, name: str, shape: Shape | None = None) -> VConn:
        """An operand reading/writing model tensor ``name`` as ``shape`` (its own NHWC shape by default)."""
        t = self.tensor(name)
        if shape is None:
            shape = as_nhwc(self.graph.tensors[name].shape)
        return VConn(t, shape)

    def new(self, name: str, shape: Shape, bits: int, data=None) -> VConn:
        """A tensor Vela's rewrites create (intermediate results and constants)."""
        t = VTensor(f"{self.op.name}/{name}", shape, bits, data)
        return VConn(t, shape)

    def const(self, name: str, shape: Shape = SCALAR, bits: int = 32) -> VConn:
        """A constant Vela creates (a shift, a multiplier, a zero tensor): its size is what matters."""
        n = elements(shape)
        return self.new(name, shape, bits, StoredArray(bytes(8 * n), "int64", (n,)))

    # -- ops ----------------------------------------------------------------------------------------------
    def emit(
        self,
        op_type: str,
        ifm: VConn,
        ofm: VConn,
        ifm2: VConn | None = None,
        pre_activation_bits: int = 0,
        **kw,
    ) -> VOp:
        """Add one op reading ``ifm`` (and ``ifm2``) and writing ``ofm``.

        On U85 an ``activation`` is emitted as an op of its own, reading a ``pre_activation_bits`` (default:
        the OFM's) intermediate, as Vela unfuses it (``TfLiteReader::UnFuseActivation``); packing decides
        whether it fuses back.
        """
        if (
            ifm2 is not None
            and self.family != "u85"
            and op_type in ("Add", "Sub", "Mul", "Maximum", "Minimum", "Asr", "SHL")
        ):
            ifm, ifm2 = self._materialise_broadcast(op_type, ifm, ifm2, ofm)
        if self.family == "u85" and kw.get("activation"):
            activation, uses_lut = kw.pop("activation"), kw.pop("uses_lut", False)
            before = self.new(f"{op_type}_act", ofm.shape, pre_activation_bits or ofm.bits)
            op = self.emit(op_type, ifm, before, ifm2, **kw)
            self.emit(activation, before, ofm, uses_lut=uses_lut)
            return op
        op = VOp(op_type, ifm, ofm, ifm2, source=self.position, source_type=self.op.kind, **kw)
        self.ops.append(op)
        return op

    def emit_final(self, op_type: str, ifm: VConn, ofm: VConn, ifm2: VConn, model_rank: int) -> VOp:
        """The last op of a rewrite, writing the model's own output tensor from a 4-D intermediate.

        When the model's tensor has fewer than four axes, Vela compares the intermediate's 4-D shape with
        the output's shorter one, sees both inputs broadcast, and materialises the first with an Add.
        """
        if model_rank < 4 and ifm2.shape != ofm.shape and self.family != "u85":  # the U85 broadcasts both
            zeros = self.const("const_zero", ofm.shape, ifm.bits)
            wide = self.new(f"{op_type}_broadcasted", ofm.shape, ifm.bits)
            self.ops.append(VOp("Add", zeros, wide, ifm, source=self.position, source_type=self.op.kind))
            ifm = wide
        op = VOp(op_type, ifm, ofm, ifm2, source=self.position, source_type=self.op.kind)
        self.ops.append(op)
        return op

    def _materialise_broadcast(self, op_type, ifm, ifm2, ofm):
        """When both inputs broadcast, Vela first writes ifm0 at the output shape with an Add of zeros."""
        if ifm.shape != ofm.shape and ifm2.shape != ofm.shape:
            zeros = self.const("const_zero", ofm.shape, ifm.bits)
            wide = self.new(f"{op_type}_broadcasted", ofm.shape, ifm.bits)
            self.ops.append(VOp("Add", zeros, wide, ifm, source=self.position, source_type=self.op.kind))
            ifm = wide
        return ifm, ifm2


#: Stand-in codes repeat every this many output channels. A depth slice's stream then depends only on where
#: it starts modulo the period (and its depth and core), and a slice deeper than a multiple of the period
#: that its OFM blocks tile sends that multiple's stream over and over: the encoder runs on one period, so
#: a 1B-parameter model's LM head (262 M weights) costs seconds, not minutes. Within a stream the codes are
#: as random as before, and the MLW codec (palette, zero runs, Golomb-Rice slices) has no way to exploit a
#: repeat across channels, so the stand-ins compress as a non-repeating draw does.
STAND_IN_PERIOD = 64


@dataclass(frozen=True)
class StandInWeights:
    """Weights for a shapes-only workload: seeded uniform codes over the full range (they compress least).

    They are named by how they are made (shape, bits, period), so an encoding is looked up in the weight
    caches without making or hashing them, and made only when it must be computed: a 1B-parameter language
    model's stand-ins are gigabytes, and their hash alone took minutes. Tensors of one shape get the same
    codes (a language model's 16 decoder layers are encoded once), and output channels repeat every
    ``period`` (:data:`STAND_IN_PERIOD`), which the encoder uses to encode each distinct stream once.
    """

    shape: tuple[int, ...]
    bits: int
    period: int = STAND_IN_PERIOD

    @property
    def digest(self) -> bytes:
        """What the values depend on."""
        return repr(("stand-in", self.shape, self.bits, self.period)).encode()

    def values(self):
        """The codes, in the narrowest integer type that holds them."""
        return _stand_in_values(self.shape, self.bits, self.period)


@lru_cache(maxsize=2)  # an op's weights are encoded several times in a row (formats, slices, buffering)
def _stand_in_values(shape: tuple[int, ...], bits: int, period: int):
    import numpy as np

    # the output channels: the last axis of depthwise weights ([1, H, W, C]), else the first
    axis = 3 if len(shape) == 4 and shape[0] == 1 else 0
    drawn = list(shape)
    drawn[axis] = min(shape[axis], period)
    rng = np.random.default_rng(zlib.crc32(repr((shape, bits)).encode()))
    high = 1 << (bits - 1)
    codes = rng.integers(-high, high, size=drawn, dtype=np.int64)
    codes = codes.astype(np.int8 if bits <= 8 else np.int16 if bits <= 16 else np.int32)
    if drawn[axis] < shape[axis]:
        reps = [1] * len(shape)
        reps[axis] = -(-shape[axis] // period)
        codes = np.tile(codes, reps)[tuple(slice(0, n) for n in shape)]
    out = np.ascontiguousarray(codes)
    out.flags.writeable = False
    return out


def _padding(graph: Graph, op: Op, ifm: Shape, kernel_hw, stride, dilation) -> tuple[int, int, int, int]:
    """Explicit (top, left, bottom, right) padding of a SAME/VALID op, or of one with explicit padding (the
    (top, bottom, left, right) of an ONNX model's conversion: Vela folds the converter's PAD into it)."""
    padding = op.attrs.get("padding")
    if isinstance(padding, (tuple, list)):
        top, bottom, left, right = (int(p) for p in padding)
        return (top, left, bottom, right)
    if padding != "same":
        return (0, 0, 0, 0)
    pads = []
    for size, k, s, d in zip(ifm[1:3], kernel_hw, stride, dilation):
        out = -(-size // s)
        total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
        pads.append((total // 2, total - total // 2))
    return (pads[0][0], pads[1][0], pads[0][1], pads[1][1])


def _kernel(graph: Graph, op: Op, ifm: Shape) -> Kernel:
    kh, kw = op.attrs.get("kernel", (1, 1))
    sy, sx = op.attrs.get("stride", (1, 1))
    dy, dx = op.attrs.get("dilation", (1, 1))
    top, left, bottom, right = _padding(graph, op, ifm, (kh, kw), (sy, sx), (dy, dx))
    return Kernel(int(kw), int(kh), int(sx), int(sy), int(dx), int(dy), top, left, bottom, right)


def _fc_shapes(ifm: Shape, depth: int, out_depth: int) -> tuple[Shape, Shape]:
    """Vela folds a fully connected layer's batch into a near-square H x W (RewriteFullyConnected)."""
    n = elements(ifm) // depth
    if n <= 1:
        return (1, 1, 1, depth), (1, 1, 1, out_depth)
    w = max(n // 16, int(math.ceil(math.sqrt(n))))
    while n % w:
        w += 1
    h = n // w
    return (1, h, w, depth), (1, h, w, out_depth)


def _to_hwc(shape: tuple[int | None, ...]) -> Shape:
    """Vela's ReshapeToHWC: all leading axes folded into H, then W and C."""
    dims = [int(d or 1) for d in shape] or [1]
    while len(dims) < 3:
        dims.insert(0, 1)
    return (1, math.prod(dims[:-2]), dims[-2], dims[-1])


def _lower_op(b: _Builder, op: Op) -> None:
    g = b.graph
    kind = op.kind
    reason = op.attrs.get("cpu_reason")  # a float op of an ONNX model's conversion (hwsim.workload.as_tflite)
    if reason is None and g.format == "tflite":  # Vela reads .tflite files only
        reason = npu_ok(g, op, b.family)
    if reason is not None:
        _cpu_op(b, op, reason)
        return
    act = ACTIVATIONS.get(op.attrs.get("activation") or "")
    if kind in VIEW_OPS:
        if _view_needs_copy(b, op):
            b.emit("MemoryCopy", b.conn(op.inputs[0]), b.conn(op.outputs[0]))
            return
        src = op.inputs[0]
        base = b.view_of.get(src, (src, None))[0]
        b.view_of[op.outputs[0]] = (base, as_nhwc(g.tensors[op.outputs[0]].shape))
        if op.outputs[0] in g.outputs:
            b.tensor(base).is_graph_output = True
        return
    if kind == "pad" and _fold_pad(b, op):
        return
    if kind in ("conv2d", "depthwise_conv2d"):
        src, pads = b.folded_pads.pop(op.inputs[0], (op.inputs[0], None))
        ifm = b.conn(src)
        kernel = _kernel(g, op, ifm.shape)
        if pads is not None:
            kernel = replace(kernel, pad_top=pads[0], pad_left=pads[1], pad_bottom=pads[2], pad_right=pads[3])
        w = g.tensors[op.inputs[1]]
        vtype = "Conv2D" if kind == "conv2d" else "DepthwiseConv2D"
        b.emit(
            vtype,
            ifm,
            b.conn(op.outputs[0]),
            kernel=kernel,
            weights=b.tensor(op.inputs[1]),
            weight_zero_points=None if w.quant is None else tuple(w.quant.zero_point_values),
            has_scales=True,
            activation=act,
        )
        return
    if kind == "fully_connected":
        w = g.tensors[op.inputs[1]]
        depth, out_depth = int(w.shape[-1]), int(w.shape[0])
        ifm_shape, ofm_shape = _fc_shapes(as_nhwc(g.tensors[op.inputs[0]].shape), depth, out_depth)
        b.emit(
            "FullyConnected",
            b.conn(op.inputs[0], ifm_shape),
            b.conn(op.outputs[0], ofm_shape),
            weights=b.tensor(op.inputs[1]),
            weight_zero_points=None if w.quant is None else tuple(w.quant.zero_point_values),
            has_scales=True,
            activation=act,
        )
        return
    if kind in ("avg_pool2d", "max_pool2d"):
        ifm = b.conn(op.inputs[0])
        k = _kernel(g, op, ifm.shape)
        if (k.w, k.h) == (k.stride_x, k.stride_y) == (
            ifm.shape[2],
            ifm.shape[1],
        ) and k.pad_top == k.pad_left == 0:
            k = Kernel(k.w, k.h)  # a pool over the whole map: Vela sets its stride to 1 (FixupPoolStrides)
        b.emit(
            "AvgPool" if kind == "avg_pool2d" else "MaxPool",
            ifm,
            b.conn(op.outputs[0]),
            kernel=k,
            activation=act,
        )
        return
    if kind in ELEMENTWISE:
        b.emit(
            ELEMENTWISE[kind],
            b.conn(op.inputs[0]),
            b.conn(op.outputs[0]),
            b.conn(op.inputs[1]),
            activation=act,
        )
        return
    if kind == "mean":
        _lower_mean(b, op)
        return
    if kind == "softmax":
        _lower_softmax(b, op)
        return
    if kind in LUT_OPS:
        b.emit("LUT", b.conn(op.inputs[0]), b.conn(op.outputs[0]), uses_lut=True)
        return
    if kind in ACTIVATIONS:
        b.emit(ACTIVATIONS[kind], b.conn(op.inputs[0]), b.conn(op.outputs[0]))
        return
    if kind == "squared_difference":
        _lower_squared_difference(b, op)
        return
    if kind == "batch_matmul":
        _lower_matmul(b, op)
        return
    if kind == "transpose":
        perm = tuple(int(a) for a in op.attrs["perm"])
        rank = len(g.tensors[op.inputs[0]].shape)
        perm4 = tuple(range(4 - rank)) + tuple(a + 4 - rank for a in perm)
        b.emit("Transpose", b.conn(op.inputs[0]), b.conn(op.outputs[0]), perm=perm4)
        return
    if kind in ("quantize",) and g.tensors[op.inputs[0]].dtype_name.startswith(("int", "uint")):
        b.emit("MemoryCopy", b.conn(op.inputs[0]), b.conn(op.outputs[0]))
        return
    _cpu_op(b, op, f"hwsim does not lower {kind} for the NPU yet")


def _fold_pad(b: _Builder, op: Op) -> bool:
    """Vela's ReplacePadByExplicitPadding: a zero PAD of H and W read only by a VALID convolution becomes the
    convolution's explicit padding (the bottom and right trimmed to what the stride reaches), when each pad
    is below the dilated kernel size; the PAD then disappears. True when ``op`` is folded so."""
    g = b.graph
    out = op.outputs[0]
    readers = [o for o in (*g.ops, *g.folded) if out in o.inputs]
    params = g.tensors[op.inputs[1]] if len(op.inputs) > 1 and op.inputs[1] else None
    if (
        len(readers) != 1
        or out in g.outputs
        or readers[0].kind not in ("conv2d", "depthwise_conv2d")
        or readers[0].inputs[0] != out
        or readers[0].attrs.get("padding") != "valid"
        or len([n for n in op.inputs if n]) != 2
        or params is None
        or not params.is_constant
    ):
        return False
    x, y = g.tensors[op.inputs[0]], g.tensors[out]
    same_quant = (x.quant is None) == (y.quant is None) and (
        x.quant is None
        or (
            x.quant.scale_values == y.quant.scale_values
            and x.quant.zero_point_values == y.quant.zero_point_values
        )
    )
    flat = [int(v) for v in flat_values(params.stored_data)]
    pads = [flat[i : i + 2] for i in range(0, len(flat), 2)]
    if (
        x.dtype_name != y.dtype_name
        or not same_quant
        or len(x.shape) != 4
        or len(pads) != 4
        or any(pads[0])
        or any(pads[3])
    ):
        return False
    conv = readers[0]
    (kh, kw), (sy, sx) = conv.attrs["kernel"], conv.attrs.get("stride", (1, 1))
    dy, dx = conv.attrs.get("dilation", (1, 1))
    kh, kw = (kh - 1) * dy + 1, (kw - 1) * dx + 1
    (top, bottom), (left, right) = (int(p) for p in pads[1]), (int(p) for p in pads[2])
    bottom = folded_pad_after(int(x.shape[1] or 1), sy, kh, top, bottom)
    right = folded_pad_after(int(x.shape[2] or 1), sx, kw, left, right)
    if max(top, bottom) >= kh or max(left, right) >= kw:
        return False
    b.folded_pads[out] = (op.inputs[0], (top, left, bottom, right))
    return True


def _view_needs_copy(b: _Builder, op: Op) -> bool:
    """Vela's RemoveReshape keeps a reshape as a copy when both its ends must stay where they are (graph
    inputs, outputs, constants or CPU ops on each side), or when its input has other readers and a different
    storage shape. The shape arithmetic folded at import counts as readers: Vela still sees it then."""
    g = b.graph
    src, dst = op.inputs[0], op.outputs[0]
    readers = [o for o in (*g.ops, *g.folded) if src in o.inputs]
    if len(readers) > 1 and tuple(g.tensors[src].shape) != tuple(g.tensors[dst].shape):
        return True

    def on_cpu(ops) -> bool:
        return any(
            o.attrs.get("cpu_reason") or g.format == "tflite" and npu_ok(g, o, b.family) is not None
            for o in ops
        )

    ifm_pinned = (
        src in g.inputs
        or src in g.outputs
        or g.tensors[src].is_constant
        or on_cpu(o for o in g.ops if src in o.outputs)
    )
    ofm_pinned = dst in g.outputs or on_cpu(o for o in g.ops if o is not op and dst in o.inputs)
    return ifm_pinned and ofm_pinned


def _cpu_op(b: _Builder, op: Op, reason: str) -> None:
    """The op as a CPU op: Vela reports it as one and does not time it."""
    g = b.graph
    ins = [n for n in op.inputs if n and not g.tensors[n].is_constant] or [n for n in op.inputs if n]
    b.emit("Passthrough", b.conn(ins[0]), b.conn(op.outputs[0]), npu=False, cpu_reason=reason)


def _lower_mean(b: _Builder, op: Op) -> None:
    """MEAN as Vela's ConvertMeanOps: a depthwise convolution summing the reduced axes, then a multiply."""
    g = b.graph
    in_shape = tuple(int(d or 1) for d in g.tensors[op.inputs[0]].shape)
    axes = {a % len(in_shape) for a in op.attrs["axes"]}
    ifm4 = as_nhwc(in_shape)
    reduce4 = [False] * 4
    for a in axes:
        reduce4[a + 4 - len(in_shape)] = True
    if reduce4[3] and ifm4[3] > 1:  # a mean over depth moves the channel axis into H or W
        drop = 2 if ifm4[2] == 1 else 1
        ifm4 = tuple(d for i, d in enumerate(ifm4) if i != drop) + (1,)
        reduce4 = [r for i, r in enumerate(reduce4) if i != drop] + [False]
    h = ifm4[1] if reduce4[1] else 1
    w = ifm4[2] if reduce4[2] else 1
    if h > 64 and h * w <= 4096 and reduce4[1] and reduce4[2]:
        ifm4 = (ifm4[0], 1, h * w, ifm4[3])
        w, h = h * w, 1
    per_conv = min(min(4096 // w, h), 64)
    n_ops = -(-h // per_conv)
    out4 = (ifm4[0], 1 if reduce4[1] else ifm4[1], 1 if reduce4[2] else ifm4[2], ifm4[3])
    ifm = b.conn(op.inputs[0], ifm4)
    acc = None
    for i in range(n_ops):
        kh = h % per_conv if i == n_ops - 1 and h % per_conv else per_conv
        read = (ifm4[0], kh if reduce4[1] else ifm4[1], w if reduce4[2] else ifm4[2], ifm4[3])
        part = b.new(f"mean_{i}", out4, 32)
        ones = StoredArray(b"\x01" * (kh * w * ifm4[3]), "int8", (1, kh, w, ifm4[3]))
        b.emit(
            "DepthwiseConv2D",
            VConn(ifm.tensor, read),
            part,
            kernel=Kernel(w, kh),
            has_scales=True,
            weights=VTensor(f"{op.name}/mean_weights_{kh}", (1, kh, w, ifm4[3]), 8, ones),
            weight_zero_points=(0,),
        )
        if acc is not None:
            total = b.new(f"mean_acc_{i}", out4, 32)
            b.emit("Add", acc, total, part)
            part = total
        acc = part
    b.emit("Mul", acc, b.conn(op.outputs[0], out4), b.const("mean_scale"))


def _lower_softmax(b: _Builder, op: Op) -> None:
    """SOFTMAX as Vela's integer chain (softmax.cpp): int8 in 28 ops with its LUT, int16 in 16."""
    g = b.graph
    x_shape = _to_hwc(g.tensors[op.inputs[0]].shape)
    r_shape = (*x_shape[:3], 1)
    x = b.conn(op.inputs[0], x_shape)
    out = b.conn(op.outputs[0], x_shape)
    in_bits, out_bits = x.bits, out.bits
    n, h, w, c = x_shape
    if b.family == "u85" and h * w > 1 and _transpose_depth(x_shape) >= 16:
        # the U85 transposes the depth it reduces into H and max-pools down the columns
        # (CreateTransposeMaxpool)
        perm = (0, 3, 1, 2) if w > 1 else (0, 3, 2, 1)
        t_shape = tuple(x_shape[a] for a in perm)
        moved = b.new("transposed", t_shape, in_bits)
        b.emit("Transpose", x, moved, perm=perm)
        mx = b.new("max", (1, 1, t_shape[2], t_shape[3]), in_bits)
        b.emit("MaxPool", moved, mx, kernel=Kernel(1, t_shape[1]))
    else:
        pool_in = VConn(x.tensor, (1, h * w, c, 1))
        mx = b.new("max", (1, h * w, 1, 1), in_bits)
        b.emit("MaxPool", pool_in, mx, kernel=Kernel(c, 1))
    mx = VConn(mx.tensor, r_shape)

    def r(name: str) -> VConn:
        return b.new(name, r_shape, 32)

    def s(name: str) -> VConn:
        return b.const(name)

    if in_bits == 8:
        exp = b.new("exp", x_shape, 32)
        b.emit("Sub", x, exp, mx, activation="LUT", uses_lut=True, pre_activation_bits=in_bits)
        rescaled = b.new("rescaled_exp", x_shape, 32)
        b.emit("Asr", exp, rescaled, s("right_shift12"))
        total = r("sum_of_exp")
        b.emit("ReduceSum", rescaled, total, kernel=Kernel())
        clz = r("headroom_plus_one")
        b.emit("CLZ", total, clz)
        right_shift = r("right_shift")
        b.emit("Sub", s("headroom_offset"), right_shift, clz)
        headroom = r("headroom")
        b.emit("Sub", clz, headroom, s("one"))
        half = r("half_denominator")
        b.emit("SHL", total, half, headroom)
        rescaled_d = r("rescaled")
        b.emit("Mul", half, rescaled_d, s("neg_32_over_17"))
        nr_x = r("nr_x")
        b.emit("Add", rescaled_d, nr_x, s("const_48_over_17"))
        for i in range(3):
            t1, t2, t3, t4, t5 = (r(f"nr{i}_{k}") for k in range(5))
            b.emit("Mul", nr_x, t1, half)
            b.emit("Sub", s("F2_one"), t2, t1)
            b.emit("Mul", nr_x, t3, t2)
            b.emit("Mul", t3, t4, s("four"))
            b.emit("Add", nr_x, t5, t4)
            nr_x = t5
        scaled = b.new("scaled_exp", x_shape, 32)
        b.emit("Mul", exp, scaled, nr_x)
    else:
        diff = b.new("sub", x_shape, 32)
        b.emit("Sub", x, diff, mx)
        mul = b.new("mul", x_shape, 32)
        b.emit("Mul", diff, mul, s("mul2_scale"))
        exp = b.new("exp", x_shape, 16)
        b.emit("Add", mul, exp, s("add3_const"), activation="LUT", uses_lut=True)
        total = r("sum_of_exp")
        b.emit("ReduceSum", exp, total, kernel=Kernel())
        clz = r("headroom_plus_one")
        b.emit("CLZ", total, clz)
        shift = r("reciprocal_right_shift")
        b.emit("Sub", s("const_31"), shift, clz)
        one = r("constant_one")
        b.emit("SHL", s("one"), one, shift)
        minus_one = r("sum_minus_one")
        b.emit("Sub", total, minus_one, one)
        shifted = r("shifted_sum_minus_one")
        b.emit("SHL", minus_one, shifted, clz)
        shifted16 = r("shifted_sum_minus_one_16")
        b.emit("Asr", shifted, shifted16, s("shift_const"))
        scale = b.new("reciprocal_scale", r_shape, 16)
        b.emit("Sub", shifted16, scale, s("sub11_const"), activation="LUT", uses_lut=True)
        scaled = b.new("scaled_exp", x_shape, 32)
        b.emit("Mul", exp, scaled, scale)
        right_shift = shift
    b.emit_final("Asr", scaled, out, right_shift, 3)  # Vela reshapes a softmax's output to 3-D (HWC)
    del out_bits


def _transpose_depth(x_shape: Shape) -> int:
    """Depth after the softmax transpose: W of the HWC map when it is wider than 1, else H."""
    return x_shape[2] if x_shape[2] > 1 else x_shape[1]


def _lower_squared_difference(b: _Builder, op: Op) -> None:
    """SQUARED_DIFFERENCE as Vela's RewriteSquaredDifference: cast, scale, subtract, square, rescale."""
    a, c = b.conn(op.inputs[0]), b.conn(op.inputs[1])
    out = b.conn(op.outputs[0])
    a32, c32 = b.new("cast0", a.shape, 32), b.new("cast1", c.shape, 32)
    b.emit("MemoryCopy", a, a32)
    a_s = b.new("scaled0", a.shape, 32)
    b.emit("Mul", a32, a_s, b.const("input1_multiplier"))
    b.emit("MemoryCopy", c, c32)
    c_s = b.new("scaled1", c.shape, 32)
    b.emit("Mul", c32, c_s, b.const("input2_multiplier"))
    diff = b.new("raw_diff", out.shape, 32)
    b.emit("Sub", a_s, diff, c_s)
    sq = b.new("squared", out.shape, 32)
    b.emit("Mul", diff, sq, diff)
    b.emit_final("Mul", sq, out, b.const("output_multiplier"), len(b.graph.tensors[op.outputs[0]].shape))


def _lower_matmul(b: _Builder, op: Op) -> None:
    """BATCH_MATMUL as Vela's MatMul, whose second operand it reads transposed (K last).

    Vela inserts that transpose (swapping the last two axes) and merges it with a transpose that produced
    the operand, as its RewriteBatchMatMul and MergeTransposes do.
    """
    g = b.graph
    x = b.conn(op.inputs[0], as_nhwc(g.tensors[op.inputs[0]].shape))
    y = b.conn(op.inputs[1], as_nhwc(g.tensors[op.inputs[1]].shape))
    if op.attrs.get("adj_x"):
        x = _transposed(b, x, (0, 1, 3, 2))
    if not op.attrs.get("adj_y"):
        y = _transposed(b, y, (0, 1, 3, 2))
    out = b.conn(op.outputs[0], as_nhwc(g.tensors[op.outputs[0]].shape))
    if b.family == "u85":  # one MatMul per batch, on slices of the operands (Vela's RewriteMatmul)
        for _ in range(out.shape[1]):
            b.emit(
                "MatMul",
                VConn(x.tensor, (1, 1, *x.shape[2:])),
                VConn(out.tensor, (1, 1, *out.shape[2:])),
                VConn(y.tensor, (1, 1, *y.shape[2:])),
            )
        return
    b.emit("MatMul", x, out, y)


def _transposed(b: _Builder, x: VConn, perm: tuple[int, ...]) -> VConn:
    """``x`` permuted: folded into the transpose that produced it when there is one, else a new Transpose."""
    producer = next((o for o in reversed(b.ops) if o.ofm.tensor is x.tensor), None)
    shape = tuple(x.shape[a] for a in perm)
    if producer is not None and producer.type == "Transpose" and producer.perm is not None:
        producer.perm = tuple(producer.perm[a] for a in perm)
        producer.ofm = VConn(producer.ofm.tensor, shape)
        producer.ofm.tensor.shape = shape
        if producer.perm == (0, 1, 2, 3):
            b.ops.remove(producer)
            return producer.ifm
        return producer.ofm
    out = b.new("transposed", shape, x.bits)
    b.emit("Transpose", x, out, perm=perm)
    return out


def lower(graph: Graph, family: str = "u55") -> list[VOp]:
    """The graph's ops as Vela schedules them for ``family`` ("u55", "u65" or "u85"): placed, rewritten, in
    Vela's execution order, activations fused."""
    b = _Builder(graph, family)
    for position, op in enumerate(graph.ops):
        b.op, b.position = op, position
        _lower_op(b, op)
    for op in b.ops:
        for conn in op.ifms:
            conn.tensor.consumers.append(op)
        op.ofm.tensor.producers.append(op)
    ordered = execution_order(b.ops, [b.tensor(n) for n in graph.outputs])
    return pack(ordered, family)


def execution_order(ops: list[VOp], outputs: list[VTensor]) -> list[VOp]:
    """Vela's TraverseGraphFromEnd: depth first from the graph outputs, inputs pushed in order (last
    first)."""
    order: list[VOp] = []
    visited: set[int] = set()
    stack: list[tuple[bool, VOp]] = [(False, p) for t in outputs for p in t.producers]
    while stack:
        done, op = stack.pop()
        if done:
            order.append(op)
        elif id(op) not in visited:
            visited.add(id(op))
            stack.append((True, op))
            for conn in op.ifms:
                for p in conn.tensor.producers:
                    if id(p) not in visited:
                        stack.append((False, p))
    return order


def pack(ops: list[VOp], family: str = "u55") -> list[VOp]:
    """Fuse each activation into the op before it when it alone reads that op's output (Vela's packing).

    On U85 ops form op groups instead (:func:`pack_u85`).
    """
    if family == "u85":
        return pack_u85(ops)
    out: list[VOp] = []
    for op in ops:
        prev = out[-1] if out else None
        if (
            prev is not None
            and op.npu
            and prev.npu
            and op.type in ("Relu", "Relu6", "ReluN1To1", "LUT")
            and prev.activation is None
            and op.ifm.tensor is prev.ofm.tensor
            and len(prev.ofm.tensor.consumers) == 1
            and prev.type not in ("Transpose", "MatMul")
        ):
            prev.activation = op.type
            prev.uses_lut = prev.uses_lut or op.uses_lut
            fused = prev.ofm.tensor
            fused.producers.remove(prev)
            prev.ofm = VConn(op.ofm.tensor, prev.ofm.shape)
            op.ofm.tensor.producers = [prev if p is op else p for p in op.ofm.tensor.producers]
            continue
        out.append(op)
    if family != "u85":  # the U85 transposes in any order in one pass
        out = [part for op in out for part in _native_transposes(op)]
    for op in out:
        _increase_depth(op)
    for i, op in enumerate(out):
        op.index = i
    return out


def pack_u85(ops: list[VOp]) -> list[VOp]:
    """U85 op groups (``SchedulerPacking::PackOperations``): each NPU op is the primary of a group that takes
    in the ops after it for as long as they can join.

    Shallow elementwise ops are first reshaped deeper, as Vela converts them before packing. A joining
    activation or transpose fuses into the op before it, which then writes the joining op's output; a
    joining elementwise op is chained (it stays in the list, ``parent`` set, its operands reshaped to the
    primary's output). Chained ops share their primary's ``index``.
    """
    for op in ops:
        _increase_depth(op)
    out: list[VOp] = []
    i = 0
    while i < len(ops):
        primary = ops[i]
        primary.index = len(out)
        out.append(primary)
        i = _grow_group(primary, ops, i + 1) if primary.npu else i + 1
    return [op for primary in out for op in (primary, *primary.chained)]


def _grow_group(primary: VOp, ops: list[VOp], start: int) -> int:
    """Add the ops from ``start`` on to ``primary``'s group while they can join; the index of the first
    that cannot."""
    from hwsim.schedule.ethos_u.blocks_u85 import ACTIVATION_TYPES
    from hwsim.schedule.ethos_u.op_group_u85 import OpGroupU85

    group = OpGroupU85(_group_query(primary))
    members = [GroupMember(primary.type, primary, primary.ifm, primary.ofm, primary.ifm2, primary.perm)]
    key, last, i = 0, primary, start
    while i < len(ops):
        nxt = ops[i]
        if not _can_pack(primary, members[-1], nxt):
            break
        key = group.add(_group_query(nxt), [key])
        if key is None:
            break
        if nxt.type in ACTIVATION_TYPES or nxt.type in FUSED_NON_ACTIVATIONS:
            members.append(_fuse(primary, last, nxt))
        else:
            _chain(primary, nxt)
            members.append(GroupMember(nxt.type, nxt, nxt.ifm, nxt.ofm, nxt.ifm2))
            last = nxt
        i += 1
    if len(members) > 1:
        primary.group = members
    return i


def _can_pack(primary: VOp, prev: GroupMember, nxt: VOp) -> bool:
    """The scheduler's conditions for ``nxt`` to join the group after ``prev``
    (``SchedulerPacking::CanPack``).

    ``nxt`` must read ``prev``'s output, which nothing else reads or writes, without a slice or a reshape
    a convolution, a strided or dilated ``prev``, or a reordering ``nxt`` depends on; neither the primary's
    nor ``prev``'s output may be a graph output. (Vela also wants activations to have unit scaling, which
    the lowered ops do not record.)
    """
    written = prev.ofm
    reads = nxt.ifm2 if nxt.ifm2 is not None and nxt.ifm2.tensor is written.tensor else nxt.ifm
    if reads.tensor is not written.tensor or not nxt.npu:
        return False
    if len(written.tensor.producers) != 1 or len(written.tensor.consumers) != 1:
        return False
    if _is_slice(written) or _is_slice(reads):
        return False
    if written.shape != reads.shape:
        prev_kernel = prev.op.kernel if not prev.fused else Kernel()
        shape_dependent = (
            primary.type in ("Conv2D", "DepthwiseConv2D")
            or (prev_kernel.dilation_x, prev_kernel.dilation_y) != (1, 1)
            or (prev_kernel.stride_x, prev_kernel.stride_y) != (1, 1)
        )
        if shape_dependent or _is_slice(nxt.ofm) or transpose_type(nxt.perm) != "None":
            return False
    return not (primary.ofm.tensor.is_graph_output or written.tensor.is_graph_output)


def _fuse(primary: VOp, last: VOp, nxt: VOp) -> GroupMember:
    """``nxt`` (an activation or a transpose) fused into ``last``: ``last`` now writes ``nxt``'s output."""
    before = last.ofm
    shape = nxt.ofm.shape if nxt.type == "Transpose" else before.shape
    before.tensor.producers.remove(last)
    after = nxt.ofm.tensor
    after.producers = [last if p is nxt else p for p in after.producers]
    last.ofm = VConn(after, shape)
    if nxt.type == "Transpose":
        last.perm = nxt.perm
    else:
        last.activation = nxt.type
        primary.uses_lut = primary.uses_lut or nxt.uses_lut
    return GroupMember(
        nxt.type, last, VConn(before.tensor, before.shape), VConn(after, shape), perm=nxt.perm, fused=True
    )


def _chain(primary: VOp, nxt: VOp) -> None:
    """``nxt`` chained into ``primary``'s group: its full-size operands take the primary's output shape."""
    nxt.parent = primary
    nxt.index = primary.index
    shape = primary.ofm.shape
    if nxt.ifm2 is None:
        nxt.ifm = VConn(nxt.ifm.tensor, shape)
    else:
        size = elements(nxt.ofm.shape)
        full = [elements(c.shape) == size for c in (nxt.ifm, nxt.ifm2)]
        scalar = [elements(c.shape) == 1 for c in (nxt.ifm, nxt.ifm2)]
        if scalar[0] and full[1]:
            nxt.ifm2 = VConn(nxt.ifm2.tensor, shape)
        elif full[0] and (scalar[1] or full[1]):
            nxt.ifm = VConn(nxt.ifm.tensor, shape)
            if full[1]:
                nxt.ifm2 = VConn(nxt.ifm2.tensor, shape)
        else:
            return  # a broadcast input: the op keeps its shapes
    nxt.ofm = VConn(nxt.ofm.tensor, shape)


def _is_slice(conn: VConn) -> bool:
    """An operand that reads or writes only part of its tensor."""
    return elements(conn.shape) != elements(conn.tensor.shape)


def _group_query(op: VOp) -> GroupQuery:
    """The op as an op group sees it (``CreateOpGroupQuery``)."""
    from hwsim.schedule.ethos_u.op_group_u85 import GroupQuery, TensorInfo

    def info(conn: VConn, transpose: str = "None") -> TensorInfo:
        t = conn.tensor
        return TensorInfo(
            id(t), f"int{t.bits}", conn.shape, transpose, is_const=t.is_constant, is_sliced=_is_slice(conn)
        )

    return GroupQuery(op.type, tuple(info(c) for c in op.ifms), info(op.ofm, transpose_type(op.perm)))


def transpose_type(perm: tuple[int, ...] | None) -> str:
    """Vela's TransposeType name of an NHWC permutation: the source axis of each output axis ("NWCH" ...)."""
    if perm is None or perm == (0, 1, 2, 3):
        return "None"
    return "".join("NHWC"[a] for a in perm)


NATIVE_TRANSPOSES = ((0, 2, 1, 3), (0, 1, 3, 2), (0, 3, 2, 1))  # swap H/W, W/C, H/C


def _native_transposes(op: VOp) -> list[VOp]:
    """A transpose the U55/U65 cannot do in one pass, as two it can (Vela decomposes by transpose mask)."""
    if op.type != "Transpose" or op.perm is None or op.perm in NATIVE_TRANSPOSES or op.perm == (0, 1, 2, 3):
        return [op]
    for first in NATIVE_TRANSPOSES:
        for second in NATIVE_TRANSPOSES:
            if tuple(first[a] for a in second) == op.perm:
                mid_shape = tuple(op.ifm.shape[a] for a in first)
                mid = VTensor(f"{op.ofm.tensor.name}/mid", mid_shape, op.ofm.bits)
                a = VOp(
                    "Transpose",
                    op.ifm,
                    VConn(mid, mid_shape),
                    source=op.source,
                    source_type=op.source_type,
                    perm=first,
                )
                c = VOp(
                    "Transpose",
                    VConn(mid, mid_shape),
                    op.ofm,
                    source=op.source,
                    source_type=op.source_type,
                    perm=second,
                )
                mid.producers, mid.consumers = [a], [c]
                op.ofm.tensor.producers = [c if p is op else p for p in op.ofm.tensor.producers]
                op.ifm.tensor.consumers = [a if p is op else p for p in op.ifm.tensor.consumers]
                return [a, c]
    return [op]


def _increase_depth(op: VOp) -> None:
    """Elementwise ops on shallow tensors are reshaped at least 16 deep (scheduler_packing.cpp)."""
    if op.type not in (
        "Add",
        "Sub",
        "Mul",
        "Maximum",
        "Minimum",
        "Asr",
        "SHL",
        "CLZ",
        "LUT",
        "MemoryCopy",
        "Relu",
        "Relu6",
        "ReluN1To1",
        "Abs",
        "LeakyRelu",
    ):
        return
    scalar1 = elements(op.ifm.shape) == 1
    scalar2 = op.ifm2 is not None and elements(op.ifm2.shape) == 1
    if op.ifm2 is not None and not scalar1 and not scalar2 and op.ifm.shape != op.ifm2.shape:
        return
    if not (elements(op.ofm.shape) > 16 and op.ofm.shape[3] < 8):
        return
    if not scalar1:
        op.ifm = VConn(op.ifm.tensor, increase_depth(op.ifm.shape, 16))
    if op.ifm2 is not None and not scalar2:
        op.ifm2 = VConn(op.ifm2.tensor, increase_depth(op.ifm2.shape, 16))
    op.ofm = VConn(op.ofm.tensor, increase_depth(op.ofm.shape, 16))


def increase_depth(shape: Shape, min_depth: int) -> Shape:
    """Vela's ReshapeToIncreaseDepth: the same elements as a deeper shape built from their prime factors."""
    n = elements(shape)
    primes = []
    while n % 2 == 0 and n > 1:
        primes.append(2)
        n //= 2
    f = 3
    while f * f <= n:
        while n % f == 0:
            primes.append(f)
            n //= f
        f += 2
    if n > 1:
        primes.append(n)
    depth, i = 1, 0
    while i < len(primes) and depth < min_depth:
        depth *= primes[i]
        i += 1
    height = width = 1
    for p in primes[i:]:  # the rest between height and width, height the larger
        if width < height:
            width *= p
        else:
            height *= p
    height, width = max(height, width), min(height, width)
    return (1, height, width, depth)


def check_lowered(ops: list[VOp], graph: Graph) -> None:
    """Raise when a lowered op has no feature-map input (a model Vela would refuse)."""
    for op in ops:
        if op.ifm is None:
            raise ConfigError(f"{graph.source}: op {op.source} ({op.type}) has no input feature map")
