"""Evaluation data that ships with hwsim, so accuracy runs offline: the UCI handwritten digits (8x8).

``workloads/digits.npz`` holds the 1,797 samples as scikit-learn 1.9 bundles them (``load_digits``: pixel
counts 0..16, labels 0..9), stored once so that hwsim needs no scikit-learn (258 MB installed) for 45 kB.

The split is fixed here and used by the training scripts in ``workloads/`` and by every evaluation:
a permutation of the 1,797 samples from ``numpy.random.default_rng(0)`` (PCG64 is stable across numpy
versions); the first 1,257 (70 %) train, the last 540 (30 %) test. Calibration uses the first 256
training samples (calibration data is training data, never test data). Pixels 0..16 are divided by 16.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.errors import ConfigError
from hwsim.paths import data_dir

TRAIN_SIZE = 1257
CALIBRATION_SIZE = 256
SPLIT_SEED = 0


@dataclass(frozen=True)
class Split:
    """Inputs and labels of one part of a data set."""

    x: np.ndarray
    y: np.ndarray


def digits_split(part: str, layout: str = "image") -> Split:
    """The digits samples of ``part`` (``train``, ``calibration`` or ``test``).

    ``layout="image"`` gives float32 [N, 1, 8, 8] (NCHW), ``"flat"`` gives [N, 64]; labels are int64.
    """
    pixels, labels = digits()
    order = np.random.default_rng(SPLIT_SEED).permutation(len(labels))
    parts = {"train": order[:TRAIN_SIZE], "calibration": order[:CALIBRATION_SIZE], "test": order[TRAIN_SIZE:]}
    if part not in parts:
        raise ConfigError(f"part: expected one of {', '.join(parts)} (got {part!r})")
    if layout not in ("image", "flat"):
        raise ConfigError(f"layout: expected 'image' or 'flat' (got {layout!r})")
    idx = parts[part]
    x = (pixels[idx].astype(np.float64) / 16.0).astype(np.float32)
    x = x.reshape(-1, 1, 8, 8) if layout == "image" else x.reshape(-1, 64)
    return Split(np.ascontiguousarray(x), labels[idx].astype(np.int64))


def digits() -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 digits: pixel counts uint8 [N, 8, 8] (0..16) and labels uint8 [N]."""
    with np.load(data_dir("workloads") / "digits.npz") as f:
        return f["pixels"], f["labels"]
