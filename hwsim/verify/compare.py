"""``hwsim verify``: run the real runtime and hwsim side by side and compare every op's output.

Two views per op: *chained* (hwsim runs the whole graph on its own values, so a difference propagates)
and *isolated* (hwsim's op is fed the runtime's own input tensors, so a difference is that op's alone).
Together they say where two arithmetics first part and how far the difference travels.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hwsim.errors import ConfigError, RuntimeUnavailable
from hwsim.importers import load_model
from hwsim.runtime.execute import OP_IMPLS, check_input, run_graph
from hwsim.numerics.semantics import Semantics, get_semantics, resolve
from hwsim.verify.interpreter_process import interpreter_process
from hwsim.verify.tflite_runner import MICRO, family
from hwsim.verify.tflite_runner import RESOLVERS as TFLITE_RESOLVERS
from hwsim.workload.graph import Graph

#: --against target -> the runs it makes (each a semantics name too)
TARGETS = {
    "tflite": tuple(r for r, (which, _) in TFLITE_RESOLVERS.items() if which == "tensorflow"),
    "litert": tuple(r for r, (which, _) in TFLITE_RESOLVERS.items() if which == "litert"),
    MICRO: (MICRO,),
    "onnxruntime": ("onnxruntime",),
}


@dataclass
class OpComparison:
    """How one op's output compares: elements, exact matches and the largest difference in LSB."""

    op: str
    kind: str
    elements: int
    exact: int | None = None
    max_lsb: int | None = None
    isolated_exact: int | None = None
    isolated_max_lsb: int | None = None

    @property
    def observable(self) -> bool:
        """False where the runtime did not expose this tensor (fused or delegated)."""
        return self.exact is not None


@dataclass
class VerifyReport:
    """One runtime (and resolver) against hwsim under the matching semantics."""

    model: str
    semantics: str
    samples: int
    ops: list[OpComparison] = field(default_factory=list)
    outputs_exact: bool = False

    def table(self) -> str:
        """A fixed-width text table, one row per op."""
        lines = [
            f"{self.model} vs {self.semantics} ({self.samples} samples): "
            f"{'BIT-EXACT' if self.outputs_exact else 'MISMATCH'}",
            f"  {'op':34s} {'elements':>9s} {'exact':>9s} {'max LSB':>8s} {'isolated':>9s} {'iso LSB':>8s}",
        ]
        for c in self.ops:
            if not c.observable:
                lines.append(f"  {c.op:34s} {c.elements:9d} {'(not exposed by the runtime)':>37s}")
                continue
            iso = "" if c.isolated_exact is None else f"{c.isolated_exact:9d} {c.isolated_max_lsb:8d}"
            lines.append(f"  {c.op:34s} {c.elements:9d} {c.exact:9d} {c.max_lsb:8d} {iso}")
        return "\n".join(lines)


def random_inputs(graph: Graph, samples: int, seed: int) -> list[np.ndarray]:
    """Seeded inputs stacked over samples: integer codes over the whole range, or floats in [-1, 1]."""
    rng = np.random.default_rng(seed)
    out = []
    for name in graph.inputs:
        t = graph.tensor(name)
        shape = (samples, *[1 if d is None else d for d in t.shape])
        if np.issubdtype(t.dtype, np.integer):
            info = np.iinfo(t.dtype)
            out.append(rng.integers(info.min, int(info.max) + 1, shape).astype(t.dtype))
        else:
            out.append(rng.uniform(-1, 1, shape).astype(t.dtype))
    return out


