"""Plain twins of :mod:`hwsim.numerics.kernels_mlas`: MLAS' float32 chains on numpy, each fused multiply-add
built by ``mlas.fma_f32`` (which the tests hold to exact rationals)."""

from __future__ import annotations

import numpy as np

from hwsim.numerics.mlas import fma_f32

_F32 = np.float32


def fma_chains(w: np.ndarray, cols: np.ndarray, start: int, stop: int, s0: int, s1: int) -> np.ndarray:
    """block[b, f, p] = the fused multiply-add chain over k = start .. stop - 1 from 0 of w[f, k] *
    cols[b, k, s0 + p]: MLAS' SGEMM kernel on one K block."""
    block = np.zeros((cols.shape[0], w.shape[0], s1 - s0), _F32)
    for j in range(start, stop):
        block = fma_f32(w[None, :, j : j + 1], cols[:, None, j, s0:s1], block)
    return block


def m1_chains(w: np.ndarray, cols: np.ndarray, acc: np.ndarray) -> np.ndarray:
    """``mlas.sgemm_m1_block``'s groups added to ``acc`` in place."""
    depth, k = w.shape[0], 0
    for size in [4] * (depth // 4) + ([2] if depth % 4 >= 2 else []) + ([1] if depth % 2 else []):
        part = (w[k] * cols[..., k, :]).astype(_F32)
        for j in range(k + 1, k + size):
            part = (part + (w[j] * cols[..., j, :]).astype(_F32)).astype(_F32)
        acc[...] = (part + acc).astype(_F32)
        k += size
    return acc
