"""Scores of a model's outputs: top-1 / top-5 against class labels, MSE against real-valued targets,
agreement and output SQNR against the float model (when there are no labels, or for regression and
autoencoders, where top-1 means nothing).

:func:`scores` takes the outputs of each run (``float``, ``fake_quant``, ``integer``; any may be absent,
an already-quantized model has only ``integer``) and returns result columns named ``<run>_<metric>``.
"""

from __future__ import annotations

import numpy as np

RUNS = ("float", "fake_quant", "integer")


def label_kind(labels: np.ndarray | None, outputs_per_sample: int) -> str:
    """``classes`` (one integer label per sample), ``targets`` (real values, as many as the outputs), or
    ``none``.

    >>> label_kind(np.array([3, 1]), 10), label_kind(np.zeros((2, 4), np.float32), 4), label_kind(None, 4)
    ('classes', 'targets', 'none')
    """
    if labels is None:
        return "none"
    labels = np.asarray(labels)
    if labels.ndim == 1 and np.issubdtype(labels.dtype, np.integer):
        return "classes"
    if labels[0].size == outputs_per_sample:
        return "targets"
    return "unusable"


def top_k(logits: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Share of rows whose label is among the ``k`` largest logits (ties: numpy's stable order).

    >>> top_k(np.array([[0.1, 0.7, 0.2], [0.5, 0.1, 0.4]]), np.array([2, 2]), 2)
    1.0
    """
    rows = np.asarray(logits).reshape(len(labels), -1)
    best = np.argsort(-rows, axis=1, kind="stable")[:, :k]
    return float((best == np.asarray(labels)[:, None]).any(axis=1).mean())


def sqnr_db(reference: np.ndarray, test: np.ndarray) -> float:
    """10 log10(sum ref^2 / sum (test - ref)^2); inf when they are equal.

    >>> round(sqnr_db(np.array([1.0, -1.0]), np.array([1.1, -1.1])), 2)
    20.0
    """
    ref = np.asarray(reference, np.float64)
    noise = float(((np.asarray(test, np.float64) - ref) ** 2).sum())
    signal = float((ref**2).sum())
    if noise == 0.0:
        return float("inf")
    return float(10.0 * np.log10(max(signal, 1e-300) / noise))


def scores(outputs: dict[str, np.ndarray], labels: np.ndarray | None) -> dict[str, float]:
    """Result columns for the runs in ``outputs`` (each [N, ...]).

    With class labels: ``<run>_top1``, and ``<run>_top5`` when there are at least 5 classes. With real
    targets: ``<run>_mse``. With a float run: ``<run>_agreement`` (share of samples whose top-1 equals the
    float model's) and ``<run>_sqnr_db`` (output SQNR against the float model) for the quantized runs.
    MSE and SQNR keep 6 significant digits (:func:`_stable`).
    """
    n = len(next(iter(outputs.values())))
    flat = {run: np.asarray(v, np.float64).reshape(n, -1) for run, v in outputs.items()}
    width = next(iter(flat.values())).shape[1]
    kind = label_kind(labels, width)
    out: dict[str, float] = {}
    for run in (r for r in RUNS if r in flat):
        y = flat[run]
        if kind == "classes":
            out[f"{run}_top1"] = top_k(y, labels, 1)
            if width >= 5:
                out[f"{run}_top5"] = top_k(y, labels, 5)
        elif kind == "targets":
            err = y - np.asarray(labels, np.float64).reshape(n, -1)
            out[f"{run}_mse"] = _stable(float((err**2).mean()))
        if run != "float" and "float" in flat:
            out[f"{run}_agreement"] = float((y.argmax(axis=1) == flat["float"].argmax(axis=1)).mean())
            out[f"{run}_sqnr_db"] = _stable(sqnr_db(flat["float"], y))
    return out


def _stable(value: float) -> float:
    """``value`` to 6 significant digits: float32 runs differ in the last bits with the BLAS thread count
    (a Dask worker runs single-threaded), and a results table must not.

    >>> _stable(26.955360939519842), _stable(26.95536013830239), _stable(float("inf"))
    (26.9554, 26.9554, inf)
    """
    return float(f"{value:.6g}") if np.isfinite(value) else value