def _run_tflite(
    resolvers: tuple[str, ...], model: Path, inputs: list[np.ndarray], folder: Path
) -> dict[str, dict[str, np.ndarray] | str]:
    """Each resolver's tensors, or the one-line reason it produced none (a crash of the interpreter), from
    the interpreter's kept process (:mod:`hwsim.verify.interpreter_process`)."""
    src = folder / "inputs.npz"
    np.savez(src, **{f"input_{i}": x for i, x in enumerate(inputs)})
    failure = interpreter_process(family(resolvers[0])).run(resolvers, model, src, folder) or ""
    if "No module named 'tensorflow'" in failure:
        raise RuntimeUnavailable(
            "TensorFlow's TFLite interpreter is not installed (tensorflow-cpu); --against litert runs LiteRT"
        )
    if "No module named 'ai_edge_litert'" in failure:
        raise RuntimeUnavailable("LiteRT's interpreter is not installed (ai-edge-litert)")
    if "No module named 'tflite_micro'" in failure:
        raise RuntimeUnavailable("the TFLite Micro interpreter is not installed (tflite-micro)")
    results: dict[str, dict[str, np.ndarray] | str] = {}
    for resolver in resolvers:
        path = folder / f"{resolver}.npz"
        if path.exists():
            with np.load(path) as tensors:
                results[resolver] = dict(tensors)
        else:
            results[resolver] = f"the interpreter failed: {failure.splitlines()[-1]}"
    return results


def _run_onnxruntime(
    model: Path, graph: Graph, inputs: list[np.ndarray], intra_op_threads: int | None = None
) -> dict[str, np.ndarray]:
    """Run ONNX Runtime (default optimizations; ``intra_op_threads`` threads, else its default) and read every
    tensor hwsim's graph computes.

    The final outputs come from the unmodified model. Intermediate tensors are read from the graph ONNX
    Runtime actually runs: its optimized model, saved and reloaded with optimizations off, so that exposing
    a tensor cannot change which groups it fuses (an exposed int8 QuantizeLinear output would otherwise stay
    int8 and keep the ops after it unfused). hwsim tensors are found there by name, or by walking from mapped
    inputs to the one consumer of the same op type (ONNX Runtime renames the tensors it converts to uint8).
    ONNX Runtime's layout transformer runs convs, pools and what lies between them channels-last (NHWC, with a
    Transpose where the layout changes); such tensors are found through those Transposes and read back in
    hwsim's NCHW. Integer tensors found in neither way are read from the model with extra outputs, as before
    (there ONNX Runtime may run them otherwise: an exposed int8 QuantizeLinear output stays int8).
    """
    try:
        import onnx
        import onnxruntime
    except ImportError as exc:
        raise RuntimeUnavailable(f"onnxruntime is not installed: {exc}") from None
    feeds = [{n: x[s] for n, x in zip(graph.inputs, inputs)} for s in range(inputs[0].shape[0])]
    providers = ["CPUExecutionProvider"]

    def session_options():
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = intra_op_threads or 0
        return options

    with tempfile.TemporaryDirectory() as tmp:
        options = session_options()
        options.optimized_model_filepath = str(Path(tmp) / "optimized.onnx")
        options.log_severity_level = 3  # the warning that a saved optimized graph is specific to this CPU
        session = onnxruntime.InferenceSession(str(model), options, providers=providers)
        optimized = onnx.load(options.optimized_model_filepath)
    names = [o.name for o in session.get_outputs()]
    values: dict[str, np.ndarray] = {
        n: np.stack(v) for n, v in zip(names, zip(*[session.run(names, feed) for feed in feeds]))
    }
    mapping = _align(graph, optimized.graph)
    channels_last = _channels_last(optimized.graph)
    wanted = {h: o for h, o in mapping.items() if h not in values and h not in graph.inputs}
    if wanted:
        present = {v.name for v in optimized.graph.output}
        for name in dict.fromkeys(wanted.values()):
            if name not in present:
                optimized.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
        plain = session_options()
        plain.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
        exposed = onnxruntime.InferenceSession(optimized.SerializeToString(), plain, providers=providers)
        order = [o.name for o in exposed.get_outputs()]
        runs = [dict(zip(order, exposed.run(order, feed))) for feed in feeds]
        if all(np.array_equal(values[n], np.stack([r[n] for r in runs])) for n in names):
            for h, o in wanted.items():
                v = np.stack([r[o] for r in runs])
                values[h] = v.transpose(0, 1, 4, 2, 3) if o in channels_last and v.ndim == 5 else v
    missing = [
        o for op in graph.ops for o in op.outputs if o not in values and graph.tensor(o).quant is not None
    ]
    if missing:
        proto = onnx.load(str(model))
        for name in missing:
            proto.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
        extra = onnxruntime.InferenceSession(
            proto.SerializeToString(), session_options(), providers=providers
        )
        order = [o.name for o in extra.get_outputs()]
        runs = [dict(zip(order, extra.run(order, feed))) for feed in feeds]
        values.update({name: np.stack([r[name] for r in runs]) for name in missing if name in order})
    return values


