"""Float graph + recipe + calibration data -> a quantized model: an integer graph hwsim's kernels run.

:func:`quantize_model` runs the whole post-training flow of a :class:`~hwsim.quant.recipe.QuantRecipe`:

1. batch-norm folding and ReLU fusion (:func:`hwsim.quant.ptq.prepare`), then cross-layer equalization;
2. weight quantization per layer (uniform min-max / MSE per tensor, channel or group; or a non-uniform
   scheme), with per-layer overrides;
3. activation calibration on the float model (:func:`hwsim.quant.calibrate.activation_range`);
4. AdaRound, then bias correction, layer after layer on the partly quantized model;
5. int32 bias codes (scale sx * sw[c]) and the integer :class:`~hwsim.workload.graph.Graph`: a
   ``quantize`` op on each input, integer MAC ops with the recipe's accumulator register and fused
   activations, requantization to each activation's format (any width 2..16), ``dequantize`` at the
   outputs. :func:`hwsim.runtime.execute.run_graph` runs it under the recipe's semantics. Dynamic
   recipes keep float tensors between layers and run under :func:`hwsim.runtime.float_exec.run_float`
   with integer MAC ops (:mod:`hwsim.runtime.dynamic_ops`).

The :class:`QuantizedModel` also runs the same quantization as fake-quant (float weights and activations
snapped to their grids), so the two evaluations can be compared.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hwsim.errors import ConfigError
from hwsim.numerics import ops
from hwsim.numerics.formats import IntFormat
from hwsim.quant.calibrate import (
    WeightQuant,
    activation_range,
    quantize_weight_rows,
    rows_to_weight,
    weight_rows,
)
from hwsim.quant.coverage import integer_kernel, pass_through
from hwsim.quant.ptq import MAC_KINDS, bias_tensor, copy_graph, correct_bias, equalize, prepare
from hwsim.quant.recipe import AccumulatorSpec, ActivationSpec, QuantRecipe, WeightSpec
from hwsim.runtime import float_core
from hwsim.runtime import float_exec as F
from hwsim.workload.graph import Graph, Op, QuantInfo, Tensor

CALIBRATION_BATCH = 32


@dataclass
class TensorQuant:
    """The integer format and parameters of one activation tensor, and the real range they came from."""

    fmt: IntFormat
    scale: np.float32
    zero: int
    lo: float
    hi: float

    def fake(self, x: np.ndarray) -> np.ndarray:
        """x snapped to this tensor's grid (round half to even, clamp), in float32."""
        return ops.fake_quantize(np.asarray(x, np.float32), self.scale, self.zero, self.fmt)


@dataclass
class LayerQuant:
    """One MAC layer's quantization: weights, specs, and the int32 bias codes of a static layer."""

    op: str
    kind: str
    weight: WeightQuant
    weight_spec: WeightSpec
    input_spec: ActivationSpec
    accumulator: AccumulatorSpec
    bias_codes: np.ndarray | None = None
    bias_scale: np.ndarray | None = None
    adaround: dict | None = None


