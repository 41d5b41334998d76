"""Accuracy of a quantized model: float reference, fake-quant and the integer datapath, side by side.

:func:`evaluate` runs the three on the same inputs and reports top-1 accuracy of each, how often the
fake-quant and integer predictions agree, and per layer the SQNR of both against the float reference and
the integer path's error in LSB of that tensor's grid (the integer output dequantized, minus the float
value, over the scale). The integer numbers come from hwsim's bit-accurate kernels
(:func:`hwsim.runtime.execute.run_graph` under the recipe's semantics), not from fake quantization.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from hwsim.accuracy.metrics import scores, sqnr_db  # noqa: F401  (sqnr_db: hwsim.quant.mixed imports it here)
from hwsim.errors import ConfigError


@dataclass(frozen=True)
class LayerReport:
    """Errors of one quantized tensor against the float reference."""

    tensor: str
    op: str
    kind: str
    sqnr_fake_db: float
    sqnr_int_db: float
    max_err_lsb: float
    mean_abs_err_lsb: float
    int_vs_fake_max_lsb: float


@dataclass
class AccuracyReport:
    """What :func:`evaluate` measured."""

    model: str
    recipe: str
    samples: int
    float_top1: float
    fake_quant_top1: float
    integer_top1: float
    agreement: float
    layers: list[LayerReport] = field(default_factory=list)
    seconds: float = 0.0
    scores: dict[str, float] = field(default_factory=dict)  # hwsim.accuracy.metrics.scores columns

    def table(self) -> str:
        """A plain-text summary: accuracies and the other scores, then one line per layer."""
        lines = [f"{self.model} with {self.recipe}: {self.samples} samples"]
        header = not np.isnan(self.float_top1)
        if header:
            lines.append(
                f"  top-1 float {100 * self.float_top1:.2f} %  fake-quant "
                f"{100 * self.fake_quant_top1:.2f} %"
                f"  integer {100 * self.integer_top1:.2f} %  (fake-quant and integer agree on "
                f"{100 * self.agreement:.2f} %)"
            )
        lines.extend(score_lines(self.scores, skip=("_top1",) if header else ()))
        if self.layers:
            lines.append(
                f"  {'tensor (op)':44s} {'SQNR fq dB':>10s} {'SQNR int dB':>11s} "
                f"{'max|err| LSB':>12s} "
                f"{'mean|err| LSB':>13s} {'int-fq LSB':>10s}"
            )
        for r in self.layers:
            label = f"{r.op} ({r.kind})"[:44]
            lines.append(
                f"  {label:44s} {r.sqnr_fake_db:10.2f} {r.sqnr_int_db:11.2f} {r.max_err_lsb:12.2f} "
                f"{r.mean_abs_err_lsb:13.3f} {r.int_vs_fake_max_lsb:10.2f}"
            )
        return "\n".join(lines)


def score_lines(scores: dict[str, float], skip: tuple[str, ...] = ()) -> list[str]:
    """The scores as indented lines, one per metric, runs side by side (percentages for shares)."""
    lines = []
    for metric in ("top1", "top5", "agreement", "mse", "sqnr_db"):
        cells = [
            (run, v)
            for run in ("float", "fake_quant", "integer")
            if (v := scores.get(f"{run}_{metric}")) is not None and f"_{metric}" not in skip
        ]
        if cells:
            share = metric in ("top1", "top5", "agreement")
            text = "  ".join(
                f"{run.replace('_', '-')} {100 * v:.2f} %" if share else f"{run.replace('_', '-')} {v:.4g}"
                for run, v in cells
            )
            label = {
                "agreement": "top-1 agreement with float",
                "sqnr_db": "output SQNR dB vs float",
                "mse": "MSE vs targets",
                "top5": "top-5",
                "top1": "top-1",
            }[metric]
            lines.append(f"  {label}: {text}")
    return lines


def evaluate(
    qm, x: np.ndarray, labels: np.ndarray | None, *, per_layer: bool = True, batch: int = 1024
) -> AccuracyReport:
    """Float, fake-quant and integer runs of quantized model ``qm`` on ``x``: their scores against
    ``labels`` (class indices, real targets, or None: agreement and SQNR against the float model only,
    :func:`hwsim.accuracy.metrics.scores`) and per-layer errors."""
    from hwsim.runtime.float_exec import run_float

    t0 = time.perf_counter()
    x = np.asarray(x, np.float32)
    if labels is not None:
        labels = np.asarray(labels)
        labels = labels.astype(np.int64).ravel() if np.issubdtype(labels.dtype, np.integer) else labels
        if len(x) != len(labels):
            raise ConfigError(f"labels: {len(labels)} labels for {len(x)} inputs")
    out = qm.graph.outputs[0]
    f_logits, fq_logits, int_logits = [], [], []
    watch = _watched(qm) if per_layer else []
    stats = {name: _Acc() for name, _, _ in watch}
    for start in range(0, len(x), batch):
        xb = x[start : start + batch]
        ref = qm.run_float(xb) if watch else None  # per-layer references only when they are compared
        fq = qm.run_fake_quant(xb)
        it = qm.run_integer(xb)
        f_logits.append(run_float(qm.source, [xb])[qm.source.outputs[0]])
        fq_logits.append(fq[out])
        int_logits.append(it[out])
        for name, _, _ in watch:
            int_val = qm.integer_value(it, name)
            if int_val is not None:
                stats[name].add(ref[name], fq[name], int_val, qm.tensor_quant(name))
    f_l, fq_l, int_l = (np.concatenate(v) for v in (f_logits, fq_logits, int_logits))
    pred_fq = fq_l.reshape(len(x), -1).argmax(axis=1)
    pred_int = int_l.reshape(len(x), -1).argmax(axis=1)
    layers = [stats[name].report(name, op, kind) for name, op, kind in watch if stats[name].n]
    got = scores({"float": f_l, "fake_quant": fq_l, "integer": int_l}, labels)
    nan = float("nan")
    return AccuracyReport(
        str(qm.source.source),
        qm.recipe.name,
        len(x),
        got.get("float_top1", nan),
        got.get("fake_quant_top1", nan),
        got.get("integer_top1", nan),
        float((pred_fq == pred_int).mean()),
        layers,
        time.perf_counter() - t0,
        got,
    )


def _watched(qm) -> list[tuple[str, str, str]]:
    """(tensor, op name, op kind) of each computing op's output."""
    skip = ("flatten", "reshape_to", "reshape", "max_pool2d")
    return [(op.outputs[0], op.name, op.kind) for op in qm.graph.ops if op.kind not in skip]


