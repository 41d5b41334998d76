"""Read a quantized ``.onnx`` model (QOperator or QDQ form) into a :class:`~hwsim.workload.graph.Graph`.

QOperator models name their integer ops (QLinearConv, QLinearMatMul, QGemm, QLinearAdd...). QDQ models
wrap float ops in DequantizeLinear / QuantizeLinear pairs; hwsim fuses each ``DQ -> op -> Q`` group into
the integer op, as ONNX Runtime's graph optimizer does, so both forms run on the same integer kernels.
Tensors keep ONNX's NCHW shapes; spatial ops carry ``layout="NCHW"``.

The QDQ rules are those of ONNX Runtime's x86 builds (the same on every x86 CPU): an int8 Q/DQ pair with a
single reader becomes uint8 first, and MatMul, Conv, Add, Mul and Softmax groups whose types do not fit a
QLinear kernel (an int8 MatMul A, an int8 or mixed-type Conv, mixed input types) stay DequantizeLinear,
float op, QuantizeLinear. Float ops of a quantized model (LayerNormalization, Erf, Div, ReduceMean, Conv...
and those unfused groups) run as ONNX Runtime computes them in float32 (:mod:`hwsim.runtime.onnx_ops`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hwsim.errors import ConfigError, RegistryError, RuntimeUnavailable
from hwsim.importers.onnx_fold import PROBE_BATCHES, fold_dynamic, fold_once, probe_copy
from hwsim.workload.graph import Graph, Op, QuantInfo, Tensor
from hwsim.workload.shapes import output_shape

_SPATIAL_ATTRS = ("strides", "pads", "dilations", "group", "auto_pad", "kernel_shape")
#: The ai.onnx opsets ONNX Runtime 1.32 runs (measured): it refuses a model stamped above 28 ("official
#: support for domain ai.onnx is till opset 28") and has no kernels for the ops of opsets below 7.
ORT_OPSETS = range(7, 29)


def _onnx():
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeUnavailable(f"reading .onnx files needs the 'onnx' package: {exc}") from exc
    return onnx, numpy_helper


@dataclass
class _Node:
    """A node of the source graph, or a QDQ group fused into an integer op."""

    op_type: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict
    name: str
    quant_inputs: list[tuple[str, str, str]] = field(default_factory=list)  # (quantized, scale, zero point)
    quant_output: tuple[str, str] | None = None  # (scale, zero point) of the output
    domain: str = ""


def load_onnx(path: str | Path) -> Graph:
    """Parse ``path``; unknown ops and attributes are errors naming the node."""
    onnx, numpy_helper = _onnx()
    path = Path(path)
    try:
        model = onnx.load(str(path))
    except FileNotFoundError:
        raise ConfigError(f"{path}: cannot read the file (no such file)") from None
    except Exception as exc:
        raise ConfigError(f"{path}: not a readable ONNX model ({type(exc).__name__}: {exc})") from None
    _check_opsets(path, model)
    graph = model.graph
    consts = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            consts[node.output[0]] = _constant_value(onnx, numpy_helper, node.attribute[0])
    nodes = [
        _Node(
            n.op_type,
            list(n.input),
            list(n.output),
            {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute},
            n.name or n.output[0],
            domain=n.domain,
        )
        for n in graph.node
        if n.op_type != "Constant"
    ]
    known = {t.name for t in graph.input} | set(consts) | {o for n in nodes for o in n.outputs}
    for n in nodes:
        for name in n.inputs:
            if name and name not in known:
                raise ConfigError(
                    f"{path}: node {n.name!r} ({n.op_type}) reads {name!r}, which is neither a "
                    "graph "
                    "input, an initializer nor any node's output (a missing initializer?)"
                )
    outputs = {v.name for v in graph.output}
    nodes, info = _fold(model, nodes, consts, outputs, path)
    quantized = any(n.op_type in _QUANTIZED_OPS or n.op_type.startswith("QLinear") for n in nodes)
    if quantized:
        nodes = _qdq_s8_to_u8(nodes, consts, outputs)
    nodes = _fuse_qdq(nodes, outputs, consts if quantized else None)
    builder = _Builder(path, consts, info)
    builder.quantized = quantized
    for value in graph.input:
        if value.name in consts:
            continue
        elem = value.type.tensor_type
        shape = tuple(d.dim_value if d.HasField("dim_value") else None for d in elem.shape.dim)
        builder.tensor(value.name, shape, np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem.elem_type)))
    for n in nodes:
        builder.add(n)
    inputs = [v.name for v in graph.input if v.name not in consts]
    result = Graph(builder.tensors, builder.ops, inputs, [v.name for v in graph.output], str(path), "onnx")
    result.check()
    _infer_shapes(result, info)
    return result


def _fold(model, nodes: list[_Node], consts: dict, outputs: set[str], path: Path):
    """Fold constant subgraphs (:mod:`hwsim.importers.onnx_fold`); a dynamic batch is folded at two probe
    sizes and merged. Returns the remaining nodes and the tensors' (shape, dtype)."""

    def where(n):
        return f"{path}: node {n.name!r} ({n.op_type})"

    if not any(d.dim_param for v in model.graph.input for d in v.type.tensor_type.shape.dim):
        nodes, _, info = _fold_at(model, nodes, consts, outputs, None)
        return nodes, info
    runs = [_fold_at(model, probe_copy(nodes), dict(consts), outputs, b) for b in PROBE_BATCHES]
    nodes, merged, info = fold_dynamic(runs, set(consts), where)
    consts.update(merged)
    return nodes, info


