"""Requantizers: hand-made tie tables per kind, the double-rounding case, extremes, kernel == reference."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hwsim.errors import ConfigError
from hwsim.numerics import kernels, reference
from hwsim.numerics.formats import INT8
from hwsim.numerics.quantized import QParams, activation_range, requantize
from hwsim.numerics.requant_kinds import RequantKind, quantize_multiplier

K = RequantKind
HALF = (1 << 30, 0)  # M, e encoding exactly 0.5
QUARTER = (1 << 30, -1)  # exactly 0.25: the second rounding of the two-step kinds sees the tie
ACC_HALF = [-5, -3, -1, 1, 3, 5]  # x 0.5 = -2.5, -1.5, -0.5, 0.5, 1.5, 2.5
ACC_QUARTER = [-10, -6, -2, 2, 6, 10]  # x 0.25 = the same ties
TIE_TABLE = {
    K.GEMMLOWP_DOUBLE: [-2, -1, 0, 1, 2, 3],  # SQRDMULH rounds ties up (its nudge is 1 - 2**30 below zero)
    K.SINGLE_AWAY: [-3, -2, -1, 1, 2, 3],
    K.DOUBLE_HALF_UP: [-2, -1, 0, 1, 2, 3],  # ties toward +inf
    K.SINGLE_HALF_UP: [-2, -1, 0, 1, 2, 3],
    K.INT16_MULTIPLIER: [-2, -1, 0, 1, 2, 3],
    K.FLOAT32_SCALE: [-2, -2, 0, 0, 2, 2],  # ties to even
    K.FLOAT64_PRODUCT: [-2, -2, 0, 0, 2, 2],
}


def both(acc, m, e, scale, kind):
    """Run the reference and the kernel; they must agree, and the value is returned."""
    want = reference.requantize_scalar(acc, m, e, scale, int(kind))
    got = int(kernels.requantize_scalar(acc, m, e, scale, int(kind)))
    assert got == want, (acc, m, e, kind)
    return want


@pytest.mark.parametrize("kind", list(K))
def test_tie_table_multiplier_one_half(kind):
    """Each requantizer rounds acc * 0.5 at the exact ties as its table says."""
    assert [both(a, *HALF, 0.5, kind) for a in ACC_HALF] == TIE_TABLE[kind]


@pytest.mark.parametrize("kind", list(K))
def test_tie_table_with_a_right_shift(kind):
    """Ties that reach the rounding right shift (m = 0.25: M = 2**30, e = -1) round by the shift's rule:
    gemmlowp's RoundingDivideByPOT takes them away from zero, unlike its SQRDMULH."""
    want = [-3, -2, -1, 1, 2, 3] if kind == K.GEMMLOWP_DOUBLE else TIE_TABLE[kind]
    assert [both(a, *QUARTER, 0.25, kind) for a in ACC_QUARTER] == want


def test_every_kind_has_a_tie_row():
    """Adding a requantizer without a tie table row fails here."""
    assert set(TIE_TABLE) == set(K)


@pytest.mark.parametrize(
    "kind,want",
    [(K.GEMMLOWP_DOUBLE, 86), (K.DOUBLE_HALF_UP, 86), (K.SINGLE_AWAY, 85), (K.SINGLE_HALF_UP, 85)],
)
def test_double_rounding_is_not_only_a_tie_rule(kind, want):
    """acc = 2995, M = 1961572874, e = -5 is exactly 85.4912: two roundings give 86 (the first lands on
    85.5 * 32), one rounding gives 85."""
    assert both(2995, 1961572874, -5, 0.0, kind) == want


def test_sqrdmulh_saturates_its_one_overflow_case():
    """SQRDMULH(INT32_MIN, INT32_MIN) is INT32_MAX, not 2**31."""
    int_min = -(1 << 31)
    assert reference.saturating_rounding_doubling_high_mul(int_min, int_min) == (1 << 31) - 1
    assert both(int_min, int_min, 0, 0.0, K.GEMMLOWP_DOUBLE) == (1 << 31) - 1


@pytest.mark.parametrize("kind", [K.GEMMLOWP_DOUBLE, K.SINGLE_AWAY, K.DOUBLE_HALF_UP, K.SINGLE_HALF_UP])
def test_int32_min_accumulator(kind):
    """INT32_MIN times the largest multiplier (just under 1.0) stays exact: -(2**31) + 1."""
    assert both(-(1 << 31), (1 << 31) - 1, 0, 0.0, kind) == -(1 << 31) + 1


def test_shift_extremes():
    """Right shift 31 rounds 2**30 to 0.5 -> 1 (away); a left shift of 30 wraps a 2-bit accumulator first."""
    assert both(1 << 30, 1 << 30, -31, 0.0, K.GEMMLOWP_DOUBLE) == 0  # (2**29 / 2**31) = 0.25 -> 0
    assert both(1 << 31, 1 << 30, -31, 0.0, K.SINGLE_AWAY) == 1  # 2**31 * 2**-32 = 0.5 -> 1
    # e = +30 multiplies by ~2**29: acc << 30 wraps in int32 before the high multiply (3 << 30 -> -2**30)
    assert both(3, 1 << 30, 30, 0.0, K.GEMMLOWP_DOUBLE) == -(1 << 29)
    assert both(3, 1 << 30, 30, 0.0, K.DOUBLE_HALF_UP) == -(1 << 29)


