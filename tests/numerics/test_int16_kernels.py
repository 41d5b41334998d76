"""TFLite's int16 (16x8) LOGISTIC, TANH and SOFTMAX kernels: numba equals the plain twin, edge cases, and
outputs pinned from the live TFLite 2.21 interpreter (BUILTIN_REF; the optimized, XNNPACK and TFLite Micro
interpreters gave the same values on all 65,536 codes, ``tests/runtimes/test_tflite_16x8.py``)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hwsim.numerics import fixed_point as fx
from hwsim.numerics import kernels_nonlinear as K
from hwsim.numerics import reference_nonlinear as RN
from hwsim.numerics.requant_kinds import quantize_multiplier

TABLE = fx.SIGMOID_TABLE_UINT16
# A 16x8 model's input scale (float32) and codes, with what TFLite computed from them.
SCALE = 0.000152500782860443
CODES = [
    -32768,
    -20000,
    -4097,
    -1000,
    -129,
    -1,
    0,
    1,
    130,
    999,
    4096,
    12345,
    20001,
    32767,
    0,
    100,
    -100,
    3000,
    -3000,
    50,
    7,
    -32768,
    0,
    0,
]
TANH = [
    -32765,
    -32621,
    -18168,
    -4959,
    -646,
    -5,
    0,
    5,
    651,
    4953,
    18167,
    31284,
    32621,
    32765,
    0,
    499,
    -499,
    14027,
    -14027,
    251,
    35,
    -32765,
]
LOGISTIC = [
    220,
    1482,
    11426,
    15137,
    16223,
    16383,
    16384,
    16385,
    16547,
    17630,
    21342,
    28440,
    31286,
    32548,
    16384,
    16509,
    16259,
    20068,
    12700,
    16447,
    16393,
    220,
]
SOFTMAX = [
    41,
    286,
    3231,
    5183,
    5918,
    6035,
    6036,
    6037,
    184,
    210,
    337,
    1185,
    3808,
    26680,
    181,
    183,
    4474,
    7178,
    2875,
    4577,
    4548,
    31,
]  # rows of 8 codes; the third row ends in two more zeros
CODE = st.integers(-32768, 32767)
SHIFTS = st.one_of(
    st.tuples(st.just(0), st.sampled_from([0, 1])), st.tuples(st.integers(16384, 32767), st.integers(1, 31))
)


def _multiplier(pot_shifts):
    return fx.int16_table_multiplier(SCALE, pot_shifts)


@pytest.mark.parametrize("kernels", [K, RN], ids=["numba", "reference"])
def test_pinned_outputs_of_the_live_interpreter(kernels):
    """TANH, LOGISTIC and SOFTMAX reproduce TFLite's outputs for the codes above, in both implementations."""
    x = np.array(CODES, np.int64)
    assert kernels.tanh_int16(x, *_multiplier((0, 1)), TABLE)[:22].tolist() == TANH
    assert kernels.logistic_int16(x, *_multiplier((0,)), TABLE)[:22].tolist() == LOGISTIC
    mult, shift = quantize_multiplier(SCALE / (10.0 / 65535.0))
    y = kernels.softmax_rows_int16(x.reshape(3, 8), *fx.softmax_int16_tables(), mult, shift)
    assert y.ravel()[:22].tolist() == SOFTMAX


@given(st.lists(CODE, min_size=1, max_size=64), SHIFTS)
def test_table_activations_kernel_equals_reference(codes, params):
    """The numba LOGISTIC and TANH equal their plain twins for any codes, power-of-two or general
    multiplier."""
    x = np.array(codes, np.int64)
    for name in ("logistic_int16", "tanh_int16"):
        assert getattr(K, name)(x, *params, TABLE).tolist() == getattr(RN, name)(x, *params, TABLE).tolist()


@given(st.integers(1, 4), st.integers(1, 40), st.floats(1e-5, 1e-2), st.integers(0, 2**32 - 1))
def test_softmax_kernel_equals_reference(rows, cols, scale, seed):
    """The numba int16 softmax equals its plain twin on random rows and input scales; rows sum to about 1."""
    x = np.random.default_rng(seed).integers(-32768, 32768, (rows, cols)).astype(np.int64)
    mult, shift = quantize_multiplier(scale / (10.0 / 65535.0))
    y = K.softmax_rows_int16(x, *fx.softmax_int16_tables(), mult, shift)
    assert y.tolist() == RN.softmax_rows_int16(x, *fx.softmax_int16_tables(), mult, shift).tolist()
    assert np.all(np.abs(y.sum(axis=1) - 32768) <= cols + 2)


def test_table_edges():
    """Both activations are monotonic and odd around their centre (within 2 LSB: the input rescale rounds
    ties up, not symmetrically)."""
    x = np.arange(-32767, 32768, dtype=np.int64)
    for multiplier, shift in ((0, 0), _multiplier((0,))):
        tanh = K.tanh_int16(x, multiplier, shift, TABLE)
        logistic = K.logistic_int16(x, multiplier, shift, TABLE)
        assert np.all(np.abs(tanh + tanh[::-1]) <= 2)
        assert np.all(np.abs(logistic + logistic[::-1] - 32768) <= 2)
        assert np.all(np.diff(tanh) >= 0) and np.all(np.diff(logistic) >= 0)


def test_int16_lut_follows_its_function():
    """The 513-entry tables stay within 2 LSB of the real function at every step start (the bias moves
    each entry by at most half the interpolation error) and keep the function's monotonicity."""
    exp_table, recip_table = fx.softmax_int16_tables()
    steps = np.arange(513)
    exact_exp = np.exp(-10 + steps * 10 / 512) * 65535 / 2
    exact_recip = 1 / (1 + steps / 512) * 65535 / 2
    assert np.max(np.abs(exp_table - np.minimum(exact_exp, 32767))) <= 2
    assert np.max(np.abs(recip_table - np.minimum(exact_recip, 32767))) <= 2
    assert np.all(np.diff(exp_table) >= 0) and np.all(np.diff(recip_table) <= 0)


def test_table_multiplier_of_power_of_two_scales():
    """A power-of-two scale gives multiplier 0 only where the kernel's shift allows it (TANH also shift 1)."""
    assert fx.int16_table_multiplier(2.0**-12, (0,)) == (0, 0)
    assert fx.int16_table_multiplier(2.0**-11, (0, 1)) == (0, 1)
    mult, shift = fx.int16_table_multiplier(2.0**-11, (0,))
    assert mult > 0 and abs(mult / 2**shift - 2.0**-11 * 4096 * 3) < 1e-3
