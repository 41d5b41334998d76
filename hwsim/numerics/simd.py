"""When and how hwsim's integer SIMD GEMM (``kernels_simd``) runs, and on which instruction.

Two instructions give exact integer dot products on x86, and the kernel is written for both:

- ``vnni``: AVX-512 VNNI ``vpdpbusd`` multiplies unsigned by signed bytes, four products per int32 lane.
  int8 inputs are shifted by +128 into uint8 (the zero point moves with them, so the integer result is
  unchanged), uint8 inputs go as they are; the weights must be int8.
- ``avx2``: AVX2 ``vpmaddwd`` multiplies int16 by int16 and adds pairs into int32 lanes (what XNNPACK's
  AVX2 int8 GEMMs are built on). Inputs and weights are widened to int16, so int8, uint8 and int16 inputs
  (16x8 layers) and int8 or uint8 weights all go as they are; a pair of such products cannot leave int32.

Neither saturates (unlike ``vpmaddubsw``), and the caller's bound proves that no int32 lane wraps, so the
result is the exact integer sum, as from any other exact path. ``HWSIM_SIMD=avx2`` keeps a VNNI host on the
AVX2 kernel and ``HWSIM_SIMD=off`` turns both off (the float32 BLAS engine then runs).
"""

from __future__ import annotations

import os

import numba
import numpy as np
from llvmlite.binding import llvm_version_info

from hwsim.numerics.cpu import has_avx2, has_avx512_vnni

_OUTPUTS_PER_TILE = 1 << 14  # int32 sums per tile: they stay in L1/L2 until requantized
_LLVM_BYTE_OPERANDS = (22,)  # the LLVM in which vpdpbusd's intrinsic signature was written and tested
LANES = 16  # columns of a packed block: one zmm of int32 sums (VNNI), two ymm (AVX2)
K_STEP = {"vnni": 4, "avx2": 2, "avx2-pairwise16": 4}  # k's per 64-byte step of a packed block
#: how a packed block holds the weights; the type selects the micro-kernel (int8 bytes typed uint8: ONNX
#: Runtime's saturating AVX2 pairs)
WEIGHT_DTYPE = {"vnni": np.int8, "avx2": np.int16, "avx2-pairwise16": np.uint8}


def instruction() -> str | None:
    """The instruction the kernel uses in this process: ``vnni``, ``avx2`` or None (not available, numba's
    JIT off, numba not targeting this CPU, or ``HWSIM_SIMD=off``)."""
    choice = os.environ.get("HWSIM_SIMD", "")
    if choice == "off" or numba.config.DISABLE_JIT or not _compiles_for_this_cpu():
        return None
    if choice != "avx2" and has_avx512_vnni() and llvm_version_info >= _LLVM_BYTE_OPERANDS:
        return "vnni"
    return "avx2" if has_avx2() else None


def available() -> bool:
    """Whether the SIMD kernel can run in this process at all."""
    return instruction() is not None


def _compiles_for_this_cpu() -> bool:
    """numba targets the host CPU (its default), not a portable one (``NUMBA_CPU_NAME=generic``, say), on
    which the intrinsics could not be compiled."""
    return numba.config.CPU_NAME in (None, "host") and not numba.config.CPU_FEATURES


def input_offset(w: np.ndarray, x_range: tuple[int, int]) -> int | None:
    """What must be added to inputs in ``x_range`` for the kernel (0, or 128 to make int8 bytes for VNNI),
    or None where it cannot run: not available, weights it cannot take, inputs it cannot take, or a depth at
    which an int32 lane could wrap."""
    isa = instruction()
    lo, hi = x_range
    if isa == "vnni":
        if w.dtype != np.int8 or w.shape[0] * 255 * 128 >= 1 << 31:
            return None
        return 0 if 0 <= lo and hi <= 255 else 128 if -128 <= lo and hi <= 127 else None
    if isa == "avx2" and w.dtype in (np.int8, np.uint8) and -(1 << 15) <= lo and hi < 1 << 15:
        largest_w = 255 if w.dtype == np.uint8 else 128
        return 0 if w.shape[0] * max(-lo, hi) * largest_w < 1 << 31 else None
    return None


def pack(w: np.ndarray, isa: str) -> np.ndarray:
    """Weights [K, N] as ``kernels_simd`` reads them for ``isa``: column blocks of 16 [N/16, steps * 64
    bytes], each a run of 64-byte steps (the step's k's of each of the 16 columns, k fastest), K and N
    zero-padded. VNNI steps hold 4 k's as int8, AVX2 steps 2 k's as int16, ONNX Runtime's saturating AVX2
    steps 4 k's of int8 weights (``w`` must be int8) typed uint8."""
    k_step, dtype = K_STEP[isa], WEIGHT_DTYPE[isa]
    depth, cols = w.shape
    padded = np.zeros((-(-depth // k_step) * k_step, -(-cols // LANES) * LANES), dtype)
    padded[:depth, :cols] = w.view(np.uint8) if dtype == np.uint8 else w
    steps, blocks = padded.shape[0] // k_step, padded.shape[1] // LANES
    return np.ascontiguousarray(padded.reshape(steps, k_step, blocks, LANES).transpose(2, 0, 3, 1)).reshape(
        blocks, steps * k_step * LANES
    )


def pairwise_available(x_dtype, w: np.ndarray) -> bool:
    """Whether the kernel can give ONNX Runtime's AVX2 uint8 x int8 sums (saturating pairs) here: an x86
    CPU with AVX2 and the JIT (any host, VNNI or not), uint8 inputs, int8 weights, and a depth whose pair
    sums cannot wrap int32."""
    return (
        instruction() is not None
        and x_dtype == np.uint8
        and w.dtype == np.int8
        and -(-w.shape[0] // 2) * 32767 < 1 << 31
    )


def tiles(rows: int, blocks: int) -> tuple[int, int]:
    """(rows per tile, column chunks) for the kernels: at most about 16K sums per tile, in 4-row blocks, at
    least four tiles per thread where the rows allow (the threads then finish together), and the column
    blocks split into chunks where they do not."""
    if rows == 0 or blocks == 0:
        return 4, 1
    threads = numba.get_num_threads()
    rows_per_tile = max(4, min(_OUTPUTS_PER_TILE // (16 * blocks), -(-rows // (4 * threads))) // 4 * 4)
    row_tiles = -(-rows // rows_per_tile)
    return rows_per_tile, max(1, min(blocks, 4 * threads // row_tiles))
