"""ONNX Runtime's CPU kernels (MLAS and the com.microsoft quantized ops), reproduced bit for bit in numpy.

A quantized transformer in ONNX Runtime runs some ops in float32 between DequantizeLinear and QuantizeLinear
(LayerNormalization, Erf, the MatMul and Add whose int8 inputs ONNX Runtime does not fuse on x86) and some
integer ops outside the ONNX standard (QLinearSoftmax, QLinearMul). Each function here follows the order of
operations of the kernel ONNX Runtime 1.32 runs on x86-64 CPUs with AVX2 and FMA3 (read from MLAS' sources
and, for LayerNormalization, from the disassembly of the shipped library), so float32 results are equal to
the last bit, including where the kernel uses fused multiply-adds.

``fma_f32`` is the one primitive numpy lacks: a float32 fused multiply-add rounded once. The product of two
float32 values is exact in float64; the sum is computed exactly as a float64 pair (TwoSum) and rounded to
odd, from which the conversion to float32 rounds correctly (53 >= 24 + 2 bits).

>>> float(fma_f32(np.float32(1 + 2**-12), np.float32(1 + 2**-12), np.float32(-1)))  # exact: 2**-11 + 2**-24
0.0004883408546447754
>>> float(np.float32(np.float32(1 + 2**-12) * np.float32(1 + 2**-12)) - np.float32(1))  # two roundings
0.00048828125
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import math
import os

import numba
import numpy as np

_F32 = np.float32
_F64 = np.float64


def fma_f32(a, b, c) -> np.ndarray:
    """float32 a * b + c with one rounding (half to even), elementwise with numpy broadcasting.

    >>> fma_f32(np.float32([2.0, -3.0]), np.float32(0.5), np.float32([1.0, 1.0]))
    array([ 2. , -0.5], dtype=float32)
    """
    p = np.asarray(a, _F32).astype(_F64) * np.asarray(b, _F32).astype(_F64)  # exact: 48 significant bits
    c = np.asarray(c, _F32).astype(_F64)
    s = p + c
    v = s - p
    err = (p - (s - v)) + (c - v)  # TwoSum: s + err == p + c exactly
    with np.errstate(invalid="ignore"):
        even = (s.view(np.int64) & 1) == 0
        nudge = (err != 0) & even & np.isfinite(s)
    if np.any(nudge):  # round to odd: a sticky bit below float64 precision
        s = np.where(nudge, np.nextafter(s, np.where(err > 0, np.inf, -np.inf)), s)
    with np.errstate(over="ignore"):  # beyond float32's range: infinity, as the instruction gives
        return s.astype(_F32)


# ---------------------------------------------------------------- float32 ops
def sgemm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """MLAS SGEMM (float MatMul): each output is a chain of fused multiply-adds over k = 0..K-1 from 0.

    ``a`` [..., M, K] and ``b`` [..., K, N] broadcast like numpy.matmul. MLAS' AVX2/AVX-512 kernels keep one
    accumulator per output element and feed it k in order; depths up to 128 (MLAS' K stride) are one pass.
    """
    a, b = np.asarray(a, _F32), np.asarray(b, _F32)
    if a.shape[-1] > 128:
        raise ValueError(f"sgemm: depth {a.shape[-1]} > 128 splits into K blocks, which is not modelled")
    if a.ndim == b.ndim == 2:
        return _chains()(a, np.ascontiguousarray(b)[None], 0, a.shape[1], 0, b.shape[1])[0]
    acc = np.zeros(np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + (a.shape[-2], b.shape[-1]), _F32)
    for k in range(a.shape[-1]):
        acc = fma_f32(a[..., :, k : k + 1], b[..., k : k + 1, :], acc)
    return acc


def _jit_kernels() -> bool:
    """Whether numba's twins (``kernels_mlas``) run: the JIT on and not ``HWSIM_REFERENCE=1``."""
    return not numba.config.DISABLE_JIT and os.environ.get("HWSIM_REFERENCE") != "1"


def _chains():
    """numba's fused multiply-add chains where the JIT runs, the numpy twin otherwise."""
    from hwsim.numerics import kernels_mlas, reference_mlas

    return kernels_mlas.fma_chains if _jit_kernels() else reference_mlas.fma_chains


def _conv_stride_k(outputs: int, depth: int) -> int:
    """The K block of ``MlasConvOperation`` for a segment of ``outputs`` output pixels and depth K: 128 (MLAS'
    SGEMM strides N = K = 128), doubled while the N stride halves down to the outputs."""
    stride_n, stride_k = 128, 128
    if outputs >= depth:
        while stride_k // 2 >= depth:
            stride_n, stride_k = stride_n * 2, stride_k // 2
    else:
        while stride_n > 16 and stride_n // 2 >= outputs:
            stride_n, stride_k = stride_n // 2, stride_k * 2
    return stride_k


def sgemm_m1_block(w: np.ndarray, cols: np.ndarray, acc: np.ndarray | None) -> np.ndarray:
    """MLAS' one-row SGEMM kernel (``MlasSgemmKernelM1Avx``, used for M = 1 on every AVX CPU): the k's in
    groups of 4, then a 2, then a 1; each group's products summed left to right with separate multiplies and
    adds (no FMA), the group's sum then added to the output (0 at first). ``w`` [K], ``cols`` [..., K, N]."""
    acc = np.zeros(cols.shape[:-2] + cols.shape[-1:], _F32) if acc is None else acc.copy()
    from hwsim.numerics import kernels_mlas, reference_mlas

    if _jit_kernels() and cols.ndim == 3:
        return kernels_mlas.m1_chains(np.ascontiguousarray(w), np.ascontiguousarray(cols), acc)
    return reference_mlas.m1_chains(w, cols, acc)


def conv_thread_segments(outputs: int, filters: int, depth: int, threads: int) -> list[tuple[int, int]]:
    """The output-pixel segments ``MlasConvPrepare`` gives threads for one image and group (start, stop):
    one thread per 64 Ki multiplies (filters x outputs x depth), at most 16 and at most ``threads`` (ONNX
    Runtime's intra-op pool); the segment length rounded up to a multiple of 16, and threads it leaves
    without work dropped. Each segment picks its own K blocks (``_conv_stride_k``)."""
    complexity = filters * outputs * depth
    target = complexity // (64 * 1024) + 1 if complexity < 64 * 1024 * 16 else 16
    target = min(target, threads)
    stride = -(-outputs // target)
    if target > 1:
        stride = -(-stride // 16) * 16
        if stride >= outputs:
            target = 1
        elif stride * (target - 1) >= outputs:
            target -= 1
    if target == 1 or stride >= outputs:
        return [(0, outputs)]
    return [(start, min(start + stride, outputs)) for start in range(0, outputs, stride)]


def conv2d_nchw(
    x: np.ndarray,
    w: np.ndarray,
    bias: np.ndarray | None,
    stride: tuple[int, int],
    pads: tuple[int, int, int, int],
    dilation: tuple[int, int],
    groups: int,
    threads: int = 1,
) -> np.ndarray:
    """ONNX Runtime's float Conv (``MlasConv``, the im2col + SGEMM algorithms), NCHW in and out.

    ``x`` [N, C, H, W], ``w`` [O, C / groups, kh, kw], ``pads`` (top, bottom, left, right). Per group, the
    patches are sampled in (c, ky, kx) order with 0.0 in the padding (``MlasConvIm2Col``); each output is one
    fused multiply-add chain from 0 over each block of k's (``_conv_stride_k``: 128, or more for few output
    pixels), later blocks added to the sum in float32 (beta = 1); then the bias is added (``MlasActivation``,
    identity). An ungrouped conv of one image is split into segments of output pixels across ``threads``
    (``conv_thread_segments``), each with its own K blocks; grouped convs run whole groups per thread.
    A group of one filter (a depthwise conv) is a one-row GEMM, which MLAS runs on its M = 1 kernel
    (``sgemm_m1_block``). Measured equal to ONNX Runtime 1.32 on an AMD Zen1 (AVX2/FMA3 kernels), with
    weights that are not constants (a QDQ model's DequantizeLinear outputs; constant weights take MLAS'
    NCHWc kernels instead).
    """
    x, w = np.asarray(x, _F32), np.asarray(w, _F32)
    batch, channels, height, width = x.shape
    out_c, per_group, kh, kw = w.shape
    (sh, sw), (dh, dw), (top, bottom, left, right) = stride, dilation, pads
    oh = (height + top + bottom - dh * (kh - 1) - 1) // sh + 1
    ow = (width + left + right - dw * (kw - 1) - 1) // sw + 1
    padded = np.zeros((batch, channels, height + top + bottom, width + left + right), _F32)
    padded[:, :, top : top + height, left : left + width] = x
    filters = out_c // groups
    y = np.empty((batch, out_c, oh * ow), _F32)
    for g in range(groups):
        xg = padded[:, g * per_group : (g + 1) * per_group]
        cols = np.empty((batch, per_group * kh * kw, oh * ow), _F32)  # rows k = (c, ky, kx)
        k = 0
        for c in range(per_group):
            for ky in range(kh):
                for kx in range(kw):
                    tap = xg[
                        :,
                        c,
                        ky * dh : ky * dh + sh * (oh - 1) + 1 : sh,
                        kx * dw : kx * dw + sw * (ow - 1) + 1 : sw,
                    ]
                    cols[:, k] = tap.reshape(batch, -1)
                    k += 1
        wg = w[g * filters : (g + 1) * filters].reshape(filters, -1)
        depth = wg.shape[1]
        segments = (
            conv_thread_segments(oh * ow, filters, depth, threads) if groups == batch == 1 else [(0, oh * ow)]
        )
        for s0, s1 in segments:
            acc, stride_k = None, _conv_stride_k(s1 - s0, depth)
            for start in range(0, depth, stride_k):
                stop = min(start + stride_k, depth)
                if filters == 1:
                    acc = sgemm_m1_block(
                        wg[0, start:stop], cols[:, start:stop, s0:s1], None if acc is None else acc[:, 0]
                    )[:, None]
                    continue
                block = _chains()(wg, cols, start, stop, s0, s1)
                acc = block if acc is None else (acc + block).astype(_F32)
            if bias is not None:
                acc = (acc + np.asarray(bias, _F32)[g * filters : (g + 1) * filters, None]).astype(_F32)
            y[:, g * filters : (g + 1) * filters, s0:s1] = acc
    return y.reshape(batch, out_c, oh, ow)


def layer_norm(x: np.ndarray, scale: np.ndarray, bias: np.ndarray | None, epsilon: float) -> np.ndarray:
    """LayerNormalization over the last axis, as ONNX Runtime 1.32's AVX2 kernel computes it.

    mean: float64 sum in 4 lanes (lanes (0+2)+(1+3), then the tail in order), / n, rounded to float32;
    variance: float32 sum of squares of d = x - mean in 8 FMA lanes, reduced ((0+4)+(2+6))+((1+5)+(3+7)), the
    tail as 4 rounded squares added in order then FMAs; inv = 1 / sqrtf(sum / n + eps);
    y = fma((x - mean) * inv, scale, bias) (without bias: ((x - mean) * inv) * scale).
    """
    x = np.asarray(x, _F32)
    rows = x.reshape(-1, x.shape[-1])
    n = rows.shape[1]
    xd = rows.astype(_F64)
    blocks4 = n - n % 4
    lanes = np.zeros((rows.shape[0], 4), _F64)
    for i in range(0, blocks4, 4):
        lanes = lanes + xd[:, i : i + 4]
    total = (lanes[:, 0] + lanes[:, 2]) + (lanes[:, 1] + lanes[:, 3])
    for i in range(blocks4, n):
        total = total + xd[:, i]
    mean = (total / _F64(n)).astype(_F32)
    d = (rows - mean[:, None]).astype(_F32)
    blocks8 = n - n % 8
    acc = np.zeros((rows.shape[0], 8), _F32)
    for i in range(0, blocks8, 8):
        acc = fma_f32(d[:, i : i + 8], d[:, i : i + 8], acc)
    v = (acc[:, 4:] + acc[:, :4]).astype(_F32)
    w = (v[:, :2] + v[:, 2:]).astype(_F32)
    sq = (w[:, 0] + w[:, 1]).astype(_F32)
    i = blocks8
    if n - i >= 4:
        prod = (d[:, i : i + 4] * d[:, i : i + 4]).astype(_F32)
        for j in range(4):
            sq = (sq + prod[:, j]).astype(_F32)
        i += 4
    for j in range(i, n):
        sq = fma_f32(d[:, j], d[:, j], sq)
    var = ((sq / _F32(n)).astype(_F32) + _F32(epsilon)).astype(_F32)
    inv = (_F32(1) / np.sqrt(var).astype(_F32)).astype(_F32)
    norm = (d * inv[:, None]).astype(_F32)
    scale = np.asarray(scale, _F32).reshape(-1)
    if bias is None:
        y = (norm * scale).astype(_F32)
    else:
        y = fma_f32(norm, scale, np.asarray(bias, _F32).reshape(-1))
    return y.reshape(x.shape)


_ERF_SMALL = tuple(
    _F32(v)
    for v in (-5.99104969e-4, 4.99339588e-3, -2.67667342e-2, 1.12818025e-1, -3.76124859e-1, 1.28379151e-1)
)
_ERF_BIG = tuple(
    _F32(v)
    for v in (
        1.72948930e-5,
        -3.83208680e-4,
        3.88393435e-3,
        -2.42545605e-2,
        1.06777847e-1,
        6.34846687e-1,
        1.28717512e-1,
    )
)
_EXP_P = tuple(
    _F32(v) for v in (1.38319808e-3, 8.37550033e-3, 4.16689515e-2, 1.66664466e-1, 4.99999851e-1, 1.0, 1.0)
)


def erf(x: np.ndarray, kernel: str = "avx512") -> np.ndarray:
    """MLAS' Erf: an odd polynomial in |x| for small |x|, else 1 - exp(-poly(|x|)), every step a float32 FMA.

    ``kernel="avx512"`` (``MlasErfKernelAvx512F``, measured on an AVX-512 CPU): the exp branch for
    |x| > 0.921875, 2**r applied with ``vscalef``. ``kernel="fma3"`` (``MlasErfKernelFma3``, AVX2 CPUs, read
    from MLAS' assembly and measured on an AMD Zen1): the exp branch for |x| >= 0.921875, 2**r built from
    exponent bits. Both clamp |x| to 3.925: the FMA3 kernel reads the bound from ``MlasErfConstants``, which
    holds 3.925f in ONNX Runtime 1.32 (older MLAS sources had 3.725f; the shipped library holds no 3.725f).
    Both reduce exp's argument with the 1.5 * 2**23 rounding constant; the sign is copied back. The two give
    the same float32 for every input: both branches agree at 0.921875, and 2**r only differs (0 against a
    subnormal) where 1 - 2**r * e rounds to 1 either way.
    """
    if kernel not in ("avx512", "fma3"):
        raise ValueError(f"kernel: expected 'avx512' or 'fma3' (got {kernel!r})")
    x = np.asarray(x, _F32)
    sign = x.view(np.uint32) & np.uint32(0x80000000)
    a = np.minimum(np.abs(x), _F32(3.925))
    s = (a * a).astype(_F32)
    small = np.full(a.shape, _ERF_SMALL[0], _F32)
    for p in _ERF_SMALL[1:]:
        small = fma_f32(small, s, p)
    small = fma_f32(small, a, a)
    big_lane = a > _F32(0.921875) if kernel == "avx512" else a >= _F32(0.921875)
    ab = np.where(big_lane, a, _F32(0))
    big = np.full(a.shape, _ERF_BIG[0], _F32)
    for p in _ERF_BIG[1:]:
        big = fma_f32(big, ab, p)
    big = np.maximum(-fma_f32(big, ab, ab), _F32(-88.3762626647949))
    magic = _F32(12582912.0)
    r = (fma_f32(_F32(1.44269504088896341), big, magic) - magic).astype(_F32)
    f = fma_f32(r, _F32(-6.93145752e-1), big)
    f = fma_f32(r, _F32(-1.42860677e-6), f)
    e = np.full(a.shape, _EXP_P[0], _F32)
    for p in _EXP_P[1:]:
        e = fma_f32(e, f, p)
    if kernel == "avx512":
        scaled = np.ldexp(e, r.astype(np.int32)).astype(_F32)
    else:
        scaled = (e * ((r.astype(np.int32) + 127) << 23).astype(np.int32).view(_F32)).astype(_F32)
    big = (_F32(1) - scaled).astype(_F32)
    bits = np.where(big_lane, big.view(np.uint32), small.view(np.uint32)) | sign
    return bits.astype(np.uint32).view(_F32).reshape(x.shape)


def reduce_mean_last(x: np.ndarray) -> np.ndarray:
    """ReduceMean over the last axis (keepdims), as ONNX Runtime's CPU kernel computes it: Eigen's vectorized
    sum of each row, divided by the row length in float32.

    Eigen (SSE, 4-float packets) skips to the first 16-byte boundary (ONNX Runtime's buffers start on one, so
    row r's first ``(-r n) mod 4`` elements), sums two packets at a time, adds the packets, reduces the packet
    as (p0 + p2) + (p1 + p3), then adds the skipped head and the tail in order; rows shorter than a packet
    after the head are summed in order.
    """
    x = np.asarray(x, _F32)
    rows = x.reshape(-1, x.shape[-1])
    n = rows.shape[1]
    out = np.empty(rows.shape[0], _F32)
    heads = (-(np.arange(rows.shape[0]) * n)) % 4  # the head depends on the row's alignment: group rows by it
    for head in np.unique(heads):
        sel = np.nonzero(heads == head)[0]
        block = rows[sel]
        start = min(int(head), n)
        size = n - start
        end2, end1 = start + size // 8 * 8, start + size // 4 * 4
        if end1 == start:
            total = block[:, 0].copy()
            for j in range(1, n):
                total = (total + block[:, j]).astype(_F32)
            out[sel] = total
            continue
        p0 = block[:, start : start + 4].copy()
        if end1 - start > 4:
            p1 = block[:, start + 4 : start + 8].copy()
            for i in range(start + 8, end2, 8):
                p0 = (p0 + block[:, i : i + 4]).astype(_F32)
                p1 = (p1 + block[:, i + 4 : i + 8]).astype(_F32)
            p0 = (p0 + p1).astype(_F32)
            if end1 > end2:
                p0 = (p0 + block[:, end2 : end2 + 4]).astype(_F32)
        total = ((p0[:, 0] + p0[:, 2]).astype(_F32) + (p0[:, 1] + p0[:, 3]).astype(_F32)).astype(_F32)
        for j in list(range(start)) + list(range(end1, n)):
            total = (total + block[:, j]).astype(_F32)
        out[sel] = total
    return (out / _F32(n)).astype(_F32).reshape(*x.shape[:-1], 1)


# ---------------------------------------------------------------- com.microsoft integer ops
@functools.lru_cache(maxsize=1)
def _libm_logf():
    """glibc's logf, which ONNX Runtime calls (numpy's float32 log may differ in the last place)."""
    try:
        libm = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
        fn = libm.logf
        fn.restype, fn.argtypes = ctypes.c_float, [ctypes.c_float]
        return fn
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        return lambda v: float(np.log(_F32(v)))


@functools.lru_cache(maxsize=1)
def _libm_powf():
    """glibc's powf, which ONNX Runtime's Pow calls for exponents other than 2 and 3."""
    try:
        libm = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
        fn = libm.powf
        fn.restype, fn.argtypes = ctypes.c_float, [ctypes.c_float, ctypes.c_float]
        return fn
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        return lambda v, e: float(np.power(_F32(v), _F32(e)))


def power(x: np.ndarray, exponent: float) -> np.ndarray:
    """ONNX Runtime's float Pow with a scalar exponent: x * x for 2, (x * x) * x for 3, else glibc's powf.

    >>> power(np.float32([3.0, -2.0]), 3.0)
    array([27., -8.], dtype=float32)
    """
    x = np.asarray(x, _F32)
    e = _F32(exponent)
    if e == 2:
        return (x * x).astype(_F32)
    if e == 3:
        return ((x * x).astype(_F32) * x).astype(_F32)
    fn = _libm_powf()
    return np.array([fn(float(v), float(e)) for v in x.ravel()], _F32).reshape(x.shape)


def qlinear_softmax_table(x_scale: float, reduce_len: int, signed: bool) -> np.ndarray:
    """QLinearSoftmax's float32 table (read from the shipped kernel): shift = max(0, double(logf(FLT_MAX /
    float(D))) - 5) / sx, entry i = float32(exp((i - 255 + shift) * sx)) in double; entry ``i`` sits at index
    uint8(i - 128) for int8 inputs."""
    sx = float(_F32(x_scale))
    shift = max(0.0, float(_F32(_libm_logf()(float(_F32(np.finfo(_F32).max) / _F32(reduce_len))))) - 5.0) / sx
    table = np.zeros(256, _F32)
    for i in range(256):
        table[(i - 128) & 0xFF if signed else i] = _F32(math.exp((float(i) - 255.0 + shift) * sx))
    return table


def qlinear_softmax(x: np.ndarray, x_scale: float, y_scale: float, y_zero_point: int) -> np.ndarray:
    """com.microsoft QLinearSoftmax over the last axis (uint8 or int8 codes), as ONNX Runtime 1.32 does it.

    Each row looks up t = table[x - max + 255] (int8: table[uint8(x + 127 - max)]) and sums the float32
    values in order; then, in double (read from the shipped kernel), y = nearbyint(t * c / sum) + zy with
    c = floor(float32(1 / sy)) (the float32 reciprocal measured, not the double one), saturated to the output
    type.
    """
    x = np.asarray(x)
    signed = x.dtype == np.int8
    rows = x.reshape(-1, x.shape[-1]).astype(np.int64)
    table = qlinear_softmax_table(x_scale, rows.shape[1], signed)
    xmax = rows.max(axis=1, keepdims=True)
    index = ((rows + 127 - xmax) & 0xFF) if signed else rows + 255 - xmax
    t = table[index]
    total = np.zeros((rows.shape[0], 1), _F32)
    for j in range(rows.shape[1]):
        total = (total + t[:, j : j + 1]).astype(_F32)
    c = float(math.floor(float(_F32(1) / _F32(y_scale))))
    q = np.rint(t.astype(_F64) * c / total.astype(_F64)) + float(y_zero_point)
    info = np.iinfo(np.int8 if signed else np.uint8)
    return np.clip(q, info.min, info.max).astype(info.dtype).reshape(x.shape)


def qlinear_mul(
    a: np.ndarray,
    b: np.ndarray,
    za: int,
    zb: int,
    zy: int,
    sa: float,
    sb: float,
    sy: float,
    qmin: int,
    qmax: int,
) -> np.ndarray:
    """MLAS QLinearMul (SSE2 kernel): float32((a - za)(b - zb)) * float32(float32(sa * sb) / sy) + zy,
    rounded half to even, saturated. ``a`` and ``b`` broadcast."""
    ratio = _F32(_F32(_F32(sa) * _F32(sb)) / _F32(sy))
    prod = (np.asarray(a, np.int64) - za) * (np.asarray(b, np.int64) - zb)
    v = ((prod.astype(_F32) * ratio).astype(_F32) + _F32(zy)).astype(_F32)
    return np.clip(np.rint(v).astype(np.int64), qmin, qmax)


def qlinear_add(
    a: np.ndarray,
    b: np.ndarray,
    za: int,
    zb: int,
    zy: int,
    sa: float,
    sb: float,
    sy: float,
    qmin: int,
    qmax: int,
) -> np.ndarray:
    """MLAS QLinearAdd (the AVX2 kernel, with the fused multiply-adds its compiler contracts).

    rA = float32(sa / sy), rB = float32(sb / sy), F = zy - fma(rA, zA, float32(rB * zB));
    y = round_half_even(fma(a, rA, fma(b, rB, F))), saturated. When ``a`` is the one broadcast along the
    innermost axis (ONNX Runtime's span is a scalar a), the kernel swaps the inputs, so the roles of a and b
    swap too. Measured equal to ONNX Runtime 1.32 on 7.9 million random (codes, scales, zero points).

    >>> qlinear_add(np.array([10], np.uint8), np.array([20], np.uint8), 0, 0, 0, 0.5, 0.25, 1.0, 0, 255)
    array([10])
    """
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    a_inner, b_inner = (a.shape[-1] if a.ndim else 1), (b.shape[-1] if b.ndim else 1)
    if a_inner == 1 and b_inner > 1:
        a, b, za, zb, sa, sb = b, a, zb, za, sb, sa  # a scalar span of input 0: the kernel takes it as B
    ra, rb = _F32(_F32(sa) / _F32(sy)), _F32(_F32(sb) / _F32(sy))
    fixed = _F32(_F32(zy) - fma_f32(ra, _F32(za), _F32(rb * _F32(zb))))
    v = fma_f32(a.astype(_F32), ra, fma_f32(b.astype(_F32), rb, fixed))
    return np.clip(np.rint(v).astype(np.int64), qmin, qmax)
