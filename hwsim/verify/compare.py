"""``hwsim verify``: run the real runtime and hwsim side by side and compare every op's output.

Two views per op: *chained* (hwsim runs the whole graph on its own values, so a difference propagates)
and *isolated* (hwsim's op is fed the runtime's own input tensors, so a difference is that op's alone).
Together they say where two arithmetics first part and how far the difference travels.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hwsim.errors import ConfigError, RuntimeUnavailable
from hwsim.importers import load_model
from hwsim.runtime.execute import OP_IMPLS, run_graph
from hwsim.numerics.semantics import get_semantics
from hwsim.verify.tflite_runner import RESOLVERS as TFLITE_RESOLVERS
from hwsim.workload.graph import Graph

TARGETS = {"tflite": tuple(TFLITE_RESOLVERS), "onnxruntime": ("onnxruntime",)}


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
        lines = [f"{self.model} vs {self.semantics} ({self.samples} samples): "
                 f"{'BIT-EXACT' if self.outputs_exact else 'MISMATCH'}",
                 f"  {'op':34s} {'elements':>9s} {'exact':>9s} {'max LSB':>8s} {'isolated':>9s} {'iso LSB':>8s}"]
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


def _run_tflite(resolvers: tuple[str, ...], model: Path, inputs: list[np.ndarray],
                folder: Path) -> dict[str, dict[str, np.ndarray] | str]:
    """Each resolver's tensors, or the one-line reason it produced none (a crash of the interpreter)."""
    src = folder / "inputs.npz"
    np.savez(src, **{f"input_{i}": x for i, x in enumerate(inputs)})
    run = subprocess.run([sys.executable, "-m", "hwsim.verify.tflite_runner", ",".join(resolvers), str(model),
                          str(src), str(folder)], capture_output=True, text=True)
    if "No module named" in run.stderr:
        raise RuntimeUnavailable("the TFLite interpreter is not installed (tensorflow or ai-edge-litert)")
    tail = (run.stderr.strip().splitlines() or [f"exit status {run.returncode}"])[-1]
    results: dict[str, dict[str, np.ndarray] | str] = {}
    for resolver in resolvers:
        path = folder / f"{resolver}.npz"
        results[resolver] = dict(np.load(path)) if path.exists() else f"the interpreter failed: {tail}"
    return results


def _run_onnxruntime(model: Path, graph: Graph, inputs: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Run ONNX Runtime (default optimizations) with every integer tensor of hwsim's graph exposed as an output.

    The final outputs come from the unmodified model, so exposing intermediates cannot change them.
    """
    try:
        import onnx
        import onnxruntime
    except ImportError as exc:
        raise RuntimeUnavailable(f"onnxruntime is not installed: {exc}") from None
    proto = onnx.load(str(model))
    names = {v.name for v in proto.graph.output}
    extra = [o for op in graph.ops for o in op.outputs if o not in names and graph.tensor(o).quant is not None]
    for name in extra:
        proto.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    sessions = [onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"]),
                onnxruntime.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])]
    feeds = [{n: x[s] for n, x in zip(graph.inputs, inputs)} for s in range(inputs[0].shape[0])]
    values: dict[str, list] = {}
    for session in sessions:
        wanted = [o.name for o in session.get_outputs()]
        for feed in feeds:
            for name, value in zip(wanted, session.run(wanted, feed)):
                values.setdefault(name, []).append(value)
    return {name: np.stack(v[-len(feeds):] if name not in names else v[:len(feeds)]) for name, v in values.items()}


def compare(graph: Graph, semantics: str, runtime_values: dict[str, np.ndarray],
            inputs: list[np.ndarray]) -> VerifyReport:
    """Compare hwsim under ``semantics`` with the runtime's tensors (by name, or ``t<file index>`` for TFLite)."""
    sem = get_semantics(semantics)
    samples = inputs[0].shape[0]

    def runtime(name):
        key = f"t{graph.file_index[name]}" if graph.file_index else name
        return runtime_values.get(key)

    chained = [run_graph(graph, [x[s] for x in inputs], sem.name) for s in range(samples)]
    report = VerifyReport(graph.source, sem.name, samples)
    for op in graph.ops:
        ours = np.stack([values[op.outputs[0]] for values in chained])
        theirs = runtime(op.outputs[0])
        row = OpComparison(op.name, op.kind, int(ours.size))
        if theirs is not None and theirs.shape == ours.shape:
            diff = np.abs(ours.astype(np.float64) - theirs.astype(np.float64))
            row.exact, row.max_lsb = int((diff == 0).sum()), int(np.ceil(diff.max())) if diff.size else 0
            feeds = [runtime(n) for n in op.inputs if n and not graph.tensor(n).is_constant]
            if all(f is not None for f in feeds):
                iso = []
                for s in range(samples):
                    values = {n: runtime(n)[s] for n in op.inputs if n and not graph.tensor(n).is_constant}
                    iso.append(OP_IMPLS.get(op.kind)(graph, op, values, sem))
                idiff = np.abs(np.stack(iso).astype(np.float64) - theirs.astype(np.float64))
                row.isolated_exact = int((idiff == 0).sum())
                row.isolated_max_lsb = int(np.ceil(idiff.max())) if idiff.size else 0
        report.ops.append(row)
    outputs = [(np.stack([v[o] for v in chained]), runtime(o)) for o in graph.outputs]
    report.outputs_exact = all(t is not None and np.array_equal(ours, t) for ours, t in outputs)
    return report


def verify(model: str | Path, against: str = "tflite", samples: int = 4, inputs: np.ndarray | None = None,
           seed: int = 0) -> list[VerifyReport]:
    """Run ``model`` in each runtime of ``against`` and in hwsim under the matching semantics."""
    model = Path(model)
    graph = load_model(model)
    if against not in TARGETS:
        raise ConfigError(f"--against: expected one of {', '.join(TARGETS)} (got {against!r})")
    if inputs is None:
        feeds = random_inputs(graph, samples, seed)
    else:
        feeds = [np.asarray(inputs)]
        if feeds[0].ndim == len(graph.tensor(graph.inputs[0]).shape):
            feeds = [feeds[0][None]]
    if against == "onnxruntime":
        return [compare(graph, "onnxruntime", _run_onnxruntime(model, graph, feeds), feeds)]
    reports = []
    with tempfile.TemporaryDirectory() as tmp:
        for resolver, values in _run_tflite(TARGETS[against], model, feeds, Path(tmp)).items():
            if isinstance(values, str):
                raise ConfigError(f"{model}: {resolver}: {values}")
            reports.append(compare(graph, resolver, values, feeds))
    return reports
