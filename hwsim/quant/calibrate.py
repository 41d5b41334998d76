"""Ranges and quantization parameters: activation calibration methods and weight range methods.

Activation ranges come from values recorded on calibration data (:func:`activation_range`): min-max,
moving-average min-max, percentile, MSE-optimal clipping, and entropy (TensorRT's KL-divergence
threshold). Weight ranges are min-max or MSE per tensor, per output channel or per group of
``group_size`` consecutive elements along the reduction axis (:func:`quantize_weight_rows`).
All codes go through :func:`hwsim.numerics.ops.quantize`, so they round and clamp exactly as the
integer path does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.errors import ConfigError
from hwsim.numerics import ops
from hwsim.numerics.formats import IntFormat
from hwsim.quant.recipe import ActivationSpec, WeightSpec

_MAX_SEARCH_VALUES = 200_000  # values an MSE / entropy search looks at (an evenly strided subsample)
_CLIP_RATIOS = np.linspace(0.05, 1.0, 77)


# ---------------------------------------------------------------- activations
def activation_range(batches: list[np.ndarray], spec: ActivationSpec) -> tuple[float, float]:
    """The real range [lo, hi] to quantize a tensor to, from its values on calibration ``batches``."""
    if not batches:
        raise ConfigError("calibration: no calibration batches were recorded")
    method = spec.calibration
    if method == "moving_average":
        lo, hi = float(batches[0].min()), float(batches[0].max())
        for b in batches[1:]:
            lo = spec.momentum * lo + (1 - spec.momentum) * float(b.min())
            hi = spec.momentum * hi + (1 - spec.momentum) * float(b.max())
        return lo, hi
    values = np.concatenate([np.asarray(b, np.float32).ravel() for b in batches])
    lo, hi = float(values.min()), float(values.max())
    if method == "minmax" or lo == hi:
        return lo, hi
    if method == "percentile":
        p_hi = float(np.percentile(values, spec.percentile))
        p_lo = float(np.percentile(values, 100.0 - spec.percentile)) if lo < 0 else lo
        return p_lo, p_hi
    sample = _subsample(values)
    if method == "mse":
        return mse_range(sample, spec.fmt, spec.symmetric, spec.power_of_two)
    if method == "entropy":
        return entropy_range(sample, spec.bits, spec.symmetric)
    raise ConfigError(f"calibration: unknown method {method!r}")  # pragma: no cover - pydantic checks it


def _subsample(values: np.ndarray) -> np.ndarray:
    step = max(1, values.size // _MAX_SEARCH_VALUES)
    return values[::step]


def fake_quantize_range(x: np.ndarray, lo, hi, fmt: IntFormat, symmetric: bool, power_of_two: bool = False):
    """x quantized to the grid of [lo, hi] and back (the float the codes stand for)."""
    scale, zero = ops.qparams_from_range(lo, hi, fmt, symmetric=symmetric, power_of_two=power_of_two)
    return ops.fake_quantize(x, scale, zero, fmt)


def mse_range(
    values: np.ndarray, fmt: IntFormat, symmetric: bool, power_of_two: bool = False
) -> tuple[float, float]:
    """The clipped range [r lo, r hi] (r in 0.05..1) whose quantization has the least squared error."""
    lo, hi = float(values.min()), float(values.max())
    best, best_err = (lo, hi), np.inf
    for r in _CLIP_RATIOS:
        err = float(
            np.mean((fake_quantize_range(values, r * lo, r * hi, fmt, symmetric, power_of_two) - values) ** 2)
        )
        if err < best_err:
            best, best_err = (r * lo, r * hi), err
    return best


def entropy_range(values: np.ndarray, bits: int, symmetric: bool, bins: int = 2048) -> tuple[float, float]:
    """TensorRT's entropy calibration: the threshold T minimising KL(P || Q) between the histogram of |x|
    clipped at T (P) and P merged into the quantization levels of the positive side (Q); range [-T, T] or
    [0, T] for non-negative tensors (clipped to the data's own range)."""
    lo, hi = float(values.min()), float(values.max())
    mags = np.abs(values)
    top = float(mags.max())
    levels = 1 << (bits - 1) if (symmetric or lo < 0) else 1 << bits
    if levels >= bins or top == 0.0:
        return lo, hi
    hist, edges = np.histogram(mags, bins=bins, range=(0.0, top))
    hist = hist.astype(np.float64)
    # NVIDIA's own implementation (pytorch-quantization's entropy calibrator) replaces the first bin by the
    # second: a ReLU output's spike of exact zeros would otherwise dominate KL and pull T down to the
    # smallest candidate, clipping several percent of the values.
    hist[0] = hist[1]
    best_i, best_kl = bins, np.inf
    for i in range(levels, bins + 1, 8):
        p = hist[:i].copy()
        p[-1] += hist[i:].sum()
        q = _merged_into_levels(hist[:i], levels)
        mask = p > 0
        p_n, q_n = p / p.sum(), q / max(q.sum(), 1e-30)
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = p_n[mask] * np.log(p_n[mask] / np.maximum(q_n[mask], 1e-12))
        kl = float(terms.sum())
        if kl <= best_kl:  # ties: the largest threshold, as NVIDIA's implementation takes the last minimum
            best_i, best_kl = i, kl
    threshold = float(edges[best_i])
    return max(lo, -threshold), min(hi, threshold)


def _merged_into_levels(hist: np.ndarray, levels: int) -> np.ndarray:
    """Q of the entropy calibration: ``hist`` split into ``levels`` runs as ``np.array_split`` splits it (the
    first ``len % levels`` runs one bin longer), each run's total spread evenly over its nonempty bins."""
    base, extra = divmod(hist.size, levels)
    sizes = np.full(levels, base)
    sizes[:extra] += 1
    starts = np.cumsum(sizes) - sizes
    nonempty = hist > 0
    totals = np.add.reduceat(hist, starts)  # bin counts: exact integers, so any summation order agrees
    counts = np.add.reduceat(nonempty.astype(np.int64), starts)
    return np.where(nonempty, np.repeat(totals / np.maximum(counts, 1), sizes), 0.0)


# ---------------------------------------------------------------- weights
@dataclass
class WeightQuant:
    """Integer weights of one layer as rows [C, K] (output channel x reduction), with their parameters.

    ``scale``/``zero`` have shape (1,) per tensor, (C,) per channel or (C, G) per group. ``values`` holds the
    integer value each weight multiplies with (what the MAC array sees); for codebook schemes ``index``
    holds the stored index and ``lut`` maps index to value.
    """

    values: np.ndarray
    scale: np.ndarray
    zero: np.ndarray
    granularity: str
    group_size: int | None = None
    bits: int = 8
    index: np.ndarray | None = None
    lut: np.ndarray | None = None

    def dequantized(self) -> np.ndarray:
        """float32 rows the integer weights stand for."""
        return dequantize_rows(self.values, self.scale, self.zero, self.group_size)

    def per_element(self, a: np.ndarray) -> np.ndarray:
        """Broadcast a scale-shaped array to the rows' shape."""
        return expand_rows(a, self.values.shape, self.group_size)


def expand_rows(a: np.ndarray, shape: tuple[int, int], group_size: int | None) -> np.ndarray:
    """(1,), (C,) or (C, G) parameters broadcast to rows [C, K]."""
    a = np.asarray(a)
    if a.ndim == 2:
        return np.repeat(a, group_size, axis=1)[:, : shape[1]]
    if a.size == 1:
        return np.broadcast_to(a.reshape(1, 1), shape)
    return np.broadcast_to(a.reshape(-1, 1), shape)


def dequantize_rows(values, scale, zero, group_size: int | None = None) -> np.ndarray:
    """float32(q - z) * s with per-tensor, per-channel or per-group parameters over rows [C, K]."""
    s = expand_rows(np.asarray(scale, np.float32), values.shape, group_size)
    z = expand_rows(np.asarray(zero, np.int64), values.shape, group_size)
    return (np.float32(1) * (values.astype(np.int64) - z).astype(np.float32) * s).astype(np.float32)


def _blocks(rows: np.ndarray, spec: WeightSpec) -> tuple[np.ndarray, tuple[int, ...]]:
    """Rows cut into the blocks that share one scale: [B, L], and the parameter shape."""
    c, k = rows.shape
    if spec.granularity == "per_tensor":
        return rows.reshape(1, -1), (1,)
    if spec.granularity == "per_channel":
        return rows, (c,)
    gs = spec.group_size
    groups = -(-k // gs)
    padded = np.zeros((c, groups * gs), rows.dtype)
    padded[:, :k] = rows
    return padded.reshape(c * groups, gs), (c, groups)


def quantize_weight_rows(rows: np.ndarray, spec: WeightSpec, rounding: str = "half_even") -> WeightQuant:
    """Uniform integer weights for rows [C, K] under ``spec`` (range min-max or MSE)."""
    rows = np.asarray(rows, np.float32)
    if spec.scheme != "uniform":
        from hwsim.quant.nonuniform import quantize_nonuniform

        return quantize_nonuniform(rows, spec)
    fmt = spec.fmt
    blocks, pshape = _blocks(rows, spec)
    lo, hi = blocks.min(axis=1).astype(np.float64), blocks.max(axis=1).astype(np.float64)
    if spec.range == "mse":
        lo, hi = _mse_block_ranges(blocks, lo, hi, spec)
    scale, zero = ops.qparams_from_range(
        lo, hi, fmt, symmetric=spec.symmetric, power_of_two=spec.power_of_two
    )
    q = ops.quantize(blocks, scale, zero, fmt, axis=0, rounding=rounding).astype(np.int64)
    c, k = rows.shape
    values = q.reshape(c, -1)[:, :k] if spec.granularity != "per_tensor" else q.reshape(c, k)
    return WeightQuant(
        values, scale.reshape(pshape), zero.reshape(pshape), spec.granularity, spec.group_size, spec.bits
    )


def _mse_block_ranges(blocks: np.ndarray, lo: np.ndarray, hi: np.ndarray, spec: WeightSpec):
    """Per block, the clip ratio (0.05..1 of the min-max range) with the least squared weight error."""
    fmt = spec.fmt
    best_err = np.full(blocks.shape[0], np.inf)
    best_lo, best_hi = lo.copy(), hi.copy()
    for r in _CLIP_RATIOS:
        scale, zero = ops.qparams_from_range(
            r * lo, r * hi, fmt, symmetric=spec.symmetric, power_of_two=spec.power_of_two
        )
        fq = ops.fake_quantize(blocks, scale, zero, fmt, axis=0)
        err = ((fq - blocks) ** 2).sum(axis=1)
        better = err < best_err
        best_err[better] = err[better]
        best_lo[better], best_hi[better] = r * lo[better], r * hi[better]
    return best_lo, best_hi


# ---------------------------------------------------------------- weight layouts
def weight_rows(w: np.ndarray, kind: str) -> np.ndarray:
    """A layer's weights as rows [C_out, K] in the order the MAC array reduces them.

    conv2d OHWI -> [O, kh*kw*I] (im2col's (ky, kx, c) order); depthwise [kh, kw, C] -> [C, kh*kw];
    fully_connected [N, K] as is.
    """
    if kind == "conv2d":
        return w.reshape(w.shape[0], -1)
    if kind == "depthwise_conv2d":
        return w.reshape(-1, w.shape[-1]).T
    if kind == "fully_connected":
        return w
    raise ConfigError(f"op kind {kind!r} has no weights hwsim quantizes")


def rows_to_weight(rows: np.ndarray, kind: str, shape: tuple[int, ...]) -> np.ndarray:
    """Inverse of :func:`weight_rows`."""
    if kind == "depthwise_conv2d":
        return np.ascontiguousarray(rows.T.reshape(shape))
    return np.ascontiguousarray(rows.reshape(shape))