@dataclass
class QuantizedModel:
    """The result of :func:`quantize_model`: float reference, quantization plan and the integer graph."""

    recipe: QuantRecipe
    source: Graph
    reference: Graph
    graph: Graph
    layers: dict[str, LayerQuant]
    tensors: dict[str, TensorQuant]
    alias: dict[str, str]
    integer_graph: Graph
    fake_graph: Graph
    equalized_pairs: list[tuple[str, str]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def dynamic(self) -> bool:
        """True when activation ranges are taken per input at run time."""
        return self.recipe.activations.dynamic

    def tensor_quant(self, name: str) -> TensorQuant | None:
        """The parameters of activation tensor ``name`` (following pass-through ops)."""
        return self.tensors.get(self.alias.get(name, name))

    def run_float(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Every tensor of the prepared float reference graph on input ``x``."""
        return F.run_float(self.reference, [x])

    def run_fake_quant(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Every tensor of the fake-quantized model (float arithmetic on grid values) on input ``x``."""
        if self.dynamic:
            return F.run_float(self.fake_graph, [x])
        return F.run_float(self.fake_graph, [x], hook=self._snap)

    def _snap(self, name: str, value: np.ndarray) -> np.ndarray:
        tq = self.tensor_quant(name)
        return tq.fake(value) if tq is not None else value

    def run_integer(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Every tensor of the integer model on input ``x``, computed by hwsim's integer kernels under the
        recipe's semantics (static: :func:`run_graph` returns integer codes, outputs dequantized), the batch
        split over threads (:func:`hwsim.runtime.batch.run_batch`)."""
        if self.dynamic:
            return F.run_float(self.integer_graph, [x])
        from hwsim.runtime.batch import run_batch

        return run_batch(
            self.integer_graph, np.asarray(x, np.float32), self.recipe.semantics, every_tensor=True
        )

    def integer_value(self, values: dict, name: str) -> np.ndarray | None:
        """The real value of float tensor ``name`` in an integer run (dequantized codes), if it exists."""
        if self.dynamic:
            return values.get(name)
        tq = self.tensor_quant(name)
        codes = values.get(qname(name))
        if tq is None or codes is None:
            return None
        return ops.dequantize(codes, tq.scale, tq.zero)

    def mac_ops(self) -> list[Op]:
        """The quantized MAC ops of the prepared graph, in order."""
        return [op for op in self.graph.ops if op.name in self.layers]


def qname(name: str) -> str:
    """Name of the integer tensor standing for float tensor ``name``."""
    return f"{name}#q"


def load_float_graph(model: str | Path | Graph) -> Graph:
    """A float graph from a model file (ONNX) or as given."""
    if isinstance(model, Graph):
        return model
    from hwsim.importers import load_model

    g = load_model(model)
    if any(t.quant is not None for t in g.tensors.values()):
        raise ConfigError(f"{model}: is already quantized; hwsim.quant takes a float32 model")
    return g


def activation_points(graph: Graph) -> tuple[list[str], dict[str, str]]:
    """Tensors that get their own quantization (inputs and outputs of computing ops) and the aliases
    (outputs of pass-through ops, which keep their input's parameters)."""
    alias: dict[str, str] = {}
    points = list(graph.inputs)
    for op in graph.ops:
        if pass_through(op):
            src = op.inputs[0]
            alias[op.outputs[0]] = alias.get(src, src)
        else:
            points.append(op.outputs[0])
    return points, alias


def _point_specs(
    graph: Graph, recipe: QuantRecipe, points: list[str], alias: dict
) -> dict[str, ActivationSpec]:
    specs = {p: recipe.activations for p in points}
    for op in graph.ops:
        if op.kind in MAC_KINDS:
            spec = recipe.layer_specs(op.name)[1]
            root = alias.get(op.inputs[0], op.inputs[0])
            if root in specs and (spec != recipe.activations) and spec.bits >= specs[root].bits:
                specs[root] = spec
    if recipe.output_bits is not None:
        for out in graph.outputs:
            root = alias.get(out, out)
            specs[root] = specs[root].model_copy(update={"bits": recipe.output_bits})
    return specs


def _batches(x: np.ndarray) -> list[np.ndarray]:
    return [x[i : i + CALIBRATION_BATCH] for i in range(0, len(x), CALIBRATION_BATCH)]


def record(graph: Graph, x: np.ndarray, names: set[str], hook=None) -> dict[str, list[np.ndarray]]:
    """Values of the tensors ``names`` on ``x``, batch by batch."""
    seen: dict[str, list[np.ndarray]] = {n: [] for n in names}
    for batch in _batches(x):
        values = F.run_float(graph, [batch], hook=hook)
        for n in names:
            seen[n].append(values[n])
    return seen


def quantize_model(model: str | Path | Graph, recipe: QuantRecipe, calibration: np.ndarray) -> QuantizedModel:
    """Quantize a float model with ``recipe``, calibrated on ``calibration`` inputs (first graph input)."""
    t0 = time.perf_counter()
    llm_only = [f for f in ("kv_cache", "gptq", "smoothquant") if getattr(recipe, f) is not None]
    if llm_only:
        raise ConfigError(
            f"recipe {recipe.name!r}: {llm_only[0]}: a language-model field (hwsim llm and LM "
            "workloads use it); this model is quantized by hwsim.quant"
        )
    source = load_float_graph(model)
    if len(source.inputs) != 1:
        raise ConfigError(f"model: hwsim.quant takes single-input models (this one has {len(source.inputs)})")
    calibration = np.asarray(calibration, np.float32)
    reference = prepare(source)
    pairs: list[tuple[str, str]] = []
    if recipe.equalize:
        reference, pairs = equalize(reference, recipe.equalize_iterations)
    graph = copy_graph(reference)
    unsupported = [op.kind for op in graph.ops if op.kind not in F.FLOAT_OPS]
    if unsupported:
        raise ConfigError(f"model: op kinds {sorted(set(unsupported))} have no float implementation")
    leftover = [op.name for op in graph.ops if op.kind == "batchnorm"]
    if leftover:
        raise ConfigError(f"model: batch norms {leftover} follow no conv/FC and cannot be folded")
    seconds = {"prepare": time.perf_counter() - t0}

    t = time.perf_counter()
    layers: dict[str, LayerQuant] = {}
    for op in graph.ops:
        if op.kind not in MAC_KINDS:
            continue
        wspec, aspec, acc = recipe.layer_specs(op.name)
        if wspec.granularity == "per_group" and (op.kind == "depthwise_conv2d" or aspec.dynamic):
            wspec = wspec.model_copy(update={"granularity": "per_channel", "group_size": None})
        if op.kind == "conv2d" and op.attrs.get("groups", 1) != 1 and wspec.granularity == "per_group":
            raise ConfigError(f"layer {op.name!r}: per-group weights of a grouped conv are not supported")
        rows = weight_rows(graph.tensor(op.inputs[1]).data, op.kind)
        layers[op.name] = LayerQuant(
            op.name, op.kind, quantize_weight_rows(rows, wspec, recipe.rounding), wspec, aspec, acc
        )
    seconds["weights"] = time.perf_counter() - t

    points, alias = activation_points(graph)
    specs = _point_specs(graph, recipe, points, alias)
    tensors: dict[str, TensorQuant] = {}
    t = time.perf_counter()
    if not recipe.activations.dynamic:
        seen = record(graph, calibration, set(points))
        for name in points:
            spec = specs[name]
            lo, hi = activation_range(seen[name], spec)
            scale, zero = ops.qparams_from_range(
                lo, hi, spec.fmt, symmetric=spec.symmetric, power_of_two=spec.power_of_two
            )
            tensors[name] = TensorQuant(spec.fmt, np.float32(scale), int(zero), float(lo), float(hi))
        _quantize_constants(graph, recipe, tensors, alias)
    seconds["calibrate"] = time.perf_counter() - t

    qm = QuantizedModel(
        recipe, source, reference, graph, layers, tensors, alias, graph, graph, pairs, seconds
    )
    t = time.perf_counter()
    if recipe.adaround is not None:
        _adaround_all(qm, calibration)
    seconds["adaround"] = time.perf_counter() - t
    t = time.perf_counter()
    if recipe.bias_correction:
        _bias_correct_all(qm, calibration)
    seconds["bias_correction"] = time.perf_counter() - t
    _quantize_biases(qm)
    qm.fake_graph = _fake_graph(qm)
    qm.integer_graph = _dynamic_graph(qm, fake=False) if qm.dynamic else _integer_graph(qm)
    if qm.dynamic:
        qm.fake_graph = _dynamic_graph(qm, fake=True)
    seconds["total"] = time.perf_counter() - t0
    return qm


def _on_integer_kernel(
    op: Op, recipe: QuantRecipe, tensors: dict[str, TensorQuant], alias: dict[str, str]
) -> bool:
    """Whether a non-MAC op runs on integer codes (else a float island), judged by its first input's
    format."""
    from hwsim.numerics.semantics import get_semantics

    first = next((n for n in op.inputs if n and (n in tensors or alias.get(n) in tensors)), None)
    bits = tensors[alias.get(first, first)].fmt.bits if first else recipe.activations.bits
    return integer_kernel(op, get_semantics(recipe.semantics), bits)


def _quantize_constants(
    graph: Graph, recipe: QuantRecipe, tensors: dict[str, TensorQuant], alias: dict
) -> None:
    """Per-tensor parameters for the float constants an integer non-MAC op reads (an added bias, a scale
    factor, a position embedding), from their own min and max, in the activations' format."""
    for op in graph.ops:
        if op.kind in MAC_KINDS or not _on_integer_kernel(op, recipe, tensors, alias):
            continue
        for name in op.inputs:
            t = graph.tensor(name) if name else None
            if t is None or not t.is_constant or t.data.dtype != np.float32 or name in tensors:
                continue
            fmt = recipe.activations.fmt
            lo, hi = float(t.data.min(initial=0.0)), float(t.data.max(initial=0.0))
            scale, zero = ops.qparams_from_range(lo, hi, fmt)
            tensors[name] = TensorQuant(fmt, np.float32(scale), int(zero), lo, hi)


# ---------------------------------------------------------------- biases and the fake-quant graph
def _input_scale(qm: QuantizedModel, op: Op) -> np.float32 | None:
    tq = qm.tensor_quant(op.inputs[0])
    return None if tq is None else tq.scale


def _quantize_biases(qm: QuantizedModel) -> None:
    """int32 bias codes round(b / (sx sw[c])) for static per-tensor/per-channel layers."""
    for op in qm.mac_ops():
        lq = qm.layers[op.name]
        sx = _input_scale(qm, op)
        if sx is None or lq.weight.granularity == "per_group":
            continue
        channels = lq.weight.values.shape[0]
        sw = np.broadcast_to(lq.weight.scale.astype(np.float32), (channels,))
        bias_scale = (np.float32(sx) * sw).astype(np.float32)
        bias = _float_bias(qm.graph, op, channels)
        fmt = IntFormat(qm.recipe.bias_bits)
        lq.bias_scale = bias_scale
        lq.bias_codes = np.clip(
            np.rint(bias.astype(np.float64) / bias_scale.astype(np.float64)), fmt.min, fmt.max
        ).astype(np.int64)


def _float_bias(graph: Graph, op: Op, channels: int) -> np.ndarray:
    if len(op.inputs) > 2 and op.inputs[2]:
        return graph.tensor(op.inputs[2]).data.astype(np.float32)
    return np.zeros(channels, np.float32)


def _fake_graph(qm: QuantizedModel, upto: str | None = None) -> Graph:
    """The prepared graph with each layer's weights (and biases) replaced by what their codes stand for.
    With ``upto``, only layers before that op are replaced (for layer-by-layer methods)."""
    g = copy_graph(qm.graph)
    for name, tq in qm.tensors.items():
        if g.tensors[name].is_constant:  # constants of integer non-MAC ops stand for their codes too
            g.tensors[name].data = tq.fake(g.tensors[name].data)
    for op in g.ops:
        if op.name == upto:
            break
        lq = qm.layers.get(op.name)
        if lq is None:
            continue
        w_t = g.tensor(op.inputs[1])
        w_t.data = rows_to_weight(lq.weight.dequantized(), op.kind, w_t.data.shape)
        if lq.bias_codes is not None:
            b = (lq.bias_codes.astype(np.float32) * lq.bias_scale).astype(np.float32)
            bias_tensor(g, op, b.size, b)
    return g


def _partial_run(
    qm: QuantizedModel, x: np.ndarray, upto: str, names: set[str]
) -> dict[str, list[np.ndarray]]:
    """Tensors ``names`` in the model quantized up to (not including) op ``upto``: earlier layers' weights
    and every activation before it on their grids."""
    g = _fake_graph(qm, upto)
    hook = None if qm.dynamic else qm._snap
    return record(g, x, names, hook)


# ---------------------------------------------------------------- layer inputs as GEMM rows
def layer_rows(op: Op, x: np.ndarray, weight_shape: tuple[int, ...]) -> np.ndarray:
    """A MAC op's input as the rows its weights multiply: [M, K] (conv, FC) or [C, M, kh*kw] (depthwise)."""
    a = op.attrs
    if op.kind == "fully_connected":
        return x.reshape(-1, weight_shape[1])
    xn = float_core.to_nhwc(x, op)
    if op.kind == "conv2d":
        win, _ = float_core.patches(xn, weight_shape[1:3], a["stride"], a["padding"], a["dilation"])
        return win.reshape(-1, int(np.prod(win.shape[3:])))
    win, _ = float_core.patches(xn, weight_shape[:2], a["stride"], a["padding"], a["dilation"])
    taps = win.reshape(-1, weight_shape[0] * weight_shape[1], win.shape[-1])  # [M, kh*kw, C]
    return np.ascontiguousarray(taps.transpose(2, 0, 1))


def _adaround_all(qm: QuantizedModel, calibration: np.ndarray) -> None:
    from hwsim.quant.adaround import adaround

    spec = qm.recipe.adaround
    float_inputs = record(qm.reference, calibration, {op.inputs[0] for op in qm.mac_ops()})
    for op in qm.mac_ops():
        lq = qm.layers[op.name]
        if lq.weight_spec.scheme != "uniform":
            continue
        w = qm.graph.tensor(op.inputs[1]).data
        x_f = np.concatenate(float_inputs[op.inputs[0]])
        x_q = np.concatenate(_partial_run(qm, calibration, op.name, {op.inputs[0]})[op.inputs[0]])
        if not qm.dynamic:
            x_q = qm.tensor_quant(op.inputs[0]).fake(x_q)
        rows_f, rows_q = layer_rows(op, x_f, w.shape), layer_rows(op, x_q, w.shape)
        m = rows_f.shape[-2]
        if m > spec.max_rows:
            pick = np.sort(np.random.default_rng(spec.seed).choice(m, spec.max_rows, replace=False))
            rows_f, rows_q = rows_f[..., pick, :], rows_q[..., pick, :]
        fmt = lq.weight_spec.fmt
        lq.weight.values, lq.adaround = adaround(
            weight_rows(w, op.kind), lq.weight, rows_q, rows_f, spec, fmt.min, fmt.max
        )


def linear_output(op: Op, x: np.ndarray, w: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """A MAC op's pre-activation output (float) for input ``x`` and weights ``w``, in NHWC / [M, N]."""
    a = op.attrs
    if op.kind == "fully_connected":
        y = x.reshape(-1, w.shape[1]) @ w.T
        return y + bias if bias is not None else y
    xn = float_core.to_nhwc(x, op)
    if op.kind == "conv2d":
        return float_core.conv2d_nhwc(
            xn,
            w,
            bias,
            stride=a["stride"],
            padding=a["padding"],
            dilation=a["dilation"],
            groups=a.get("groups", 1),
        )
    return float_core.depthwise_nhwc(
        xn,
        w,
        bias,
        stride=a["stride"],
        padding=a["padding"],
        dilation=a["dilation"],
        depth_multiplier=a.get("depth_multiplier", 1),
    )


def _bias_correct_all(qm: QuantizedModel, calibration: np.ndarray) -> None:
    """Empirical bias correction: per layer, in order, on the model quantized so far."""
    float_inputs = record(qm.reference, calibration, {op.inputs[0] for op in qm.mac_ops()})
    for op in qm.mac_ops():
        lq = qm.layers[op.name]
        w_t = qm.graph.tensor(op.inputs[1])
        x_f = np.concatenate(float_inputs[op.inputs[0]])
        x_q = np.concatenate(_partial_run(qm, calibration, op.name, {op.inputs[0]})[op.inputs[0]])
        if not qm.dynamic:
            x_q = qm.tensor_quant(op.inputs[0]).fake(x_q)
        ref_w = qm.reference.tensor(op.inputs[1]).data
        y_f = linear_output(op, x_f, ref_w, None)
        w_q = rows_to_weight(lq.weight.dequantized(), op.kind, w_t.data.shape)
        y_q = linear_output(op, x_q, w_q, None)
        err = (y_q - y_f).reshape(-1, y_f.shape[-1]).mean(axis=0)
        correct_bias(qm.graph, op, err.astype(np.float32))


# ---------------------------------------------------------------- the integer graphs
def _weight_tensor(name: str, op: Op, lq: LayerQuant, shape: tuple[int, ...]) -> Tensor:
    values = rows_to_weight(lq.weight.values, op.kind, shape)
    big = max(abs(int(values.min())), abs(int(values.max()))) > 127 or lq.weight.bits > 8
    dtype = np.dtype(np.int16 if big else np.int8)
    axis = 2 if op.kind == "depthwise_conv2d" else 0
    scale = lq.weight.scale.astype(np.float32)
    per_channel = scale.size > 1
    quant = QuantInfo(
        scale.reshape(-1) if scale.ndim == 1 else scale,
        np.atleast_1d(lq.weight.zero).astype(np.int64)
        if per_channel
        else np.atleast_1d(lq.weight.zero.ravel()[0]).astype(np.int64),
        axis if per_channel else None,
    )
    return Tensor(name, tuple(values.shape), dtype, quant, values.astype(dtype), lq.weight.bits)


def _integer_graph(qm: QuantizedModel) -> Graph:
    """The static integer graph: quantize -> integer ops (codes between them) -> dequantize."""
    g = qm.graph
    tensors: dict[str, Tensor] = {}
    ops_out: list[Op] = []
    for name in g.inputs:
        src = g.tensor(name)
        tensors[name] = Tensor(name, src.shape, np.dtype(np.float32))
    for name, t in g.tensors.items():
        tq = qm.tensor_quant(name)
        if t.is_constant or tq is None:
            continue
        tensors[qname(name)] = Tensor(
            qname(name),
            t.shape,
            tq.fmt.storage_dtype,
            QuantInfo(np.array([tq.scale], np.float32), np.array([tq.zero], np.int64)),
            None,
            tq.fmt.bits if tq.fmt.bits < tq.fmt.storage_dtype.itemsize * 8 else None,
        )
    for name in g.inputs:
        ops_out.append(Op(f"quantize:{name}", "quantize", [name], [qname(name)], {}))
    for op in g.ops:
        attrs = dict(op.attrs)
        kind = op.kind
        lq = qm.layers.get(op.name)
        if lq is not None:
            w_name = qname(op.inputs[1])
            tensors[w_name] = _weight_tensor(w_name, op, lq, g.tensor(op.inputs[1]).data.shape)
            inputs = [qname(op.inputs[0]), w_name]
            acc = lq.accumulator
            attrs["accumulator"] = ops.Accumulator(IntFormat(acc.bits), acc.overflow)
            if lq.weight.lut is not None:
                attrs["weight_codebook"] = lq.weight.lut
            if lq.weight.granularity == "per_group":
                kind = f"{op.kind}_per_group"
                attrs["group_size"] = lq.weight.group_size
                bias = _float_bias(g, op, lq.weight.values.shape[0])
                b_name = f"{op.name}#bias_f32"
                tensors[b_name] = Tensor(b_name, bias.shape, np.dtype(np.float32), None, bias)
                inputs.append(b_name)
            else:
                b_name = f"{op.name}#bias#q"
                codes = lq.bias_codes.astype(np.int32)
                tensors[b_name] = Tensor(
                    b_name,
                    codes.shape,
                    np.dtype(np.int32),
                    QuantInfo(lq.bias_scale, np.zeros(1, np.int64), 0),
                    codes,
                )
                inputs.append(b_name)
        elif not _on_integer_kernel(op, qm.recipe, qm.tensors, qm.alias):
            _float_island(qm, op, tensors, ops_out)
            continue
        else:
            inputs = [_integer_input(qm, n, tensors) for n in op.inputs if n]
        ops_out.append(Op(op.name, kind, inputs, [qname(op.outputs[0])], attrs))
    for name in g.outputs:
        tensors[name] = Tensor(name, g.tensor(name).shape, np.dtype(np.float32))
        ops_out.append(Op(f"dequantize:{name}", "dequantize", [qname(name)], [name], {}))
    out = Graph(tensors, ops_out, list(g.inputs), list(g.outputs), g.source, g.format)
    out.check()
    return out


def _integer_input(qm: QuantizedModel, name: str, tensors: dict[str, Tensor]) -> str:
    """The integer graph's name for input ``name`` of a non-MAC op: codes of an activation or of a
    quantized constant; other constants (indices, paddings) as they are."""
    t = qm.graph.tensor(name)
    if not t.is_constant:
        return qname(name)
    tq = qm.tensors.get(name)
    if tq is None:
        tensors[name] = t
        return name
    codes = ops.quantize(t.data, tq.scale, tq.zero, tq.fmt)
    tensors[qname(name)] = Tensor(
        qname(name),
        t.shape,
        tq.fmt.storage_dtype,
        QuantInfo(np.array([tq.scale], np.float32), np.array([tq.zero], np.int64)),
        codes,
    )
    return qname(name)


def _float_island(qm: QuantizedModel, op: Op, tensors: dict[str, Tensor], ops_out: list[Op]) -> None:
    """``op`` in float32 between ``dequantize`` of its inputs and ``quantize`` of its output."""
    inputs = []
    for name in (n for n in op.inputs if n):
        t = qm.graph.tensor(name)
        if t.is_constant:
            tensors[name] = t
            inputs.append(name)
            continue
        real = f"{name}#f"
        if real not in tensors:
            tensors[real] = Tensor(real, t.shape, np.dtype(np.float32))
            ops_out.append(Op(f"dequantize#f:{name}", "dequantize", [qname(name)], [real], {}))
        inputs.append(real)
    out = op.outputs[0]
    tensors[f"{out}#f"] = Tensor(f"{out}#f", qm.graph.tensor(out).shape, np.dtype(np.float32))
    ops_out.append(Op(op.name, "float_op", inputs, [f"{out}#f"], {**op.attrs, "op": op.kind}))
    ops_out.append(Op(f"quantize#f:{out}", "quantize", [f"{out}#f"], [qname(out)], {}))


def _dynamic_graph(qm: QuantizedModel, fake: bool) -> Graph:
    """Dynamic quantization: float tensors between layers; MAC ops quantize their input per sample at run
    time and multiply with static integer weights (``fake``: the same in float arithmetic)."""
    g = copy_graph(qm.graph)
    outliers = qm.recipe.outliers
    for op in g.ops:
        lq = qm.layers.get(op.name)
        if lq is None:
            continue
        w_name = qname(op.inputs[1])
        float_w = g.tensor(op.inputs[1]).data
        g.tensors[w_name] = _weight_tensor(w_name, op, lq, float_w.shape)
        op.inputs[1] = w_name
        op.kind = f"dynamic_{op.kind}"
        acc = lq.accumulator
        op.attrs.update(
            activation_bits=lq.input_spec.bits,
            symmetric=lq.input_spec.symmetric,
            fake=fake,
            accumulator=ops.Accumulator(IntFormat(acc.bits), acc.overflow),
        )
        if outliers is not None and op.kind != "dynamic_depthwise_conv2d":
            op.attrs.update(
                outlier_threshold=outliers.threshold,
                outlier_bits=outliers.bits,
                float_weight_rows=weight_rows(float_w, op.kind.removeprefix("dynamic_")),
            )
    return g