def _fold_at(model, nodes: list[_Node], consts: dict, outputs: set[str], batch: int | None):
    """Fold until nothing more folds; each round's constants go back into the model (with the graph inputs'
    dynamic dimensions set to ``batch``), so ONNX's shape inference sees past the Reshapes they feed."""
    onnx, numpy_helper = _onnx()
    inputs = []
    for value in model.graph.input:
        value = copy.deepcopy(value)
        for d in value.type.tensor_type.shape.dim:
            if d.dim_param and batch is not None:
                d.dim_value = batch
        inputs.append(value)
    while True:
        needed = {i for n in nodes for i in n.inputs} | outputs
        protos = [
            onnx.helper.make_node(n.op_type, n.inputs, n.outputs, n.name, domain=n.domain, **n.attrs)
            for n in nodes
        ]
        inits = [numpy_helper.from_array(np.asarray(v), k) for k, v in consts.items() if k in needed]
        graph = onnx.helper.make_graph(protos, model.graph.name, inputs, model.graph.output, inits)
        info = _value_info(onnx.helper.make_model(graph, opset_imports=model.opset_import))
        before = len(nodes)
        nodes = fold_once(nodes, consts, info, outputs)
        if len(nodes) == before:
            return nodes, consts, info


def _constant_value(onnx, numpy_helper, attr) -> np.ndarray:
    """The value of a Constant node's attribute (``value`` tensor, or ``value_float(s)``/``value_int(s)``)."""
    if attr.name == "value":
        return numpy_helper.to_array(attr.t)
    value = onnx.helper.get_attribute_value(attr)
    return np.asarray(value, np.float32 if "float" in attr.name else np.int64)


def _value_info(model) -> dict[str, tuple[tuple, np.dtype]]:
    """(shape, dtype) of every tensor ONNX's shape inference can tell. None stands for a dynamic dimension
    of a graph input (its ``dim_param``, the batch); a tensor with a dimension ONNX could not tell, or named
    with a symbol of its own (``unk__3``), gets no shape here."""
    onnx, _ = _onnx()
    try:
        inferred = onnx.shape_inference.infer_shapes(model, data_prop=True).graph
    except Exception:  # a model ONNX cannot infer: fold what the file itself declares
        inferred = model.graph
    symbols = {d.dim_param for v in model.graph.input for d in v.type.tensor_type.shape.dim if d.dim_param}
    info = {}
    for value in [*inferred.input, *inferred.value_info, *inferred.output]:
        t = value.type.tensor_type
        if (
            not t.HasField("shape")
            or not t.elem_type
            or any(not d.HasField("dim_value") and d.dim_param not in symbols for d in t.shape.dim)
        ):
            continue
        shape = tuple(d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim)
        info[value.name] = (shape, np.dtype(onnx.helper.tensor_dtype_to_np_dtype(t.elem_type)))
    return info


def _check_opsets(path: Path, model) -> None:
    """Refuse what ONNX Runtime refuses: an ai.onnx opset outside :data:`ORT_OPSETS`, a com.microsoft
    opset other than 1."""
    for opset in model.opset_import:
        if opset.domain in ("", "ai.onnx") and opset.version not in ORT_OPSETS:
            raise ConfigError(
                f"{path}: opset_import: ai.onnx opset {opset.version} is outside what ONNX "
                f"Runtime runs ({ORT_OPSETS.start} to {ORT_OPSETS.stop - 1}); convert it "
                "with onnx.version_converter"
            )
        if opset.domain == "com.microsoft" and opset.version != 1:
            raise ConfigError(
                f"{path}: opset_import: com.microsoft opset {opset.version} is not one ONNX "
                "Runtime runs (only 1)"
            )


_QUANTIZED_OPS = {"QuantizeLinear", "DequantizeLinear", "QGemm", "MatMulInteger", "ConvInteger"}


def _qdq_s8_to_u8(nodes: list[_Node], consts: dict, graph_outputs: set[str]) -> list[_Node]:
    """ONNX Runtime's QDQS8ToU8Transformer (x86 builds, where QDQ int8 is not allowed): an int8
    QuantizeLinear whose output feeds exactly one DequantizeLinear, itself read once (ONNX Runtime first gives
    every consumer of a DQ its own copy), becomes a uint8 pair with zero point + 128. The codes shift by 128;
    the float values do not, but which groups fuse and the uint8 x int8 dot product on AVX2 follow from it."""
    consumers: dict[str, list[_Node]] = {}
    for n in nodes:
        for i in n.inputs:
            consumers.setdefault(i, []).append(n)
    for q in nodes:
        if q.op_type != "QuantizeLinear" or len(q.inputs) < 3 or q.outputs[0] in graph_outputs:
            continue
        readers = consumers.get(q.outputs[0], [])
        if len(readers) != 1 or readers[0].op_type != "DequantizeLinear" or len(readers[0].inputs) < 3:
            continue
        dq = readers[0]
        if len(consumers.get(dq.outputs[0], [])) + (dq.outputs[0] in graph_outputs) > 1:
            continue
        zq, zdq = consts.get(q.inputs[2]), consts.get(dq.inputs[2])
        if (
            zq is None
            or zdq is None
            or zq.dtype != np.int8
            or zdq.dtype != np.int8
            or zq.size != 1
            or zdq.size != 1
            or int(zq.ravel()[0]) != int(zdq.ravel()[0])
        ):
            continue
        name = f"{q.inputs[2]}#u8"
        consts[name] = (zq.astype(np.int16) + 128).astype(np.uint8)
        q.inputs[2] = dq.inputs[2] = name
    return nodes


