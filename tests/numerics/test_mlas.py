"""hwsim.numerics.mlas: the float32 fused multiply-add the MLAS emulation is built on, against exact rationals.

Comparisons with ONNX Runtime itself live in tests/runtimes/test_onnx_transformer.py.
"""

from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.numerics import mlas

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
    """Ties to even, and the sticky bit a float64 sum would lose (double rounding gives the other neighbour)."""
    third = F32(1 + 2 ** -23)
    cases = [
        (F32(3), third, F32(0), 3 + 2 ** -21),             # exact tie: to the even neighbour (up)
        (F32(3), third, F32(-(2 ** -60)), 3 + 2 ** -22),   # just below the tie: down, though float64 sees the tie
        (F32(3), third, F32(2 ** -60), 3 + 2 ** -21),      # just above: up
        (F32(-3), third, F32(2 ** -60), -(3 + 2 ** -22)),  # the mirror image
        (F32(2 ** -75), F32(2 ** -75), F32(0), 0.0),       # 2**-150 is half the smallest subnormal: even (0)
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
