"""Fixed-point helpers of the nonlinear ops: numba kernels equal their plain twins, and hand-written edge
cases."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hwsim.numerics import fixed_point as fx
from hwsim.numerics import kernels_nonlinear as K
from hwsim.numerics import reference as R
from hwsim.numerics import reference_nonlinear as RN

INT32 = st.integers(-(2**31), 2**31 - 1)
MULTIPLIER = st.one_of(st.integers(2**30, 2**31 - 1), st.sampled_from([0, 2**30, 2**31 - 1]))


@given(st.lists(INT32, min_size=1, max_size=40), MULTIPLIER, st.integers(-31, 30))
def test_requantizer_kernel_equals_reference(xs, multiplier, shift):
    """The numba gemmlowp requantizer equals its plain twin and the numpy form, for any int32 input and
    shift."""
    x = np.array(xs, np.int64)
    expected = RN.multiply_by_quantized_multiplier(x, multiplier, shift)
    assert K.multiply_by_quantized_multiplier(x, multiplier, shift).tolist() == expected.tolist()
    assert fx.multiply_by_quantized_multiplier(x, multiplier, shift).tolist() == expected.tolist()


@given(
    st.integers(1, 6),
    st.integers(1, 40),
    st.floats(1e-3, 0.5),
    st.floats(0.5, 2.0),
    st.integers(0, 2**32 - 1),
)
def test_softmax_kernel_equals_reference(rows, cols, input_scale, beta, seed):
    """The numba float-table softmax equals its plain twin on random int8 rows, scales and betas."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, (rows, cols)).astype(np.int64)
    table = fx.softmax_exp_table(input_scale, beta)
    args = (np.float32(1 / 256), -128, -128, 127)
    assert K.softmax_rows(x, table, *args).tolist() == RN.softmax_rows(x, table, *args).tolist()


@given(INT32, INT32)
def test_srdhm_equals_scalar_reference(a, b):
    """The vectorised SRDHM equals the scalar reference of the MAC requantizers, including -2**31 * -2**31."""
    assert int(fx.srdhm(a, b)) == R.saturating_rounding_doubling_high_mul(a, b)


@given(INT32, st.integers(0, 31))
def test_rounding_divide_by_pot_equals_scalar_reference(x, exponent):
    """The vectorised RDBPOT equals the scalar reference for every exponent 0..31."""
    assert int(fx.rounding_divide_by_pot(x, exponent)) == R.rounding_divide_by_pot(x, exponent)


def test_requantizer_tie_table():
    """Ties: the first rounding (SRDHM) goes toward +inf, the second (RDBPOT) away from zero."""
    half = 1 << 30  # 0.5 in Q31
    x = np.array([1, -1, 3, -3, 5, -5, 2**31 - 1, -(2**31)], np.int64)
    assert fx.multiply_by_quantized_multiplier(x, half, 0).tolist() == [1, 0, 2, -1, 3, -2, 2**30, -(2**30)]
    # 0.25: 1 -> 0.5 -> 1 (ties away); 5 -> 2.5 -> 3 (ties up) -> 1.5 -> 2; -5 -> -2.5 -> -2 -> -1
    assert fx.multiply_by_quantized_multiplier(x, half, -1).tolist() == [1, 0, 1, -1, 2, -1, 2**29, -(2**29)]
    # the NEON form rounds both ties up: -3 * 0.25 -> -1.5 -> -1 -> -0.5 -> 0
    assert fx.multiply_by_quantized_multiplier_half_up(x[:6], half, -1).tolist() == [1, 0, 1, 0, 2, -1]
    assert fx.rounding_shift_half_up([2, -2, 6, -6], 2).tolist() == [1, 0, 2, -1]


def test_saturating_helpers_at_the_edges():
    """Shifts saturate at the register bounds, and SRDHM16 / SDHM16 handle -32768 * -32768."""
    assert fx.saturating_left_shift([2**30, -(2**30) - 1, 2**29], 1).tolist() == [2**31 - 1, -(2**31), 2**30]
    assert fx.saturating_left_shift([16384, -16385], 1, bits=16).tolist() == [32767, -32768]
    assert int(fx.srdhm16(-32768, -32768)) == 32767 and int(fx.sdhm16(-32768, -32768)) == 32767
    assert fx.downscale_multiplier_int16(2**31 - 1) == 32767
    assert fx.downscale_multiplier_int16((1 << 30) + (1 << 15)) == 16385  # exactly half: rounds up


@pytest.mark.parametrize("value", [2, 3, 4, 5, 7, 100, 12345, 2**20 + 7, 2**28, 2**29, 2**31 - 1])
def test_inverse_square_root_is_close_to_the_real_one(value):
    """The Newton-Raphson 1/sqrt in Q3.28 agrees with 1/sqrt(v) to 5e-6 relative (its result is not
    normalised)."""
    mult, exponent = fx.inv_sqrt_multiplier_exp(value)
    assert 0 < mult < 2**31
    assert math.isclose(mult * 2.0 ** (exponent - 31), 1 / math.sqrt(value), rel_tol=5e-6)


def test_rsqrt_table_edges():
    """RSQRT gives qmax at the zero point (and below it), and is within one step of the real 1/sqrt
    elsewhere."""
    sx, zx, sy, zy = 0.01, -100, 0.05, -128
    table = fx.rsqrt_table(sx, zx, sy, zy)
    assert (table[: zx + 128 + 1] == 127).all()
    codes = np.arange(zx + 1, 128)
    real = np.clip(np.round(1 / np.sqrt(sx * (codes - zx)) / sy) + zy, -128, 127)
    assert np.abs(table[codes + 128] - real).max() <= 1


def test_hard_swish_is_within_one_step_of_the_real_function():
    """The int16 fixed-point HARD_SWISH stays within one output step of x * relu6(x + 3) / 6 on all codes."""
    sx, zx, sy, zy = 0.04, 10, 0.03, -100
    codes = np.arange(-128, 128)
    y = fx.hard_swish(codes, zx, zy, fx.hard_swish_params(sx, sy), -128, 127)
    x = sx * (codes - zx)
    real = np.clip(np.round(x * np.clip(x + 3, 0, 6) / 6 / sy) + zy, -128, 127)
    assert np.abs(y - real).max() <= 1


def test_float_tables_round_half_away_and_saturate():
    """LOGISTIC / TANH tables round half away from zero, and saturate at both ends of the output type."""
    table = fx.float_lut(fx.tanh_f32, 0.1, 0, 1 / 128, 0, -128, 127)
    assert table[0] == -128 and table[-1] == 127 and table[128] == 0  # tanh(-12.8) * 128 rounds to -128
    assert fx.round_half_away([0.5, 1.5, -0.5, -1.5]).tolist() == [1, 2, -1, -2]
    sig = fx.float_lut(fx.logistic_f32, 0.1, 0, 1 / 256, -128, -128, 127)
    assert sig[128] == 0 and sig[0] == -128 and sig[-1] == 127


def test_mean_multiplier_folds_the_count():
    """mean_multiplier(M, e, n) encodes M * 2**(e - 31) / n to within one unit of the new multiplier."""
    for count in (1, 2, 3, 7, 12, 49, 1000, 2**20):
        mult, exponent = fx.mean_multiplier(1518500250, -3, count)
        real = 1518500250 * 2.0**-34 / count
        assert abs(mult * 2.0 ** (exponent - 31) - real) <= 2.0 ** (exponent - 31)