# hwsim op kind -> the ONNX Runtime node types that compute it in an optimized graph
_ORT_NODES = {
    "quantize": {"QuantizeLinear"},
    "dequantize": {"DequantizeLinear"},
    "fully_connected": {"QLinearMatMul", "QGemm", "MatMulInteger"},
    "qlinear_matmul": {"QLinearMatMul"},
    "qlinear_add": {"QLinearAdd"},
    "add": {"QLinearAdd"},
    "qlinear_mul": {"QLinearMul"},
    "qlinear_softmax": {"QLinearSoftmax"},
    "transpose": {"Transpose"},
    "reshape_to": {"Reshape"},
    "flatten": {"Flatten"},
    "matmul_f32": {"MatMul"},
    "add_f32": {"Add"},
    "sub_f32": {"Sub"},
    "mul_f32": {"Mul"},
    "div_f32": {"Div"},
    "sqrt_f32": {"Sqrt"},
    "relu_f32": {"Relu"},
    "erf_f32": {"Erf"},
    "layer_norm_f32": {"LayerNormalization"},
    "global_avg_pool": {"QLinearGlobalAveragePool"},
    "conv2d": {"QLinearConv"},
    "depthwise_conv2d": {"QLinearConv"},
    "conv2d_f32": {"Conv"},
    "max_pool2d": {"MaxPool", "NhwcMaxPool"},
}
# ONNX Runtime nodes whose output is channels-last: NhwcMaxPool, and those with channels_last=1
_NHWC_NODES = {"NhwcMaxPool"}


def _channels_last(optimized) -> set[str]:
    """The tensors of ONNX Runtime's optimized graph held channels-last (NHWC) where the model has them NCHW:
    outputs of channels-last nodes (NhwcMaxPool, channels_last=1), of the layout transformer's Transposes to
    NHWC that feed one, and of other nodes (not Transposes, Flatten or Reshape) reading such a tensor
    first."""

    def is_nhwc_node(n) -> bool:
        return n.op_type in _NHWC_NODES or any(a.name == "channels_last" and a.i for a in n.attribute)

    readers: dict[str, list] = {}
    for n in optimized.node:
        for i in n.input:
            readers.setdefault(i, []).append(n)
    nhwc: set[str] = set()
    for n in optimized.node:  # the saved graph is in topological order
        if n.op_type == "Transpose":
            perm = next((tuple(a.ints) for a in n.attribute if a.name == "perm"), None)
            if (
                perm == (0, 2, 3, 1)
                and n.input[0] not in nhwc
                and any(is_nhwc_node(r) for r in readers.get(n.output[0], []))
            ):
                nhwc.add(n.output[0])
            continue
        if is_nhwc_node(n) or (n.input and n.input[0] in nhwc and n.op_type not in ("Flatten", "Reshape")):
            nhwc.update(o for o in n.output if o)
    return nhwc


def _align(graph: Graph, optimized) -> dict[str, str]:
    """hwsim tensor name -> the name of the same tensor in ONNX Runtime's optimized graph, where found."""
    nodes = list(optimized.node)
    known = {o for n in nodes for o in n.output} | {v.name for v in optimized.input}
    mapping = {name: name for name in graph.inputs if name in known}
    mapping.update({o: o for op in graph.ops for o in op.outputs if o in known})
    used = set(mapping.values())
    readers: dict[str, list] = {}
    for n in nodes:
        for i in n.input:
            readers.setdefault(i, []).append(n)
    # a tensor and its Transposes (the layout transformer's) stand for the same hwsim tensor
    nhwc = _channels_last(optimized)  # the layout transformer's Transposes lead to or from these
    aliases = {
        t: {t} | {n.output[0] for n in rs if n.op_type == "Transpose" and (t in nhwc or n.output[0] in nhwc)}
        for t, rs in readers.items()
    }
    for op in graph.ops:
        out = op.outputs[0]
        data = [i for i in op.inputs if i and not graph.tensor(i).is_constant]
        if out in mapping or not data or any(d not in mapping for d in data) or op.kind not in _ORT_NODES:
            continue
        wanted = [aliases.get(mapping[d], {mapping[d]}) for d in data]
        found = [
            n
            for a in sorted(wanted[0])
            for n in readers.get(a, [])
            if n.op_type in _ORT_NODES[op.kind]
            and all(w & set(n.input) for w in wanted)
            and n.output[0] not in used
        ]
        if len(found) == 1:
            mapping[out] = found[0].output[0]
            used.add(found[0].output[0])
    return mapping


