"""A fully-connected layer at batch 1: each output one dot product over the weights as stored.

A GEMM kernel keeps a row of accumulators per input row and updates it once per step along K, the right
shape for many rows; with one row (a classifier's last layer at batch 1) that is a load and a store of every
accumulator per weight row. Dot products along K keep each sum in a register instead, as runtimes' GEMV
kernels do. :class:`FewRowsGemm` runs up to :data:`MAX_ROWS` rows that way and hands more to its
:class:`~hwsim.numerics.fused.FusedGemm`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from hwsim.errors import ConfigError
from hwsim.numerics import kernels_fused, ops, reference_fused, vnni
from hwsim.numerics.fused import FusedGemm
from hwsim.numerics.ops import OutputStage, PackedWeights

MAX_ROWS = 4  # rows run as dot products; more go to the GEMM
_NO_ROWS = np.zeros(0, np.int64)


@dataclass(frozen=True)
class FewRowsGemm:
    """A prepared fully-connected layer: few rows as int32 dot products (``gemv_requantize``), more rows
    through ``gemm``."""

    gemm: FusedGemm
    packed: PackedWeights
    correction: np.ndarray  # int32: b - zx sum w + K zx zw per column
    stage: OutputStage
    x_range: tuple[int, int]

    @classmethod
    def wrap(
        cls,
        gemm: FusedGemm,
        packed: PackedWeights,
        bias: np.ndarray,
        x_zero_point: int,
        stage: OutputStage,
        x_range: tuple[int, int],
    ) -> "FewRowsGemm | FusedGemm":
        """``gemm`` (prepared from the same operands, for inputs in ``x_range``) with a few-row path where
        every corrected sum fits int32 and the host has no VNNI byte kernel (whose speed on few rows this
        path has not been measured against); else ``gemm`` itself."""
        if ops.gemm_bound(packed, bias, int(x_zero_point), x_range) >= 1 << 31:
            return gemm
        if vnni.input_offset(packed.w, x_range) is not None:
            return gemm
        correction = ops.zero_point_correction(packed, bias, int(x_zero_point)).astype(np.int32)
        return cls(gemm, packed, correction, stage, tuple(x_range))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Output codes for ``x``, an [M, K] integer array within the prepared range."""
        x = np.ascontiguousarray(x)
        if x.ndim != 2 or not 0 < x.shape[0] <= MAX_ROWS:
            return self.gemm(x)
        depth = self.packed.w.shape[0]
        if x.shape[1] != depth:
            raise ConfigError(f"x: expected shape [M, {depth}] (got {x.shape})")
        if not np.issubdtype(x.dtype, np.integer):
            raise ConfigError(f"x: expected integer codes (got dtype {x.dtype})")
        lo, hi = self.x_range
        if int(x.min()) < lo or int(x.max()) > hi:
            raise ConfigError(f"x: values outside {[lo, hi]}, the input range this layer was prepared for")
        row_sum = x.sum(axis=1, dtype=np.int64) if self.packed.zw_nonzero else _NO_ROWS
        out = np.empty((x.shape[0], self.packed.w.shape[1]), self.stage.dtype)
        impl = reference_fused if os.environ.get("HWSIM_REFERENCE") == "1" else kernels_fused
        args = (self.correction, self.packed.w_zero_point, row_sum, self.stage.kernel_args(), out)
        return impl.gemv_requantize(x, self.packed.transposed, *args)
