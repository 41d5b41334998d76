"""Non-uniform weight quantizers, each expressed as integer values the MAC array multiplies with.

- ``log2``: sign and a (bits - 1)-bit exponent code: magnitudes 2**0 .. 2**-(n-1) of the channel's
  scale, or zero (n = 2**(bits-1) - 1). As integers they are 0, +-1, +-2, ... +-2**(n-1) with scale
  max|w| / 2**(n-1), so a multiply is a shift; bits 3..5 fit int8/int16 values.
- ``kmeans``: a per-output-channel codebook of 2**bits centroids (1-D Lloyd, quantile start, so
  deterministic); centroids are stored as int8 values with one scale per channel, and each weight stores
  its centroid index. The MAC array sees ``lut[index]``: the integer path runs them exactly.
- ``binary``: {-a, +a} with a = mean |w| per channel (XNOR-Net); values +-1.
- ``ternary``: {-a, 0, +a}, threshold 0.7 mean |w| and a the mean |w| above it (Ternary Weight Networks).

Every scheme runs on the integer path (values in int8/int16 containers, per-channel scales); the fake-quant
path uses the same values, so the two agree up to the requantizer's rounding.
"""

from __future__ import annotations

import numpy as np

from hwsim.numerics.formats import IntFormat
from hwsim.quant.calibrate import WeightQuant
from hwsim.quant.recipe import WeightSpec

_EPS = np.float32(1e-12)


def _channel_max(rows: np.ndarray, per_tensor: bool) -> np.ndarray:
    m = np.abs(rows).max(axis=1) if not per_tensor else np.full(rows.shape[0], np.abs(rows).max())
    return np.maximum(m, _EPS).astype(np.float32)


def quantize_nonuniform(rows: np.ndarray, spec: WeightSpec) -> WeightQuant:
    """Integer weight values for rows [C, K] under a non-uniform ``spec.scheme``."""
    fn = {
        "log2": log2_weights,
        "kmeans": kmeans_weights,
        "binary": binary_weights,
        "ternary": ternary_weights,
    }
    return fn[spec.scheme](np.asarray(rows, np.float32), spec.bits, spec.granularity == "per_tensor")


def log2_weights(rows: np.ndarray, bits: int, per_tensor: bool = False) -> WeightQuant:
    """Power-of-two levels: each |w| goes to the nearest of {0} U {m 2**-j, j = 0..n-1} (m = channel max)."""
    n = (1 << (bits - 1)) - 1
    top = 1 << (n - 1)
    scale = (_channel_max(rows, per_tensor) / np.float32(top)).astype(np.float32)
    levels = np.array([0] + [1 << j for j in range(n)], np.int64)  # integer magnitudes, ascending
    mags = np.abs(rows) / scale[:, None]
    mids = (levels[1:] + levels[:-1]) / 2.0
    idx = np.searchsorted(mids, mags)  # nearest level (ties go up)
    values = np.sign(rows).astype(np.int64) * levels[idx]
    index = np.where(rows < 0, -idx, idx)  # sign and exponent code
    fmt_bits = 8 if top <= 127 else 16
    return WeightQuant(
        values,
        scale,
        np.zeros_like(scale, np.int64),
        "per_channel",
        None,
        fmt_bits,
        index,
        np.concatenate([-levels[:0:-1], levels]),
    )


def kmeans_1d(values: np.ndarray, k: int, iterations: int = 30) -> np.ndarray:
    """Centroids of 1-D k-means (Lloyd) started at the quantiles, sorted; deterministic."""
    v = np.sort(values.astype(np.float64))
    centroids = np.quantile(v, (np.arange(k) + 0.5) / k)
    for _ in range(iterations):
        edges = (centroids[1:] + centroids[:-1]) / 2
        assign = np.searchsorted(edges, v)
        sums = np.bincount(assign, v, minlength=k)
        counts = np.bincount(assign, minlength=k)
        new = np.where(counts > 0, sums / np.maximum(counts, 1), centroids)
        if np.allclose(new, centroids):
            break
        centroids = np.sort(new)
    return centroids


def kmeans_weights(rows: np.ndarray, bits: int, per_tensor: bool = False) -> WeightQuant:
    """A 2**bits-entry codebook per channel (or one per tensor), centroids held as int8 values."""
    k = 1 << bits
    fmt = IntFormat(8, narrow_range=True)
    c = rows.shape[0]
    groups = [rows.ravel()] if per_tensor else list(rows)
    values = np.zeros(rows.shape, np.int64)
    index = np.zeros(rows.shape, np.int64)
    scales = np.zeros(c, np.float32)
    luts = []
    for g, data in enumerate(groups):
        cent = kmeans_1d(data, min(k, np.unique(data).size))
        scale = np.float32(max(np.abs(cent).max(), 1e-12) / fmt.max)
        lut = np.clip(np.rint(cent / scale), fmt.min, fmt.max).astype(np.int64)
        edges = (cent[1:] + cent[:-1]) / 2
        idx = np.searchsorted(edges, data)
        sl = slice(None) if per_tensor else g
        if per_tensor:
            index, values, scales[:] = idx.reshape(rows.shape), lut[idx].reshape(rows.shape), scale
        else:
            index[sl], values[sl], scales[sl] = idx, lut[idx], scale
        luts.append(np.pad(lut, (0, k - lut.size), constant_values=0))
    return WeightQuant(values, scales, np.zeros(c, np.int64), "per_channel", None, 8, index, np.stack(luts))


def binary_weights(rows: np.ndarray, bits: int = 1, per_tensor: bool = False) -> WeightQuant:
    """sign(w) with scale mean |w| per channel (XNOR-Net's optimal scale for a fixed sign)."""
    a = np.abs(rows).mean(axis=1) if not per_tensor else np.full(rows.shape[0], np.abs(rows).mean())
    scale = np.maximum(a, _EPS).astype(np.float32)
    values = np.where(rows >= 0, 1, -1).astype(np.int64)
    return WeightQuant(
        values,
        scale,
        np.zeros(rows.shape[0], np.int64),
        "per_channel",
        None,
        2,
        (values > 0).astype(np.int64),
        np.array([-1, 1]),
    )


def ternary_weights(rows: np.ndarray, bits: int = 2, per_tensor: bool = False) -> WeightQuant:
    """{-a, 0, a}: threshold 0.7 mean |w|, a = mean |w| over the weights above it (Li et al., 2016)."""
    mags = np.abs(rows)
    if per_tensor:
        delta = np.full((rows.shape[0], 1), 0.7 * mags.mean())
    else:
        delta = 0.7 * mags.mean(axis=1, keepdims=True)
    keep = mags > delta
    if per_tensor:
        a = np.full(rows.shape[0], mags[keep].mean() if keep.any() else 0.0)
    else:
        a = np.where(keep.any(axis=1), (mags * keep).sum(axis=1) / np.maximum(keep.sum(axis=1), 1), 0.0)
    values = (np.sign(rows) * keep).astype(np.int64)
    return WeightQuant(
        values,
        np.maximum(a, _EPS).astype(np.float32),
        np.zeros(rows.shape[0], np.int64),
        "per_channel",
        None,
        2,
        values + 1,
        np.array([-1, 0, 1]),
    )