def _code_type(consts: dict, zero_point: str, data: str = "") -> np.dtype:
    """The integer type of a Q output or DQ input: its constant data's, else its zero point's (else uint8)."""
    if data in consts:
        return consts[data].dtype
    return consts[zero_point].dtype if zero_point and zero_point in consts else np.dtype(np.uint8)


def _ort_x86_fuses(n: _Node, dqs: list[_Node], q: _Node, consts: dict) -> bool:
    """Whether ONNX Runtime's QDQ selectors (x86: int8 activations not allowed, whatever the CPU) fuse this
    group. MatMul needs a uint8 A and the output's type; Conv needs the output's type on its input, and not
    int8 (ConvNodeGroupSelector): the others run as DequantizeLinear, MLAS' float Conv, QuantizeLinear
    (``conv2d_f32``), depthwise ones too (MLAS' M = 1 SGEMM path is the same fused multiply-add chain,
    measured equal on an AVX2 CPU). Add and Mul (QLinearAdd/QLinearMul), Softmax and the data-movement ops
    need one type throughout. Gemm and pools keep hwsim's integer kernels."""
    ins = [_code_type(consts, d.inputs[2] if len(d.inputs) > 2 else "", d.inputs[0]) for d in dqs]
    out = _code_type(consts, q.inputs[2] if len(q.inputs) > 2 else "")
    if n.op_type == "MatMul":
        return ins[0] == np.uint8 and out == ins[0]
    if n.op_type == "Conv" and (ins[0] != out or ins[0] == np.int8):
        return False
    if n.op_type in ("Add", "Mul", "Softmax", "Transpose", "Reshape", "Flatten"):
        return all(t == out for t in ins)
    return True


def _fuse_qdq(nodes: list[_Node], graph_outputs: set[str], consts: dict | None = None) -> list[_Node]:
    """Replace DQ -> {Conv, Gemm, MatMul, Add, Mul, Softmax, MaxPool, GlobalAveragePool, Flatten, Reshape,
    Transpose} -> Q by one node; with ``consts``, only the groups ONNX Runtime fuses on x86 (the others stay
    DequantizeLinear, a float op and QuantizeLinear, as ONNX Runtime runs them)."""
    producer = {o: n for n in nodes for o in n.outputs}
    consumers: dict[str, list[_Node]] = {}
    for n in nodes:
        for i in n.inputs:
            consumers.setdefault(i, []).append(n)
    fusible = {
        "Conv",
        "Gemm",
        "MatMul",
        "Add",
        "MaxPool",
        "GlobalAveragePool",
        "Flatten",
        "Reshape",
        "Mul",
        "Softmax",
        "Transpose",
    }
    fused: dict[int, _Node] = {}
    dropped: set[int] = set()
    for n in nodes:
        if n.op_type not in fusible:
            continue
        outs = consumers.get(n.outputs[0], [])
        if len(outs) != 1 or outs[0].op_type != "QuantizeLinear":
            continue
        data_inputs = [i for i in n.inputs if i]
        if n.op_type == "Reshape":
            data_inputs = data_inputs[:1]
        dqs = [producer.get(i) for i in data_inputs]
        if not all(d is not None and d.op_type == "DequantizeLinear" for d in dqs):
            continue
        q = outs[0]
        if consts is not None and not _ort_x86_fuses(n, dqs, q, consts):
            continue
        extra = [n.inputs[1]] if n.op_type == "Reshape" else []
        new = _Node(
            "Q" + n.op_type, [d.inputs[0] for d in dqs] + extra, [q.outputs[0]], dict(n.attrs), n.name
        )
        new.quant_inputs = [(d.inputs[0], d.inputs[1], d.inputs[2] if len(d.inputs) > 2 else "") for d in dqs]
        new.quant_output = (q.inputs[1], q.inputs[2] if len(q.inputs) > 2 else "")
        fused[id(n)] = new
        dropped.add(id(q))
    out = [fused.get(id(n), n) for n in nodes if id(n) not in dropped]
    # DequantizeLinear nodes whose outputs nobody reads any more disappear with their group.
    keep = {i for n in out for i in n.inputs} | graph_outputs
    return [n for n in out if n.op_type != "DequantizeLinear" or n.outputs[0] in keep]