def test_multipliers_at_or_above_one():
    """m >= 1 is encoded with e > 0 and scales up: acc * 1.5 and acc * 3."""
    m, e = quantize_multiplier(1.5)
    assert e == 1
    for kind in (K.GEMMLOWP_DOUBLE, K.SINGLE_AWAY, K.DOUBLE_HALF_UP, K.SINGLE_HALF_UP, K.INT16_MULTIPLIER):
        assert both(10, m, e, 0.0, kind) == 15
    m, e = quantize_multiplier(3.0)
    assert both(-7, m, e, 0.0, K.GEMMLOWP_DOUBLE) == -21


@given(st.floats(1e-12, 1e4))
def test_quantize_multiplier_encodes_within_half_an_lsb(real):
    """M in [2**30, 2**31) and |M * 2**(e - 31) - real| <= 2**(e - 32), unless flushed to zero."""
    m, e = quantize_multiplier(real)
    if m == 0:
        assert real < 2.0**-31
        return
    assert (1 << 30) <= m < (1 << 31)
    assert abs(m * 2.0 ** (e - 31) - real) <= 2.0 ** (e - 32) * (1 + 1e-12)


def test_quantize_multiplier_renormalises_the_rounding_carry():
    """A mantissa that rounds up to 2**31 becomes 2**30 with the exponent one higher."""
    real = math.ldexp(1 - 2**-40, -3)
    assert quantize_multiplier(real) == (1 << 30, -2)


@given(
    st.integers(-(1 << 31), (1 << 31) - 1),
    st.integers(1 << 30, (1 << 31) - 1),
    st.integers(-31, 14),
    st.sampled_from(list(K)),
    st.floats(2.0**-20, 4.0, width=32),
)
def test_kernel_matches_reference(acc, m, e, kind, scale):
    """Every requantizer's numba kernel equals its reference for any int32 accumulator, M and shift."""
    both(acc, m, e, scale, kind)


@given(
    st.integers(-(1 << 31), (1 << 31) - 1),
    st.integers(1 << 30, (1 << 31) - 1),
    st.integers(-31, 30),
    st.sampled_from([K.GEMMLOWP_DOUBLE, K.SINGLE_AWAY, K.DOUBLE_HALF_UP, K.SINGLE_HALF_UP]),
)
def test_single_and_double_roundings_stay_within_one(acc, m, e, kind):
    """Every fixed-point kind lands within 1 of the exact product's nearest integer (when no wrap occurs)."""
    exact = acc * m * 2.0 ** (e - 31)
    if abs(acc) * 2.0 ** max(e, 0) >= 2**31:
        return  # the left shift wraps in int32 by design
    assert abs(both(acc, m, e, 0.0, kind) - exact) <= 1.0


def test_requantize_wrapper_per_channel_and_relu6():
    """Per-channel scales pick per-channel multipliers, and ReLU6 clamps at zy + round(6 / sy)."""
    acc = np.array([[1000, -1000, 50000]], np.int64)
    out = QParams.of(0.05, -10)
    y = requantize(
        acc,
        input_scale=0.02,
        weight_scale=np.array([0.01, 0.01, 0.01], np.float32),
        output=out,
        fmt=INT8,
        semantics="tflite-reference",
        op="conv2d",
        activation="relu6",
    )
    lo, hi = activation_range("relu6", 0.05, -10, INT8)
    assert (lo, hi) == (-10, 110)
    # 1000 * 0.004 = 4 -> -10 + 4 ; negative -> relu floor ; 200 -> 6 max
    assert y.tolist() == [[-6, -10, 110]]


def test_requantize_wrapper_rejects_wrong_channel_count():
    """A weight scale per channel must match the accumulator's channel count."""
    with pytest.raises(ConfigError, match="weight_scale"):
        requantize(
            np.zeros((1, 3), np.int64),
            input_scale=1.0,
            weight_scale=np.ones(2),
            output=QParams.of(1.0),
            fmt=INT8,
            semantics="xnnpack",
            op="conv2d",
        )


def test_unknown_semantics_suggests_a_name():
    """A misspelt semantics name fails with the closest valid names."""
    with pytest.raises(KeyError, match="tflite-reference"):
        requantize(
            np.zeros((1, 1), np.int64),
            input_scale=1.0,
            weight_scale=1.0,
            output=QParams.of(1.0),
            fmt=INT8,
            semantics="tflite-refrence",
            op="conv2d",
        )


@given(st.sampled_from(list(K)), st.integers(1, 6), st.integers(0, 2**31 - 1), st.booleans())
def test_array_kernel_matches_reference(kind, channels, seed, small):
    """The per-channel span kernel (with its branch-free loops per kind) equals the reference, edges
    included."""
    rng = np.random.default_rng(seed)
    acc = (
        rng.integers(-5000, 5000, channels * 5) if small else rng.integers(-(1 << 31), 1 << 31, channels * 5)
    )
    acc[0] = -(1 << 31)
    mult = rng.integers(1 << 30, (1 << 31) - 1, channels)
    shift = rng.integers(-31, 15 if kind == K.INT16_MULTIPLIER else 31, channels)
    scale = rng.uniform(1e-4, 2.0, channels).astype(np.float32)
    args = (mult, shift, scale, 3, -(1 << 40), 1 << 40, int(kind))
    got, want = np.empty((5, channels), np.int64), np.empty((5, channels), np.int64)
    for row, out_k, out_r in zip(acc.reshape(5, channels), got, want):
        kernels.requantize_span(row, *args, out_k, 0, channels)
        reference.requantize_span(row, *args, out_r, 0, channels)
    np.testing.assert_array_equal(got, want)
