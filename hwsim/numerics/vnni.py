"""When and how hwsim's byte GEMM (``kernels_vnni``, AVX-512 VNNI ``vpdpbusd``) runs.

``vpdpbusd`` multiplies unsigned by signed bytes: int8 inputs are shifted by +128 into uint8 (the zero point
moves with them, so the integer result is unchanged), uint8 inputs go as they are, and the weights must be
int8. The int32 lanes never saturate and the caller's bound proves they do not wrap, so the result is the
exact integer sum, as from any other exact path.
"""

from __future__ import annotations

import os

import numba
import numpy as np
from llvmlite.binding import llvm_version_info

from hwsim.numerics.cpu import has_avx512_vnni

_OUTPUTS_PER_TILE = 1 << 14  # int32 sums per tile: they stay in L1/L2 until requantized
_LLVM_BYTE_OPERANDS = (22,)  # the LLVM in which the kernel's intrinsic signature was written and tested


def available() -> bool:
    """Whether the byte kernel can run in this process: AVX-512 VNNI, numba's JIT on (the kernel is an LLVM
    intrinsic), an LLVM whose ``vpdpbusd`` takes byte vectors (the form it is written in; tested with LLVM
    22),
    and not switched off with ``HWSIM_VNNI=0``."""
    return (
        has_avx512_vnni()
        and _compiles_for_this_cpu()
        and not numba.config.DISABLE_JIT
        and os.environ.get("HWSIM_VNNI") != "0"
        and llvm_version_info >= _LLVM_BYTE_OPERANDS
    )


def _compiles_for_this_cpu() -> bool:
    """numba targets the host CPU (its default), not a portable one (``NUMBA_CPU_NAME=generic``, say), on
    which
    the intrinsic could not be compiled."""
    return numba.config.CPU_NAME in (None, "host") and not numba.config.CPU_FEATURES


def input_offset(w: np.ndarray, x_range: tuple[int, int]) -> int | None:
    """What must be added to inputs in ``x_range`` to make them bytes (0 for uint8 data, 128 for int8), or
    None where the kernel cannot run: not available, weights other than int8, inputs that are not bytes, or a
    depth
    at which the raw byte products could wrap int32."""
    if not available() or w.dtype != np.int8 or w.shape[0] * 255 * 128 >= 1 << 31:
        return None
    lo, hi = x_range
    return 0 if 0 <= lo and hi <= 255 else 128 if -128 <= lo and hi <= 127 else None


def pack(w: np.ndarray) -> np.ndarray:
    """int8 weights [K, N] as ``kernels_vnni`` reads them: column blocks of 16 [N/16, K/4 * 64], each a run of
    64-byte groups (4 consecutive k's of each of the 16 columns), K and N zero-padded."""
    depth, cols = w.shape
    padded = np.zeros((-(-depth // 4) * 4, -(-cols // 16) * 16), np.int8)
    padded[:depth, :cols] = w
    steps, blocks = padded.shape[0] // 4, padded.shape[1] // 16
    return np.ascontiguousarray(padded.reshape(steps, 4, blocks, 16).transpose(2, 0, 3, 1)).reshape(
        blocks, steps * 64
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
