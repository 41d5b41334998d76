"""Fused layers: the MAC array and the requantizer in one kernel, every check done once.

A runtime prepares a layer once (packs its weights, computes its requantizer, proves that its accumulator
cannot overflow) and then runs it many times. The public API is three prepared layers, :class:`FusedGemm`,
:class:`FusedConv` and :class:`FusedDepthwise`: each is built for the range its inputs can span (their
dtype's, for a model, see :func:`dtype_range`; the data's own, for one call) and is called on input codes.
``prepare`` returns None unless that range proves that no partial sum can leave the register: only then can
the order of the additions not matter, so that the vectorised kernels give the exact sum. Otherwise
:mod:`hwsim.numerics.quantized` runs the ordered kernels of :mod:`hwsim.numerics.ops` and then the
requantizer, which is exact for any input.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field

import numba
import numpy as np

from hwsim.errors import ConfigError
from hwsim.numerics import kernels_fused, kernels_simd, ops, reference_fused, reference_simd, simd
from hwsim.numerics.kernel_records import read_only
from hwsim.numerics.ops import Accumulator, OutputStage, PackedWeights
from hwsim.numerics.threads import blas_limited, single_threaded_blas

_TILE_FLOATS = 1 << 15  # float32 inputs or products per tile of the fused GEMM (they stay in L2)
_NO_ROWS = np.zeros(0, np.int64)


def _impl():
    return reference_fused if os.environ.get("HWSIM_REFERENCE") == "1" else kernels_fused


def _simd_impl():
    return reference_simd if os.environ.get("HWSIM_REFERENCE") == "1" else kernels_simd


def dtype_range(dtype) -> tuple[int, int]:
    """The codes an integer dtype can hold: the input range a model's layer must be prepared for."""
    info = np.iinfo(dtype)
    return int(info.min), int(info.max)