def _distance(ours: np.ndarray, theirs: np.ndarray) -> np.ndarray:
    """Elementwise |difference|: in units of the last place for floats, in codes for integers (a uint8 tensor
    against ONNX Runtime's int8 copy of it, which it keeps where the tensor is exposed, is shifted by 128)."""
    if np.issubdtype(ours.dtype, np.floating) and np.issubdtype(theirs.dtype, np.floating):

        def ordered(v):
            bits = np.asarray(v, np.float32).view(np.int32).astype(np.int64)
            return np.where(bits < 0, -(bits & 0x7FFFFFFF), bits)

        return np.abs(ordered(ours) - ordered(theirs)).astype(np.float64)
    a, b = ours.astype(np.float64), theirs.astype(np.float64)
    if {ours.dtype, theirs.dtype} == {np.dtype(np.uint8), np.dtype(np.int8)}:
        b = b + (128 if ours.dtype == np.uint8 else -128)
    return np.abs(a - b)


def _as_codes_of(value: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """The runtime's tensor as hwsim's dtype: ONNX Runtime keeps an int8 copy of a tensor hwsim (like ONNX
    Runtime's kernels) holds as uint8 codes shifted by 128, or the reverse; isolated ops need the latter."""
    if {value.dtype, np.dtype(dtype)} == {np.dtype(np.uint8), np.dtype(np.int8)}:
        shift = 128 if dtype == np.uint8 else -128
        return (value.astype(np.int16) + shift).astype(dtype)
    return value


def compare(
    graph: Graph, semantics: str | Semantics, runtime_values: dict[str, np.ndarray], inputs: list[np.ndarray]
) -> VerifyReport:
    """Compare hwsim under ``semantics`` with the runtime's tensors (by name, or ``t<file index>`` for
    TFLite)."""
    sem = resolve(semantics)
    samples = inputs[0].shape[0]

    def runtime(name):
        key = f"t{graph.file_index[name]}" if graph.file_index else name
        return runtime_values.get(key)

    chained = [run_graph(graph, [x[s] for x in inputs], sem) for s in range(samples)]
    report = VerifyReport(graph.source, sem.name, samples)
    for op in graph.ops:
        ours = np.stack([values[op.outputs[0]] for values in chained])
        theirs = runtime(op.outputs[0])
        row = OpComparison(op.name, op.kind, int(ours.size))
        if theirs is not None and theirs.shape == ours.shape:
            diff = _distance(ours, theirs)
            row.exact, row.max_lsb = int((diff == 0).sum()), int(np.ceil(diff.max())) if diff.size else 0
            feeds = [runtime(n) for n in op.inputs if n and not graph.tensor(n).is_constant]
            if all(f is not None for f in feeds):
                iso = []
                for s in range(samples):
                    values = {
                        n: _as_codes_of(runtime(n)[s], graph.tensor(n).dtype)
                        for n in op.inputs
                        if n and not graph.tensor(n).is_constant
                    }
                    iso.append(OP_IMPLS.get(op.kind)(graph, op, values, sem))
                idiff = _distance(np.stack(iso), theirs)
                row.isolated_exact = int((idiff == 0).sum())
                row.isolated_max_lsb = int(np.ceil(idiff.max())) if idiff.size else 0
        report.ops.append(row)
    outputs = [(np.stack([v[o] for v in chained]), runtime(o)) for o in graph.outputs]
    report.outputs_exact = all(t is not None and np.array_equal(ours, t) for ours, t in outputs)
    return report


@dataclass
class Disagreement:
    """Two runtimes' outputs of one op: how many elements differ and by how many LSB at most."""

    op: str
    first: str
    second: str
    elements: int
    differing: int
    max_lsb: int


def runtime_disagreements(graph: Graph, runs: dict[str, dict[str, np.ndarray]]) -> list[Disagreement]:
    """Compare every pair of runtimes op by op, on the tensors both expose (where runtimes part ways)."""
    rows = []
    names = list(runs)

    def value(run, name):
        return run.get(f"t{graph.file_index[name]}" if graph.file_index else name)

    for op in graph.ops:
        for i, first in enumerate(names):
            for second in names[i + 1 :]:
                a, b = value(runs[first], op.outputs[0]), value(runs[second], op.outputs[0])
                if a is None or b is None or a.shape != b.shape:
                    continue
                diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
                if diff.any():
                    rows.append(
                        Disagreement(
                            op.name,
                            first,
                            second,
                            int(a.size),
                            int((diff > 0).sum()),
                            int(np.ceil(diff.max())),
                        )
                    )
    return rows


def disagreement_table(rows: list[Disagreement]) -> str:
    """Text table of where runtimes disagree; says so when they never do."""
    if not rows:
        return "The runtimes agree on every exposed tensor."
    lines = [
        "Runtimes disagree here:",
        f"  {'op':34s} {'runtime A':18s} {'runtime B':18s} {'differ':>9s} {'max LSB':>8s}",
    ]
    lines += [
        f"  {r.op:34s} {r.first:18s} {r.second:18s} {r.differing:>5d}/{r.elements:<5d} {r.max_lsb:8d}"
        for r in rows
    ]
    return "\n".join(lines)


@dataclass
class Verification:
    """The result of ``hwsim verify``: one report per runtime, and where the runtimes disagree."""

    reports: list[VerifyReport]
    disagreements: list[Disagreement]
    skipped: dict[str, str] = field(default_factory=dict)  # runtime -> why it could not run the model

    @property
    def bit_exact(self) -> bool:
        """True when hwsim reproduced every runtime's outputs."""
        return all(r.outputs_exact for r in self.reports)


def _run_onnx_reference(model: Path, graph: Graph, inputs: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Run onnx.reference (the ONNX specification's evaluator), reading every tensor hwsim's graph
    computes."""
    try:
        import onnx
        from onnx.reference import ReferenceEvaluator
    except ImportError as exc:
        raise RuntimeUnavailable(f"onnx is not installed: {exc}") from None
    proto = onnx.load(str(model))
    foreign = sorted({n.op_type for n in proto.graph.node if n.domain not in ("", "ai.onnx")})
    if foreign:
        raise ConfigError(
            f"{model}: onnx.reference cannot run the com.microsoft ops {', '.join(foreign)} "
            "(a QOperator model from onnxruntime.quantization); use --against onnxruntime"
        )
    try:
        evaluator = ReferenceEvaluator(proto)
    except Exception as exc:  # onnx.reference lacks many (op, opset) pairs, e.g. DequantizeLinear below 19
        raise ConfigError(f"{model}: onnx.reference cannot run this model: {exc}") from None
    wanted = [o for op in graph.ops for o in op.outputs]
    values: dict[str, list] = {}
    for s in range(inputs[0].shape[0]):
        feed = {n: x[s] for n, x in zip(graph.inputs, inputs)}
        for name in wanted:
            try:
                values.setdefault(name, []).append(evaluator.run([name], feed)[0])
            except Exception:  # a fused tensor that has no name in the ONNX graph
                values.pop(name, None)
                wanted = [w for w in wanted if w != name]
    return {name: np.stack(v) for name, v in values.items()}


FORMAT_TARGETS = {"tflite": ("tflite", "litert", MICRO), "onnx": ("onnxruntime", "onnx-reference")}


def user_feeds(graph: Graph, inputs) -> list[np.ndarray]:
    """The user's samples as one stacked array per model input, checked against the model at the door.

    ``inputs`` is an array (single-input models) or a mapping (an .npz: by input name, else in input order).
    Each array holds one sample shaped like the input, or several along a new first axis, or, for an input
    of batch 1, several along its batch axis. Dtypes must be the input's own (no silent conversion).
    """
    if isinstance(inputs, np.ndarray) or not hasattr(inputs, "keys"):
        arrays = [np.asarray(inputs)]
    else:
        keys = list(inputs.keys())
        arrays = [
            np.asarray(inputs[n if n in keys else keys[i]]) if (n in keys or i < len(keys)) else None
            for i, n in enumerate(graph.inputs)
        ]
    if len(arrays) != len(graph.inputs) or any(a is None for a in arrays):
        raise ConfigError(
            f"--input: the model has {len(graph.inputs)} inputs ({', '.join(graph.inputs)}); "
            f"give one array per input (an .npz keyed by input name)"
        )
    feeds = []
    for name, x in zip(graph.inputs, arrays):
        shape = graph.tensor(name).shape
        if x.ndim == len(shape) and not (shape and shape[0] == 1 and x.shape[0] != 1):
            x = x[None]
        elif x.ndim == len(shape):  # samples along the batch axis of a batch-1 input
            x = x[:, None]
        for sample in x[:1]:
            check_input(graph.tensor(name), sample)
        feeds.append(x)
    if len({x.shape[0] for x in feeds}) > 1:
        raise ConfigError("--input: the arrays hold different numbers of samples")
    return feeds


def verify(
    model: str | Path,
    against: str = "all",
    samples: int = 4,
    inputs=None,
    seed: int = 0,
    intra_op_threads: int | None = None,
) -> Verification:
    """Run ``model`` in each runtime of ``against`` (or all that read its format) and in hwsim under the
    matching semantics; also compare the runtimes with one another, op by op. ``intra_op_threads`` is ONNX
    Runtime's session thread count, the same on both sides (None: ONNX Runtime's default)."""
    model = Path(model)
    graph = load_model(model)
    if intra_op_threads is not None and graph.format != "onnx":
        raise ConfigError(
            f"--ort-threads: sets ONNX Runtime's intra-op threads; {model} is a .{graph.format}"
        )
    valid = FORMAT_TARGETS[graph.format]
    if against != "all" and against not in valid:
        raise ConfigError(
            f"--against: a .{graph.format} model runs in {', '.join(valid)} or all (got {against!r})"
        )
    targets = valid if against == "all" else (against,)
    feeds = random_inputs(graph, samples, seed) if inputs is None else user_feeds(graph, inputs)
    runs: dict[str, dict[str, np.ndarray]] = {}
    skipped: dict[str, str] = {}
    for target in targets:
        if target == "onnxruntime":
            runs["onnxruntime"] = _run_onnxruntime(model, graph, feeds, intra_op_threads)
        elif target == "onnx-reference":
            try:
                runs["onnx-reference"] = _run_onnx_reference(model, graph, feeds)
            except ConfigError as exc:
                if against != "all":
                    raise
                skipped["onnx-reference"] = str(exc)
        else:
            try:
                with tempfile.TemporaryDirectory() as tmp:
                    for resolver, values in _run_tflite(TARGETS[target], model, feeds, Path(tmp)).items():
                        if isinstance(values, str):
                            raise ConfigError(f"{model}: {resolver}: {values}")
                        runs[resolver] = values
            except RuntimeUnavailable as exc:  # under "all": TensorFlow's or LiteRT's may be missing
                if against != "all":
                    raise
                skipped[target] = str(exc)
            except ConfigError as exc:
                if against != "all" or target != MICRO:
                    raise
                skipped[MICRO] = str(exc)
    if {"tflite", "litert"} <= skipped.keys():
        raise RuntimeUnavailable(
            "no TFLite interpreter is installed: ai-edge-litert (LiteRT) or tensorflow-cpu"
        )
    reports = [
        compare(
            graph, get_semantics(name, intra_op_threads if name == "onnxruntime" else None), values, feeds
        )
        for name, values in runs.items()
    ]
    return Verification(reports, runtime_disagreements(graph, runs), skipped)
