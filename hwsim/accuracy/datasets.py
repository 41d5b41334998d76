"""Evaluation data that ships with a PyPI package, so accuracy runs offline: scikit-learn's digits.

The split is fixed here and used by the training scripts in ``workloads/`` and by every evaluation:
a permutation of the 1,797 samples from ``numpy.random.default_rng(0)`` (PCG64 is stable across numpy
versions); the first 1,257 (70 %) train, the last 540 (30 %) test. Calibration uses the first 256
training samples (calibration data is training data, never test data). Pixels 0..16 are divided by 16.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.errors import ConfigError, RuntimeUnavailable

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
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeUnavailable(f"the built-in workloads use scikit-learn's digits: {exc}") from exc
    digits = load_digits()
    order = np.random.default_rng(SPLIT_SEED).permutation(len(digits.target))
    parts = {"train": order[:TRAIN_SIZE], "calibration": order[:CALIBRATION_SIZE], "test": order[TRAIN_SIZE:]}
    if part not in parts:
        raise ConfigError(f"part: expected one of {', '.join(parts)} (got {part!r})")
    if layout not in ("image", "flat"):
        raise ConfigError(f"layout: expected 'image' or 'flat' (got {layout!r})")
    idx = parts[part]
    x = (digits.data[idx] / 16.0).astype(np.float32)
    x = x.reshape(-1, 1, 8, 8) if layout == "image" else x.reshape(-1, 64)
    return Split(np.ascontiguousarray(x), digits.target[idx].astype(np.int64))