class _Builder:
    """Turns source nodes into hwsim ops and tensors, attaching quantization to the tensors it describes."""

    quantized = False  # an integer graph: float ops left between DQ and Q run as ONNX Runtime runs them

    def __init__(self, path: Path, consts: dict, info: dict):
        self.path, self.consts, self.info = path, consts, info
        self.tensors: dict[str, Tensor] = {}
        self.ops: list[Op] = []

    def where(self, n: _Node) -> str:
        return f"{self.path}: node {n.name!r} ({n.op_type})"

    def tensor(self, name: str, shape=None, dtype=None, quant: QuantInfo | None = None) -> Tensor:
        t = self.tensors.get(name)
        if t is None:
            data = self.consts.get(name)
            t = Tensor(
                name,
                tuple(data.shape) if data is not None else (shape or ()),
                data.dtype if data is not None else np.dtype(dtype or np.float32),
                None,
                data,
            )
            self.tensors[name] = t
        if quant is not None:
            t.quant = quant
        if dtype is not None and t.data is None:
            t.dtype = np.dtype(dtype)
        return t

    def const(self, n: _Node, name: str, what: str) -> np.ndarray:
        if not name:
            return np.zeros(1, np.int64)
        if name not in self.consts:
            raise ConfigError(f"{self.where(n)}: {what} {name!r} must be a constant initializer")
        return self.consts[name]

    def qinfo(self, n: _Node, scale: str, zero: str, axis: int | None = None) -> tuple[QuantInfo, np.dtype]:
        s = np.atleast_1d(self.const(n, scale, "scale")).astype(np.float32)
        z_raw = self.const(n, zero, "zero point") if zero else np.zeros(1, np.uint8)
        z = np.atleast_1d(z_raw).astype(np.int64)
        return QuantInfo(s, z, axis if s.size > 1 else None), np.asarray(z_raw).dtype

    def add(self, n: _Node) -> None:
        from hwsim.importers.onnx_float import FLOAT_NODES

        if not self.quantized and n.op_type in FLOAT_NODES:
            return FLOAT_NODES[n.op_type](self, n)
        handler = getattr(self, f"_{n.op_type}", None)
        if handler is None:
            raise ConfigError(f"{self.where(n)}: op type {n.op_type} is not supported by hwsim")
        handler(n)

    def emit(self, n: _Node, kind: str, inputs: list[str], attrs: dict) -> None:
        self.emit_one(n.name, kind, inputs, n.outputs[0], attrs)

    def emit_one(self, name: str, kind: str, inputs: list[str], output: str, attrs: dict) -> None:
        """Append op ``name`` writing ``output`` (a node with several outputs emits one op per output)."""
        for t in [*inputs, output]:
            if t and t not in self.tensors:
                self.tensor(t)
        self.ops.append(Op(name, kind, inputs, [output], attrs))

    def constant(self, name: str, data: np.ndarray) -> None:
        """A constant tensor the importer makes (a reciprocal, a padding table)."""
        self.consts[name] = data
        self.tensors[name] = Tensor(name, tuple(data.shape), data.dtype, None, data)

    # -- spatial attributes
    def spatial(self, n: _Node, kernel: tuple[int, int], extra: tuple[str, ...] = ()) -> dict:
        unknown = set(n.attrs) - set(_SPATIAL_ATTRS) - {"ceil_mode", "storage_order", "channels_last", *extra}
        if unknown:
            raise ConfigError(f"{self.where(n)}: attribute {sorted(unknown)[0]!r} is not supported")
        if n.attrs.get("ceil_mode", 0) or n.attrs.get("storage_order", 0) or n.attrs.get("channels_last", 0):
            raise ConfigError(
                f"{self.where(n)}: attribute ceil_mode/storage_order/channels_last=1 is not supported"
            )
        auto = n.attrs.get("auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else auto
        if auto in ("SAME_UPPER",):
            padding = "same"
        elif auto == "VALID":
            padding = "valid"
        elif auto == "NOTSET":
            p = list(n.attrs.get("pads", [0, 0, 0, 0]))
            padding = (p[0], p[2], p[1], p[3])  # ONNX: [top, left, bottom, right]
        else:
            raise ConfigError(f"{self.where(n)}: auto_pad {auto} is not supported")
        return {
            "layout": "NCHW",
            "kernel": tuple(kernel),
            "stride": tuple(n.attrs.get("strides", [1, 1])),
            "dilation": tuple(n.attrs.get("dilations", [1, 1])),
            "padding": padding,
            "activation": None,
        }

    # -- QOperator ops
    def _QuantizeLinear(self, n):
        axis = n.attrs.get("axis", 1)
        quant, dtype = self.qinfo(n, n.inputs[1], n.inputs[2] if len(n.inputs) > 2 else "", axis)
        self.tensor(n.outputs[0], dtype=dtype, quant=quant)
        self.emit(n, "quantize", [n.inputs[0]], {})

    def _DequantizeLinear(self, n):
        quant, _ = self.qinfo(
            n, n.inputs[1], n.inputs[2] if len(n.inputs) > 2 else "", n.attrs.get("axis", 1)
        )
        self.tensor(n.inputs[0], quant=quant)
        const = self.consts.get(n.inputs[0])
        self.tensor(n.outputs[0], shape=None if const is None else tuple(const.shape), dtype=np.float32)
        self.emit(n, "dequantize", [n.inputs[0]], {})

    def _conv(self, n, x, xs, xz, w, ws, wz, ys, yz, bias):
        xq, _ = self.qinfo(n, xs, xz)
        yq, ydt = self.qinfo(n, ys, yz)
        wdata = self.const(n, w, "weight")
        wq, _ = self.qinfo(n, ws, wz, 0)
        self.tensor(x, quant=xq)
        out_c, in_per_group, kh, kw = wdata.shape
        groups = int(n.attrs.get("group", 1))
        attrs = self.spatial(n, (kh, kw))
        in_channels = in_per_group * groups
        attrs.update(in_channels=in_channels, groups=groups)
        if groups == in_channels and in_per_group == 1 and groups > 1:
            name = f"{w}#dw"
            self.tensors[name] = Tensor(
                name,
                (kh, kw, out_c),
                wdata.dtype,
                QuantInfo(wq.scale, wq.zero_point, 2 if wq.scale.size > 1 else None),
                np.ascontiguousarray(wdata[:, 0].transpose(1, 2, 0)),
            )
            attrs.update(depth_multiplier=out_c // in_channels)
            kind = "depthwise_conv2d"
        else:
            name = f"{w}#ohwi"
            self.tensors[name] = Tensor(
                name,
                (out_c, kh, kw, in_per_group),
                wdata.dtype,
                wq,
                np.ascontiguousarray(wdata.transpose(0, 2, 3, 1)),
            )
            kind = "conv2d"
        self.tensor(n.outputs[0], dtype=ydt, quant=yq)
        inputs = [x, name] + ([bias] if bias else [])
        if bias:
            self.tensor(bias)
        self.emit(n, kind, inputs, attrs)

    def _QLinearConv(self, n):
        i = n.inputs + [""] * (9 - len(n.inputs))
        self._conv(n, i[0], i[1], i[2], i[3], i[4], i[5], i[6], i[7], i[8])

    def _QConv(self, n):
        (x, xs, xz), (w, ws, wz) = n.quant_inputs[:2]
        bias = ""
        if len(n.quant_inputs) > 2:
            bias = n.quant_inputs[2][0]
        self._conv(n, x, xs, xz, w, ws, wz, *n.quant_output, bias)

    def _fc(self, n, x, xs, xz, w, ws, wz, ys, yz, bias, trans_b: bool, alpha: float = 1.0):
        if alpha != 1.0:
            raise ConfigError(f"{self.where(n)}: attribute alpha={alpha} is not supported (only 1.0)")
        xq, _ = self.qinfo(n, xs, xz)
        yq, ydt = self.qinfo(n, ys, yz)
        wdata = self.const(n, w, "weight")
        wq, _ = self.qinfo(n, ws, wz, 0 if trans_b else 1)
        wnk = wdata if trans_b else wdata.T
        name = f"{w}#nk"
        self.tensors[name] = Tensor(
            name,
            wnk.shape,
            wdata.dtype,
            QuantInfo(wq.scale, wq.zero_point, 0 if wq.scale.size > 1 else None),
            np.ascontiguousarray(wnk),
        )
        self.tensor(x, quant=xq)
        self.tensor(n.outputs[0], dtype=ydt, quant=yq)
        if bias:
            self.tensor(bias)
        self.emit(n, "fully_connected", [x, name] + ([bias] if bias else []), {"activation": None})

    def _QGemm(self, n):
        if n.quant_output is not None:  # a fused QDQ Gemm
            (x, xs, xz), (w, ws, wz) = n.quant_inputs[:2]
            bias = n.quant_inputs[2][0] if len(n.quant_inputs) > 2 else ""
            self._check_gemm(n)
            return self._fc(n, x, xs, xz, w, ws, wz, *n.quant_output, bias, bool(n.attrs.get("transB", 0)))
        i = n.inputs + [""] * (9 - len(n.inputs))
        self._check_gemm(n)
        if not i[7]:
            raise ConfigError(f"{self.where(n)}: QGemm without y_scale (float output) is not supported")
        self._fc(
            n,
            i[0],
            i[1],
            i[2],
            i[3],
            i[4],
            i[5],
            i[7],
            i[8],
            i[6],
            bool(n.attrs.get("transB", 0)),
            float(n.attrs.get("alpha", 1.0)),
        )

    def _check_gemm(self, n):
        if n.attrs.get("transA", 0):
            raise ConfigError(f"{self.where(n)}: attribute transA=1 is not supported")
        if float(n.attrs.get("beta", 1.0)) != 1.0:
            raise ConfigError(
                f"{self.where(n)}: attribute beta={n.attrs['beta']} is not supported (only 1.0)"
            )

    def _QMatMul(self, n):
        (x, xs, xz), (w, ws, wz) = n.quant_inputs[:2]
        self._matmul(n, x, xs, xz, w, ws, wz, *n.quant_output)

    def _QLinearMatMul(self, n):
        i = n.inputs
        self._matmul(n, i[0], i[1], i[2], i[3], i[4], i[5], i[6], i[7])

    def _matmul(self, n, x, xs, xz, w, ws, wz, ys, yz):
        if w not in self.consts or np.ndim(self.consts[w]) != 2:
            return self._qlinear_matmul(n, x, xs, xz, w, ws, wz, ys, yz)
        self._fc(n, x, xs, xz, w, ws, wz, ys, yz, "", trans_b=False)

    def _qlinear_matmul(self, n, a, as_, az, b, bs, bz, ys, yz):
        """QLinearMatMul of two activations (or a batched constant B), broadcasting like numpy.matmul."""
        for name, s, z in ((a, as_, az), (b, bs, bz)):
            quant, _ = self.qinfo(n, s, z)
            if quant.per_channel:
                raise ConfigError(f"{self.where(n)}: a per-channel B of a batched MatMul is not supported")
            self.tensor(name, quant=quant)
        yq, ydt = self.qinfo(n, ys, yz)
        self.tensor(n.outputs[0], dtype=ydt, quant=yq)
        self.emit(n, "qlinear_matmul", [a, b], {})

    def _add(self, n, a, as_, az, b, bs, bz, ys, yz):
        for name, s, z in ((a, as_, az), (b, bs, bz)):
            self.tensor(name, quant=self.qinfo(n, s, z)[0])
        yq, ydt = self.qinfo(n, ys, yz)
        self.tensor(n.outputs[0], dtype=ydt, quant=yq)
        self.emit(n, "qlinear_add", [a, b], {"activation": None})  # ONNX Runtime's own arithmetic

    def _QLinearAdd(self, n):
        i = n.inputs + [""] * (8 - len(n.inputs))
        self._add(n, i[0], i[1], i[2], i[3], i[4], i[5], i[6], i[7])

    def _QAdd(self, n):
        (a, as_, az), (b, bs, bz) = n.quant_inputs
        self._add(n, a, as_, az, b, bs, bz, *n.quant_output)

    def _gap(self, n, x, xs, xz, ys, yz):
        if n.attrs.get("channels_last", 0):
            raise ConfigError(f"{self.where(n)}: attribute channels_last=1 is not supported")
        self.tensor(x, quant=self.qinfo(n, xs, xz)[0])
        yq, ydt = self.qinfo(n, ys, yz)
        self.tensor(n.outputs[0], dtype=ydt, quant=yq)
        self.emit(n, "global_avg_pool", [x], {"layout": "NCHW"})

    def _QLinearGlobalAveragePool(self, n):
        self._gap(n, *n.inputs[:5])

    def _QGlobalAveragePool(self, n):
        self._gap(n, *n.quant_inputs[0], *n.quant_output)

    def _MaxPool(self, n, x=None):
        x = x or n.inputs[0]
        attrs = self.spatial(n, tuple(n.attrs["kernel_shape"]))
        src = self.tensors.get(x)
        self.tensor(n.outputs[0], dtype=src.dtype if src else None, quant=src.quant if src else None)
        self.emit(n, "max_pool2d", [x], attrs)

    def _QMaxPool(self, n):
        self._same_quant(n)
        self._MaxPool(n, n.quant_inputs[0][0])

    def _same_quant(self, n):
        (x, xs, xz), (ys, yz) = n.quant_inputs[0], n.quant_output
        xq, _ = self.qinfo(n, xs, xz)
        yq, _ = self.qinfo(n, ys, yz)
        if not (np.array_equal(xq.scale, yq.scale) and np.array_equal(xq.zero_point, yq.zero_point)):
            raise ConfigError(
                f"{self.where(n)}: input and output quantization differ around a data-movement op"
            )
        self.tensor(x, quant=xq)

    def _reshape(self, n, x, shape_name: str | None):
        src = self.tensors.get(x)
        self.tensor(n.outputs[0], dtype=src.dtype if src else None, quant=src.quant if src else None)
        attrs = (
            {"axis": int(n.attrs.get("axis", 1))}
            if shape_name is None
            else {"shape": tuple(int(v) for v in self.const(n, shape_name, "shape"))}
        )
        self.emit(n, "flatten" if shape_name is None else "reshape_to", [x], attrs)

    def _Flatten(self, n):
        self._reshape(n, n.inputs[0], None)

    def _QFlatten(self, n):
        self._same_quant(n)
        self._reshape(n, n.quant_inputs[0][0], None)

    def _Reshape(self, n):
        self._reshape(n, n.inputs[0], n.inputs[1])

    def _QReshape(self, n):
        self._same_quant(n)
        self._reshape(n, n.quant_inputs[0][0], n.inputs[1])

    def _binary_q(self, n, kind, a, as_, az, b, bs, bz, ys, yz):
        for name, s, z in ((a, as_, az), (b, bs, bz)):
            self.tensor(name, quant=self.qinfo(n, s, z)[0])
        yq, ydt = self.qinfo(n, ys, yz)
        self.tensor(n.outputs[0], dtype=ydt, quant=yq)
        self.emit(n, kind, [a, b], {})

    def _QLinearMul(self, n):
        i = n.inputs + [""] * (8 - len(n.inputs))
        self._binary_q(n, "qlinear_mul", *i[:8])

    def _QMul(self, n):
        (a, as_, az), (b, bs, bz) = n.quant_inputs
        self._binary_q(n, "qlinear_mul", a, as_, az, b, bs, bz, *n.quant_output)

    def _softmax_q(self, n, x, xs, xz, ys, yz, opset: int):
        self.tensor(x, quant=self.qinfo(n, xs, xz)[0])
        yq, ydt = self.qinfo(n, ys, yz)
        self.tensor(n.outputs[0], dtype=ydt, quant=yq)
        axis = int(n.attrs.get("axis", -1 if opset >= 13 else 1))
        self.emit(n, "qlinear_softmax", [x], {"axis": axis, "opset": opset})

    def _QLinearSoftmax(self, n):
        """com.microsoft QLinearSoftmax; its ``opset`` attribute picks the old (flattening) axis meaning."""
        i = n.inputs + [""] * (5 - len(n.inputs))
        self._softmax_q(n, *i[:5], int(n.attrs.get("opset", 13)))

    def _QSoftmax(self, n):
        self._softmax_q(n, *n.quant_inputs[0], *n.quant_output, 13)

    def _Transpose(self, n, x=None):
        x = x or n.inputs[0]
        src = self.tensors.get(x)
        perm = n.attrs.get("perm")
        if perm is None:
            rank = len(src.shape) if src is not None and src.shape else None
            if rank is None:
                raise ConfigError(f"{self.where(n)}: Transpose without perm needs its input's rank")
            perm = list(range(rank))[::-1]
        self.tensor(n.outputs[0], dtype=src.dtype if src else None, quant=src.quant if src else None)
        self.emit(n, "transpose", [x], {"perm": tuple(int(p) for p in perm)})

    def _QTranspose(self, n):
        self._same_quant(n)
        self._Transpose(n, n.quant_inputs[0][0])

    # -- float ops of an integer graph, left by ONNX Runtime between DequantizeLinear and QuantizeLinear
    def _float_op(self, n, kind: str, inputs: list[str], attrs: dict | None = None) -> None:
        if not self.quantized:
            raise ConfigError(
                f"{self.where(n)}: op type {n.op_type} is only supported between "
                "DequantizeLinear and QuantizeLinear of a quantized model"
            )
        self.emit(n, kind, inputs, attrs or {})

    def _LayerNormalization(self, n):
        if len(n.outputs) > 1 and any(n.outputs[1:]):
            raise ConfigError(f"{self.where(n)}: the Mean and InvStdDev outputs are not supported")
        if n.attrs.get("stash_type", 1) != 1:
            raise ConfigError(
                f"{self.where(n)}: attribute stash_type={n.attrs['stash_type']} is not supported"
            )
        self._float_op(
            n,
            "layer_norm_f32",
            [i for i in n.inputs if i],
            {"axis": int(n.attrs.get("axis", -1)), "epsilon": float(n.attrs.get("epsilon", 1e-5))},
        )

    def _Erf(self, n):
        self._float_op(n, "erf_f32", [n.inputs[0]])

    def _Div(self, n):
        self._float_op(n, "div_f32", list(n.inputs))

    def _Sub(self, n):
        self._float_op(n, "sub_f32", list(n.inputs))

    def _Sqrt(self, n):
        self._float_op(n, "sqrt_f32", [n.inputs[0]])

    def _Pow(self, n):
        self.const(n, n.inputs[1], "exponent")
        self._float_op(n, "pow_f32", list(n.inputs[:2]))

    def _ReduceMean(self, n):
        """ReduceMean over the last axis only (axes from the attribute, or from input 1 from opset 18 on)."""
        axes = n.attrs.get("axes")
        if axes is None and len(n.inputs) > 1 and n.inputs[1]:
            axes = self.const(n, n.inputs[1], "axes").ravel().tolist()
        if axes is None or len(axes) != 1 or n.attrs.get("noop_with_empty_axes", 0):
            raise ConfigError(
                f"{self.where(n)}: only a ReduceMean over the last axis is supported (axes {axes})"
            )
        self._float_op(
            n,
            "reduce_mean_f32",
            [n.inputs[0]],
            {"axis": int(axes[0]), "keepdims": int(n.attrs.get("keepdims", 1))},
        )

    def _integer(self, n, kind: str):
        i = n.inputs + [""] * (4 - len(n.inputs))
        self.tensor(n.outputs[0], dtype=np.int32)
        attrs = {"x_zero_point": i[2], "w_zero_point": i[3]}
        if kind == "conv_integer":
            w = self.const(n, i[1], "weight")
            attrs.update(self.spatial(n, w.shape[2:]), groups=int(n.attrs.get("group", 1)))
        self.emit(n, kind, [i[0], i[1]], attrs)

    # -- float ops (a float32 model, for hwsim to quantize; shapes and MACs for performance studies)
    def _float_weight(self, n, name: str, array: np.ndarray, suffix: str) -> str:
        key = f"{name}#{suffix}"
        self.tensors[key] = Tensor(key, array.shape, array.dtype, None, np.ascontiguousarray(array))
        return key

    def _Conv(self, n):
        if self.quantized:  # an integer graph: a Conv ONNX Runtime does not fuse runs MLAS' float Conv
            w = self.tensors.get(n.inputs[1])
            if w is None or len(w.shape) != 4:
                raise ConfigError(f"{self.where(n)}: a float Conv needs weights of a known 4-D shape")
            out_c, in_per_group, kh, kw = w.shape
            groups = int(n.attrs.get("group", 1))
            attrs = self.spatial(n, (kh, kw))
            attrs.update(in_channels=in_per_group * groups, groups=groups)
            return self._float_op(n, "conv2d_f32", [i for i in n.inputs[:3] if i], attrs)
        w = self.const(n, n.inputs[1], "weight")
        out_c, in_per_group, kh, kw = w.shape
        groups = int(n.attrs.get("group", 1))
        attrs = self.spatial(n, (kh, kw))
        attrs.update(in_channels=in_per_group * groups, groups=groups)
        bias = [n.inputs[2]] if len(n.inputs) > 2 and n.inputs[2] else []
        if groups == in_per_group * groups and in_per_group == 1 and groups > 1:
            name = self._float_weight(n, n.inputs[1], w[:, 0].transpose(1, 2, 0), "dw")
            attrs.update(depth_multiplier=out_c // groups)
            self.emit(n, "depthwise_conv2d", [n.inputs[0], name, *bias], attrs)
        else:
            name = self._float_weight(n, n.inputs[1], w.transpose(0, 2, 3, 1), "ohwi")
            self.emit(n, "conv2d", [n.inputs[0], name, *bias], attrs)

    def _Gemm(self, n):
        self._check_gemm(n)
        if float(n.attrs.get("alpha", 1.0)) != 1.0:
            raise ConfigError(
                f"{self.where(n)}: attribute alpha={n.attrs['alpha']} is not supported (only 1.0)"
            )
        w = self.const(n, n.inputs[1], "weight")
        name = self._float_weight(n, n.inputs[1], w if n.attrs.get("transB", 0) else w.T, "nk")
        bias = [n.inputs[2]] if len(n.inputs) > 2 and n.inputs[2] else []
        self.emit(n, "fully_connected", [n.inputs[0], name, *bias], {"activation": None})

    def _MatMul(self, n):
        if self.quantized:  # an integer graph: a MatMul ONNX Runtime does not fuse runs MLAS' SGEMM
            return self.emit(n, "matmul_f32", list(n.inputs[:2]), {})
        w = self.consts.get(n.inputs[1])
        if w is None or w.ndim != 2:
            raise ConfigError(
                f"{self.where(n)}: MatMul with a non-constant or batched B is not supported yet"
            )
        name = self._float_weight(n, n.inputs[1], w.T, "nk")
        self.emit(n, "fully_connected", [n.inputs[0], name], {"activation": None})

    def _elementwise_ort(kind: str, float_kind: str):
        def handler(self, n):
            if self.quantized:  # an integer graph: the float op ONNX Runtime runs between DQ and Q
                return self.emit(n, float_kind, list(n.inputs), {})
            self.emit(n, kind, list(n.inputs), {"activation": None})

        return handler

    _Add = _elementwise_ort("add", "add_f32")
    _Mul = _elementwise_ort("mul", "mul_f32")
    _Relu = _elementwise_ort("relu", "relu_f32")

    def _GlobalAveragePool(self, n):
        self.emit(n, "global_avg_pool", [n.inputs[0]], {"layout": "NCHW"})

    def _BatchNormalization(self, n):
        """Inference-mode batch norm (a float model's; hwsim.quant folds it into the conv before it)."""
        if n.attrs.get("training_mode", 0) or len(n.outputs) > 1:
            raise ConfigError(f"{self.where(n)}: training-mode BatchNormalization is not supported")
        for name in n.inputs[1:5]:
            self.const(n, name, "batch-norm parameter")
        self.emit(
            n,
            "batchnorm",
            list(n.inputs[:5]),
            {"layout": "NCHW", "epsilon": float(n.attrs.get("epsilon", 1e-5))},
        )

    def _ConvInteger(self, n):
        self._integer(n, "conv_integer")

    def _MatMulInteger(self, n):
        self._integer(n, "matmul_integer")


def _infer_shapes(graph: Graph, info: dict) -> None:
    """Fill computed tensors' shapes without running anything: ONNX's own shape inference (``info``, see
    :func:`_value_info`) where it gives a shape, :mod:`hwsim.workload.shapes` elsewhere (the com.microsoft
    ops, which ONNX does not know, and every op after one). The dynamic batch becomes None."""
    known = {name: shape for name, (shape, _) in info.items()}
    for op in graph.ops:
        out = graph.tensors[op.outputs[0]]
        if out.name in known:
            out.shape = known[out.name]
            continue
        try:
            out.shape = output_shape(graph, op)
        except RegistryError:
            raise ConfigError(
                f"{graph.source}: node {op.name!r} ({op.kind}): neither ONNX's shape inference "
                "nor "
                "hwsim's shape rules give its output shape"
            ) from None
