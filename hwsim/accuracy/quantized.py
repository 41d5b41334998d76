"""Accuracy of a model that is already quantized (a .tflite, a quantized .onnx, or an integer graph
``hwsim quantize --output`` wrote): its integer outputs on data, under a runtime's semantics.

There is no float model to compare with, so only the integer run is scored
(:func:`hwsim.accuracy.metrics.scores`: top-1 / top-5 against class labels, MSE against real targets).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from hwsim.accuracy.evaluate import AccuracyReport
from hwsim.accuracy.metrics import scores
from hwsim.workload.graph import Graph


def is_quantized(graph: Graph) -> bool:
    """True when the graph computes on integer codes (any tensor carries quantization parameters)."""
    return any(t.quant is not None for t in graph.tensors.values())


def evaluate_quantized(
    model: str | Path | Graph, x: np.ndarray, labels: np.ndarray | None, semantics: str | None = None
) -> AccuracyReport:
    """Scores of the integer run of ``model`` on ``x`` under ``semantics`` (default: the model's own)."""
    from hwsim.importers import default_semantics, load_model
    from hwsim.runtime.infer import run_samples

    t0 = time.perf_counter()
    graph = model if isinstance(model, Graph) else load_model(model)
    sem = semantics or default_semantics(graph)
    out = run_samples(graph, np.asarray(x, np.float32), sem)
    got = scores({"integer": out}, labels)
    nan = float("nan")
    name = graph.source if isinstance(model, Graph) else str(model)
    return AccuracyReport(
        name,
        f"its own quantization, semantics {sem}",
        len(x),
        nan,
        nan,
        got.get("integer_top1", nan),
        nan,
        [],
        time.perf_counter() - t0,
        got,
    )
