"""MLAS' float32 GEMM chains in numba: the fast twins of the numpy loops in :mod:`hwsim.numerics.mlas`.

ONNX Runtime runs some convs of a QDQ model in float32 on MLAS (those whose DequantizeLinear it does not
fuse), each output one fused multiply-add chain over a block of k's. numpy has no fused multiply-add, so
the twin builds one from float64 pairs, a few dozen operations per product; here ``fma32`` is LLVM's own
(``vfmadd`` on FMA3 CPUs, libm's correctly rounded ``fmaf`` elsewhere), one rounding as in the instruction
MLAS runs. Intrinsics need the JIT: ``mlas`` uses these only where numba compiles, its numpy loops
otherwise. Same house rules as :mod:`hwsim.numerics.kernels`.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from hwsim.numerics import jit_cache  # noqa: F401  before any kernel: it names numba's cache folder


@intrinsic
def fma32(typingctx, a, b, c):
    """float32 a * b + c rounded once (``llvm.fma.f32``)."""
    sig = types.float32(types.float32, types.float32, types.float32)

    def codegen(context, builder, signature, args):
        f32 = ir.FloatType()
        fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(f32, [f32] * 3), "llvm.fma.f32")
        return builder.call(fma, args)

    return sig, codegen


@numba.njit(cache=True, nogil=True, parallel=True)
def fma_chains(w, cols, start, stop, s0, s1):
    """block[b, f, p] = the chain acc = fma(w[f, k], cols[b, k, s0 + p], acc) over k = start .. stop - 1
    from acc = 0, for ``w`` [F, K] and ``cols`` [B, K, P] float32: MLAS' SGEMM kernel on one K block, one
    accumulator per output. Rows (b, f) run in parallel; the pixel loop vectorises."""
    batch, filters, n = cols.shape[0], w.shape[0], s1 - s0
    block = np.zeros((batch, filters, n), np.float32)
    for row in numba.prange(batch * filters):
        b, f = row // filters, row % filters
        acc = block[b, f]
        for k in range(start, stop):
            wk = w[f, k]
            src = cols[b, k, s0:s1]
            for p in range(n):
                acc[p] = fma32(wk, src[p], acc[p])
    return block


@numba.njit(cache=True, nogil=True)
def m1_chains(w, cols, acc):
    """MLAS' one-row SGEMM kernel on one K block (``mlas.sgemm_m1_block``): the k's of ``w`` [K] in groups
    of 4, then a 2, then a 1; each group's products summed left to right (separate multiplies and adds), the
    group's sum then added to ``acc`` [B, N] in place (float32 throughout)."""
    depth = w.shape[0]
    batch, n = acc.shape
    k = 0
    while k < depth:
        size = 4 if depth - k >= 4 else (2 if depth - k >= 2 else 1)
        for b in range(batch):
            for p in range(n):
                part = w[k] * cols[b, k, p]
                for j in range(k + 1, k + size):
                    part = part + w[j] * cols[b, j, p]
                acc[b, p] = part + acc[b, p]
        k += size
    return acc


jit_cache.adopt(globals())  # every kernel above: hwsim's checked cache (see jit_cache)