@dataclass(frozen=True)
class FusedGemm:
    """x [M, K] -> requantized codes [M, N], prepared for inputs in a known range.

    Three engines, the fastest that is exact for the prepared range: the SIMD kernel on VNNI bytes or
    AVX2 int16 pairs (``kernels_simd``), float32 BLAS tiles where one product is exact
    (``gemm_requantize``), else integer products and the requantizer (``requantize_gemm``).
    """

    packed: PackedWeights
    correction: np.ndarray  # b - zx sum w + K zx zw per column; int32 when every sum fits it
    stage: OutputStage
    x_range: tuple[int, int]  # the inputs it was prepared for
    blas: bool  # one float32 BLAS product is exact: K max|x| max|w| < 2**24
    simd_isa: str | None  # the SIMD kernel's instruction (None: not used)
    simd_offset: int  # added to x for the SIMD kernel
    simd_correction: np.ndarray | None  # the correction for inputs x + simd_offset
    _tiles: dict = field(default_factory=dict, compare=False, repr=False)  # M -> (rows per tile, panels)
    # (M, threads) -> the SIMD kernel's packed blocks, rows per tile and column chunks
    _simd_tiles: dict = field(default_factory=dict, compare=False, repr=False)

    @functools.cached_property
    def _stage_args(self):
        """The requantizer as the kernels take it, made once (a layer runs it on every call)."""
        return self.stage.kernel_args()

    @functools.cached_property
    def _correction64(self):
        """The correction for 64-bit raw sums, made once."""
        return read_only(self.correction.astype(np.int64))

    @classmethod
    def prepare(
        cls,
        packed: PackedWeights,
        bias: np.ndarray,
        x_zero_point: int,
        stage: OutputStage,
        x_range: tuple[int, int],
        accumulator: Accumulator = Accumulator(),
    ) -> "FusedGemm | None":
        """The fused layer, or None when inputs in ``x_range`` could overflow ``accumulator``."""
        stage.check(packed.w.shape[1])
        zx = int(x_zero_point)
        bound = ops.gemm_bound(packed, bias, zx, x_range)
        if not ops.order_free(bound, accumulator):
            return None
        row_dtype = np.int32 if bound < 1 << 31 else np.int64  # int32 rows run on twice the lanes
        correction = read_only(ops.zero_point_correction(packed, bias, zx).astype(row_dtype))
        max_x = max(abs(x_range[0]), abs(x_range[1]))
        blas = packed.as_float is not None and packed.w.shape[0] * max_x * packed.max_abs < ops.FLOAT32_EXACT
        offset = simd.input_offset(packed.w, x_range)
        if offset is None:
            return cls(packed, correction, stage, tuple(x_range), blas, None, 0, None)
        simd_correction = read_only(ops.zero_point_correction(packed, bias, zx + offset).astype(row_dtype))
        return cls(
            packed, correction, stage, tuple(x_range), blas, simd.instruction(), offset, simd_correction
        )

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Output codes for ``x``, an [M, K] integer array within the prepared range."""
        x = np.ascontiguousarray(x)
        if x.ndim != 2 or x.shape[1] != self.packed.w.shape[0]:
            raise ConfigError(f"x: expected shape [M, {self.packed.w.shape[0]}] (got {x.shape})")
        _check_range(x, self.x_range)
        return self.run_trusted(x)

    def run_trusted(self, x: np.ndarray) -> np.ndarray:
        """:meth:`__call__` without its checks, for a caller that knows ``x`` fits: C-contiguous, the
        layer's depth, within the prepared range (a layer prepared for this very data's range)."""
        rows, cols = x.shape[0], self.packed.w.shape[1]
        x, zw = read_only(x), self.packed.w_zero_point
        out = np.empty((rows, cols), self.stage.dtype)
        if self.simd_isa is not None:
            key = (rows, numba.get_num_threads())
            tiling = self._simd_tiles.get(key)
            if tiling is None:
                blocks = self.packed.simd_blocks(self.simd_isa)
                tiling = self._simd_tiles[key] = (blocks, *simd.tiles(rows, blocks.shape[0]))
            blocks, rows_per_tile, chunks = tiling
            return _simd_impl().gemm_requantize_simd(
                x,
                self.simd_offset,
                blocks,
                x.shape[1],
                rows_per_tile,
                chunks,
                self.simd_correction,
                zw,
                self.packed.zw_nonzero,
                *self._stage_args,
                out,
            )
        row_sum = x.sum(axis=1, dtype=np.int64) if self.packed.zw_nonzero else _NO_ROWS
        if self.blas and rows >= ops.BLAS_MIN_ROWS:
            tiles = self._tiles.get(rows)
            if tiles is None:
                rows_per_tile, width = gemm_tiles(rows, x.shape[1], cols)
                tiles = self._tiles[rows] = (rows_per_tile, self.packed.float_panels(width))
            args = (x, tiles[1], tiles[0], self.correction, zw, row_sum, self._stage_args, out)
            if blas_limited():
                return _impl().gemm_requantize(*args)
            with single_threaded_blas():
                return _impl().gemm_requantize(*args)
        raw, _ = ops.raw_products(x, self.packed, self.x_range)
        # raw sums that need 64 bits (a uint8 input near its zero point) take 64-bit rows, even where the
        # corrected sums would fit int32
        correction = self._correction64 if raw.dtype == np.int64 else self.correction
        return _impl().requantize_gemm(raw, correction, zw, row_sum, self._stage_args, out)


def _check_range(x: np.ndarray, x_range: tuple[int, int]) -> None:
    """x must be integers inside the range its layer was prepared for: free when its dtype cannot hold
    anything else, one pass over the data otherwise."""
    if not np.issubdtype(x.dtype, np.integer):
        raise ConfigError(f"x: expected integer codes (got dtype {x.dtype})")
    lo, hi = _codes(x.dtype)
    if (
        (lo < x_range[0] or hi > x_range[1])
        and x.size
        and (int(x.min()) < x_range[0] or int(x.max()) > x_range[1])
    ):
        raise ConfigError(f"x: values outside {list(x_range)}, the input range this layer was prepared for")


@functools.lru_cache(maxsize=None)
def _codes(dtype: np.dtype) -> tuple[int, int]:
    """The codes an integer dtype holds (np.iinfo costs more than a small layer's check)."""
    return dtype_range(dtype)


def gemm_tiles(rows: int, depth: int, cols: int) -> tuple[int, int]:
    """(rows per tile, panel width) for ``gemm_requantize``: tiles of about 32K floats of input or output,
    and the columns split into panels when there are too few row tiles to keep every thread busy."""
    rows_per_tile = max(8, _TILE_FLOATS // max(cols, depth))
    wanted = 2 * numba.get_num_threads()
    if -(-rows // rows_per_tile) >= wanted:
        return rows_per_tile, cols
    # few rows: keep them whole (BLAS is slow on very short matrices) and split the columns instead
    width = -(-cols // wanted)
    return rows, min(cols, -(-width // 16) * 16)


@dataclass(frozen=True)
class FusedConv:
    """An ungrouped conv2d (NHWC in, OHWI weights) as im2col (or the pixels themselves) and a FusedGemm."""

    gemm: FusedGemm
    kernel: tuple[int, int]
    in_channels: int
    stride: object
    padding: object
    dilation: object
    x_zero_point: int
    _geometry: dict = field(default_factory=dict, compare=False, repr=False)  # input (h, w) -> ConvGeometry

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Output codes NHWC for ``x`` NHWC within the prepared range."""
        if x.ndim != 4 or x.shape[3] != self.in_channels:
            raise ConfigError(
                f"x: expected NHWC input with {self.in_channels} channels (got shape {x.shape})"
            )
        in_hw = x.shape[1:3]
        geo = self._geometry.get(in_hw)
        if geo is None:
            geo = self._geometry[in_hw] = ops.conv_geometry(
                in_hw, self.kernel, self.stride, self.padding, self.dilation
            )
        cols = ops.conv_columns(x, self.in_channels, geo, 0, 1, self.x_zero_point)
        return self.gemm(cols).reshape(x.shape[0], *geo.out_hw, self.gemm.packed.w.shape[1])


@dataclass(frozen=True)
class FusedDepthwise:
    """A depthwise conv2d straight to output codes in one kernel (int32 sums, then the requantizer)."""

    w: np.ndarray  # [kh, kw, C * depth_multiplier]
    w_zero_point: np.ndarray
    bias: np.ndarray
    stride: object
    padding: object
    dilation: object
    depth_multiplier: int
    x_zero_point: int
    stage: OutputStage
    x_range: tuple[int, int]  # the inputs it was prepared for
    # input (h, w) -> kernel window
    _geometry: dict = field(default_factory=dict, compare=False, repr=False)

    @functools.cached_property
    def _stage_args(self):
        """The requantizer as the kernel takes it, made once."""
        return self.stage.kernel_args()

    @classmethod
    def prepare(
        cls,
        w,
        w_zero_point,
        bias,
        x_zero_point: int,
        stage: OutputStage,
        x_range: tuple[int, int],
        stride,
        padding,
        dilation,
        depth_multiplier: int,
        accumulator: Accumulator = Accumulator(),
    ) -> "FusedDepthwise | None":
        """The fused layer (``w``, ``w_zero_point``, ``bias`` checked by ``ops.depthwise_operands``), or None
        when inputs in ``x_range`` could overflow ``accumulator`` or int32."""
        channels = w.shape[2]
        stage.check(channels)
        if np.shape(w_zero_point) != (channels,) or np.shape(bias) != (channels,):
            raise ConfigError(
                f"w_zero_point, bias: expected {channels} values each (got "
                f"{np.shape(w_zero_point)} and {np.shape(bias)})"
            )
        bound = ops.depthwise_bound(w, w_zero_point, bias, int(x_zero_point), x_range)
        if not (ops.order_free(bound, accumulator) and bound < 1 << 31):
            return None
        return cls(
            read_only(w),
            read_only(w_zero_point),
            read_only(bias),
            stride,
            padding,
            dilation,
            int(depth_multiplier),
            int(x_zero_point),
            stage,
            tuple(x_range),
        )

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Output codes NHWC for ``x`` NHWC within the prepared range."""
        x = np.ascontiguousarray(x)
        if x.ndim != 4 or x.shape[3] * self.depth_multiplier != self.w.shape[2]:
            raise ConfigError(
                f"x: expected NHWC input with {self.w.shape[2] // self.depth_multiplier} "
                "channels "
                f"(got shape {x.shape})"
            )
        _check_range(x, self.x_range)
        in_hw = x.shape[1:3]
        window = self._geometry.get(in_hw)
        if window is None:
            geo = ops.conv_geometry(in_hw, self.w.shape[:2], self.stride, self.padding, self.dilation)
            window = self._geometry[in_hw] = geo.window()
        out = np.empty((x.shape[0], window.out_h, window.out_w, self.w.shape[2]), self.stage.dtype)
        return _impl().depthwise_requantize(
            read_only(x),
            self.w,
            self.x_zero_point,
            self.w_zero_point,
            self.bias,
            window,
            self.depth_multiplier,
            self._stage_args,
            out,
        )
