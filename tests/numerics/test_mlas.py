"""hwsim.numerics.mlas: the float32 fused multiply-add the MLAS emulation is built on, against exact
rationals.

Comparisons with ONNX Runtime itself live in tests/runtimes/test_onnx_transformer.py.
"""

from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.numerics import mlas, reference_mlas

F32 = np.float32


def _round_f32(q: Fraction) -> np.float32:
    """The float32 nearest to the rational ``q``, ties to even (subnormals and overflow included)."""
    if q == 0:
        return F32(0.0)
    sign, a = (-1 if q < 0 else 1), abs(q)
    e = a.numerator.bit_length() - a.denominator.bit_length()
    if Fraction(2) ** e > a:
        e -= 1
    e = max(e, -126)  # below the normal range the spacing stays 2**-149
    scaled = a / Fraction(2) ** (e - 23)
    m, rest = divmod(scaled.numerator, scaled.denominator)
    if 2 * rest > scaled.denominator or (2 * rest == scaled.denominator and m % 2):
        m += 1
    with np.errstate(over="ignore"):
        return F32(sign * float(Fraction(m) * Fraction(2) ** (e - 23)))


finite32 = st.floats(width=32, allow_nan=False, allow_infinity=False)


@settings(max_examples=400, deadline=None)
@given(finite32, finite32, finite32)
def test_fma_f32_rounds_once_like_exact_arithmetic(a, b, c):
    """fma_f32(a, b, c) is the exact a * b + c rounded once to float32 (where that is finite)."""
    exact = Fraction(float(a)) * Fraction(float(b)) + Fraction(float(c))
    expected = _round_f32(exact)
    got = mlas.fma_f32(F32(a), F32(b), F32(c))
    if expected == 0:  # a rational has no signed zero; IEEE's sign rule is numpy's own float64 sum here
        assert got == 0
    elif abs(float(expected)) < float(np.finfo(F32).max):
        assert got.view(np.int32) == expected.view(np.int32)


def test_fma_f32_tie_table():
    """Ties to even, and the sticky bit a float64 sum would lose (double rounding gives the other
    neighbour)."""
    third = F32(1 + 2**-23)
    cases = [
        (F32(3), third, F32(0), 3 + 2**-21),  # exact tie: to the even neighbour (up)
        # just below the tie: down, though float64 sees the tie
        (F32(3), third, F32(-(2**-60)), 3 + 2**-22),
        (F32(3), third, F32(2**-60), 3 + 2**-21),  # just above: up
        (F32(-3), third, F32(2**-60), -(3 + 2**-22)),  # the mirror image
        (F32(2**-75), F32(2**-75), F32(0), 0.0),  # 2**-150 is half the smallest subnormal: even (0)
    ]
    for a, b, c, want in cases:
        assert float(mlas.fma_f32(a, b, c)) == want, (a, b, c)
        assert float(_round_f32(Fraction(float(a)) * Fraction(float(b)) + Fraction(float(c)))) == want


def test_erf_is_odd_and_bounded():
    """Both MLAS Erf kernels are odd, within [-1, 1], and within 2 ulp of float64 erf on a grid."""
    import math

    x = np.linspace(-5, 5, 20001, dtype=F32)
    for kernel in ("avx512", "fma3"):
        y = mlas.erf(x, kernel)
        assert np.array_equal(y, -mlas.erf(-x, kernel)) and np.all(np.abs(y) <= 1)
        exact = np.array([math.erf(float(v)) for v in x], F32)
        assert np.max(np.abs(y.view(np.int32).astype(np.int64) - exact.view(np.int32))) <= 2


def test_erf_kernels_agree():
    """The FMA3 and AVX-512 Erf kernels give the same float32 for every input in ONNX Runtime 1.32 (both clamp
    |x| at 3.925; their branch boundary and 2**r differ only where the results coincide)."""
    rng = np.random.default_rng(5)
    x = np.concatenate(
        [
            rng.integers(0, 2**32, 200000, dtype=np.uint64).astype(np.uint32).view(F32),
            np.linspace(-5, 5, 20001, dtype=F32),
            F32([0.921875, -0.921875, 3.725, 3.925, 1e30]),
        ]
    )
    with np.errstate(invalid="ignore", over="ignore"):
        a, b = mlas.erf(x, "fma3"), mlas.erf(x, "avx512")
    assert np.array_equal(a.view(np.int32), b.view(np.int32)) or np.array_equal(a, b, equal_nan=True)
    # ONNX Runtime 1.32 on an AVX2 CPU (FMA3 kernel): erf(3.725) is 1 - 2**-23 (the bits below), erf(10) is 1
    assert mlas.erf(F32([3.725, 10.0]), "fma3").view(np.int32).tolist() == [1065353214, 1065353216]


