"""The records the fused kernels take in place of long argument lists: plain NamedTuples (numba passes a
tuple by value), defined apart from the kernels so that the warm-up can name their numba types without
importing any kernel. The kernels unpack them by position. Every array a kernel only reads reaches it
read-only (:func:`read_only`)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class KernelWindow(NamedTuple):
    """A conv window as the kernels take it: stride, dilation, top and left padding, output size."""

    stride_h: int
    stride_w: int
    dil_h: int
    dil_w: int
    pad_top: int
    pad_left: int
    out_h: int
    out_w: int


class StageArgs(NamedTuple):
    """A layer's requantizer (``ops.OutputStage``) as the kernels take it."""

    multiplier: np.ndarray
    shift: np.ndarray
    scale: np.ndarray
    zero_point: int
    qmin: int
    qmax: int
    kind: int
    tail_start: int
    tail_kind: int


def read_only(a: np.ndarray) -> np.ndarray:
    """``a`` flagged read-only (a view, when ``a`` is writable), as every operand a kernel only reads reaches
    it. numba compiles a kernel once per argument *type*, and read-only is part of an array's type: a model's
    frozen tensors and a fresh array would otherwise each compile the same kernel (5-25 s a signature)."""
    if a.flags.writeable:
        a = a.view()
        a.flags.writeable = False
    return a