class _Acc:
    """Running sums for one tensor's SQNR and LSB errors."""

    def __init__(self):
        self.n = 0
        self.signal = self.noise_fq = self.noise_int = 0.0
        self.max_lsb = self.sum_lsb = self.max_int_fq = 0.0

    def add(self, ref, fq, integer, tq) -> None:
        ref, fq, integer = (np.asarray(a, np.float64) for a in (ref, fq, integer))
        self.signal += float((ref**2).sum())
        self.noise_fq += float(((fq - ref) ** 2).sum())
        self.noise_int += float(((integer - ref) ** 2).sum())
        scale = float(tq.scale) if tq is not None else float("nan")  # dynamic tensors have no fixed grid
        err = np.abs(integer - ref) / scale
        self.max_lsb = float(np.fmax(self.max_lsb, err.max(initial=0.0))) if tq is not None else float("nan")
        self.sum_lsb += float(err.sum())
        self.max_int_fq = (
            float(np.fmax(self.max_int_fq, (np.abs(integer - fq) / scale).max(initial=0.0)))
            if tq is not None
            else float("nan")
        )
        self.n += ref.size

    def report(self, name: str, op: str, kind: str) -> LayerReport:
        def db(noise: float) -> float:
            return float("inf") if noise == 0 else 10 * np.log10(max(self.signal, 1e-300) / noise)

        return LayerReport(
            name,
            op,
            kind,
            db(self.noise_fq),
            db(self.noise_int),
            self.max_lsb,
            self.sum_lsb / max(self.n, 1),
            self.max_int_fq,
        )