def _conv_plain(x, w, bias, stride, pads, dilation, groups):
    """A per-output twin of mlas.conv2d_nchw: zero padding, k in (c, ky, kx) order, one float32 FMA chain per
    K block of mlas._conv_stride_k, blocks added, then the bias."""
    batch, channels, height, width = x.shape
    out_c, per_group, kh, kw = w.shape
    top, bottom, left, right = pads
    oh = (height + top + bottom - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (width + left + right - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    depth, filters = per_group * kh * kw, out_c // groups
    block = mlas._conv_stride_k(oh * ow, depth)
    y = np.zeros((batch, out_c, oh, ow), F32)
    for b, o, i, j in np.ndindex(batch, out_c, oh, ow):
        g, total = o // filters, None
        for start in range(0, depth, block):
            acc = F32(0)
            for k in range(start, min(start + block, depth)):
                c, ky, kx = k // (kh * kw), k // kw % kh, k % kw
                iy, ix = i * stride[0] - top + ky * dilation[0], j * stride[1] - left + kx * dilation[1]
                v = x[b, g * per_group + c, iy, ix] if 0 <= iy < height and 0 <= ix < width else F32(0)
                acc = mlas.fma_f32(w[o, c, ky, kx], v, acc)
            total = acc if total is None else F32(total + acc)
        y[b, o, i, j] = total if bias is None else F32(total + bias[o])
    return y


@settings(max_examples=25, deadline=None)
@given(
    st.integers(1, 2),
    st.sampled_from([(1, 2), (2, 3), (3, 2), (1, 40)]),
    st.integers(1, 3),
    st.integers(1, 2),
    st.integers(0, 1),
    st.integers(1, 2),
    st.booleans(),
    st.integers(0, 2**32 - 1),
)
def test_conv2d_nchw_equals_its_plain_twin(batch, groups_filters, kernel, stride, pad, dilation, bias, seed):
    """mlas.conv2d_nchw (vectorised over outputs) equals the per-output loop it documents, K blocks
    included."""
    groups, per_group = groups_filters
    rng = np.random.default_rng(seed)
    size = dilation * (kernel - 1) + 1 + rng.integers(0, 4)
    x = rng.normal(size=(batch, groups * per_group, size, size + 1)).astype(F32)
    w = rng.normal(size=(groups * 2, per_group, kernel, kernel)).astype(F32)
    b = rng.normal(size=groups * 2).astype(F32) if bias else None
    args = ((stride, stride), (pad, pad, pad, 0), (dilation, dilation), groups)
    got = mlas.conv2d_nchw(x, w, b, *args)
    assert np.array_equal(got.view(np.int32), _conv_plain(x, w, b, *args).view(np.int32))


def _adversarial(rng, shape) -> np.ndarray:
    """float32 values whose products and sums round often (and cancel): normal draws at mixed scales."""
    return (rng.normal(size=shape) * 2.0 ** rng.integers(-20, 20, size=shape)).astype(F32)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 2), st.integers(1, 9), st.integers(1, 70), st.integers(1, 37), st.integers(0, 2**32 - 1)
)
def test_fma_chain_kernels_equal_their_numpy_twins(batch, filters, depth, pixels, seed):
    """kernels_mlas' fused multiply-add chains (LLVM's fma) and one-row groups equal mlas' numpy twins to the
    last bit, on any K block and pixel range (with the JIT off the twins themselves run)."""
    rng = np.random.default_rng(seed)
    w, cols = _adversarial(rng, (filters, depth)), _adversarial(rng, (batch, depth, pixels))
    start, s0 = int(rng.integers(0, depth)), int(rng.integers(0, pixels))
    stop, s1 = int(rng.integers(start + 1, depth + 1)), int(rng.integers(s0 + 1, pixels + 1))
    want = reference_mlas.fma_chains(w, cols, start, stop, s0, s1)
    got = mlas._chains()(w, cols, start, stop, s0, s1)  # kernels_mlas.fma_chains where the JIT runs
    assert np.array_equal(got.view(np.int32), want.view(np.int32))
    acc = _adversarial(rng, (batch, pixels))
    want = reference_mlas.m1_chains(w[0], cols, acc.copy())
    got = mlas.sgemm_m1_block(w[0], cols, acc)  # kernels_mlas.m1_chains where the JIT runs
    assert np.array_equal(got.view(np.int32), want.view(np.int32))
