"""Rounding modes, overflow modes and quantize/dequantize: tie tables, kernel == reference, granularities."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from hwsim.errors import ConfigError
from hwsim.numerics import kernels, ops, reference
from hwsim.numerics.formats import IntFormat, OverflowMode, RoundingMode

TIES = [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5]
TIE_TABLE = {
    RoundingMode.HALF_EVEN: [-2, -2, 0, 0, 2, 2],
    RoundingMode.HALF_AWAY: [-3, -2, -1, 1, 2, 3],
    RoundingMode.HALF_UP: [-2, -1, 0, 1, 2, 3],
    RoundingMode.FLOOR: [-3, -2, -1, 0, 1, 2],
    RoundingMode.CEIL: [-2, -1, 0, 1, 2, 3],
    RoundingMode.TO_ZERO: [-2, -1, 0, 0, 1, 2],
}
BELOW_HALF = float(np.nextafter(np.float32(0.5), np.float32(0)))  # 0.49999997: not a tie


@pytest.mark.parametrize("mode", list(TIE_TABLE))
@pytest.mark.parametrize("impl", [reference, kernels], ids=["reference", "kernel"])
def test_tie_table(mode, impl):
    """Every deterministic mode rounds the exact half-way cases as its table says."""
    assert [int(impl.round_real(x, int(mode), 0.0)) for x in TIES] == TIE_TABLE[mode]


@pytest.mark.parametrize("mode", [RoundingMode.HALF_EVEN, RoundingMode.HALF_AWAY, RoundingMode.HALF_UP])
@pytest.mark.parametrize("impl", [reference, kernels], ids=["reference", "kernel"])
def test_just_below_half_is_not_a_tie(mode, impl):
    """0.49999997 rounds to 0 and -0.49999997 to 0 (the floor(x + 0.5) float trap gives 1)."""
    assert int(impl.round_real(BELOW_HALF, int(mode), 0.0)) == 0
    assert int(impl.round_real(-BELOW_HALF, int(mode), 0.0)) == 0


def test_every_mode_has_a_tie_row_or_is_stochastic():
    """Adding a rounding mode without a tie table row fails here."""
    assert set(RoundingMode) - set(TIE_TABLE) == {RoundingMode.STOCHASTIC}


@given(
    st.floats(-1e6, 1e6) | st.integers(-(10**6), 10**6).map(lambda i: i / 2),
    st.sampled_from(list(RoundingMode)),
    st.floats(0, 1, exclude_max=True),
)
def test_round_kernel_matches_reference(x, mode, u):
    """The numba scalar rounding equals the reference for any float, tie or not, in every mode."""
    assert int(kernels.round_real(x, int(mode), u)) == reference.round_real(x, int(mode), u)


@pytest.mark.parametrize("impl", [reference, kernels], ids=["reference", "kernel"])
def test_overflow_modes(impl):
    """SATURATE clamps, WRAP keeps the low bits, EXACT keeps the value (int8 register)."""
    lo, hi = -128, 127
    assert [int(impl.fit(v, lo, hi, int(OverflowMode.SATURATE))) for v in (-300, 128, 5)] == [-128, 127, 5]
    assert [int(impl.fit(v, lo, hi, int(OverflowMode.WRAP))) for v in (-129, 128, 255, 256)] == [
        127,
        -128,
        -1,
        0,
    ]
    assert int(impl.fit(1000, lo, hi, int(OverflowMode.EXACT))) == 1000
    assert [int(impl.fit(v, 0, 15, int(OverflowMode.WRAP))) for v in (16, -1)] == [0, 15]


formats = st.builds(IntFormat, st.integers(2, 16), st.booleans(), st.booleans())


@st.composite
def quantize_cases(draw):
    fmt = draw(formats)
    n = draw(st.integers(1, 40))
    x = draw(
        hnp.arrays(
            np.float32,
            n,
            elements=st.floats(-1e4, 1e4, width=32) | st.integers(-200, 200).map(lambda i: i / 2),
        )
    )
    scale = draw(st.floats(0.0009765625, 10, width=32))
    zp = draw(st.integers(fmt.min, fmt.max))
    mode = draw(st.sampled_from(list(RoundingMode)))
    overflow = draw(st.sampled_from([OverflowMode.SATURATE, OverflowMode.WRAP]))
    return fmt, x, np.float32(scale), zp, mode, overflow


@given(quantize_cases(), st.integers(0, 2**31))
def test_quantize_kernel_matches_reference(case, seed):
    """ops.quantize (numba) equals the reference, for every format 2..16 bits, mode and overflow."""
    fmt, x, scale, zp, mode, overflow = case
    got = ops.quantize(x, scale, zp, fmt, rounding=mode, overflow=overflow, seed=seed)
    noise = np.random.default_rng(seed).random(x.size) if mode == RoundingMode.STOCHASTIC else np.empty(0)
    want = reference.quantize(
        x, np.full(x.shape, scale), np.full(x.shape, zp), fmt.min, fmt.max, int(mode), int(overflow), noise
    )
    np.testing.assert_array_equal(got.astype(np.int64), want)
    assert got.dtype == fmt.storage_dtype
    assert got.min() >= fmt.min and got.max() <= fmt.max


def test_quantize_divides_in_float32(rng):
    """The quotient is a float32 (ONNX QuantizeLinear): 0.3 / 0.1 rounds from float32 3.0 to 3, not 2."""
    assert float(np.float32(0.3) / np.float32(0.1)) == 3.0
    assert ops.quantize(np.array([0.3], np.float32), 0.1, 0)[0] == 3


def test_stochastic_rounding_is_seeded_and_unbiased():
    """Same seed gives the same codes; the mean of many roundings of 0.3 is close to 0.3."""
    x = np.full(20000, 0.3, np.float32)
    a = ops.quantize(x, 1.0, 0, rounding="stochastic", seed=7)
    np.testing.assert_array_equal(a, ops.quantize(x, 1.0, 0, rounding="stochastic", seed=7))
    assert not np.array_equal(a, ops.quantize(x, 1.0, 0, rounding="stochastic", seed=8))
    assert abs(a.mean() - 0.3) < 0.01


def test_stochastic_rounding_needs_a_seed():
    """Without a seed, stochastic rounding is refused with an error naming 'seed'."""
    with pytest.raises(ConfigError, match="seed"):
        ops.quantize(np.zeros(3, np.float32), 1.0, rounding="stochastic")


def test_quantize_rejects_nan_and_bad_scale():
    """NaN input and a zero scale are errors naming the argument."""
    with pytest.raises(ConfigError, match="x: contains NaN"):
        ops.quantize(np.array([0.0, np.nan], np.float32), 1.0)
    with pytest.raises(ConfigError, match="scale"):
        ops.quantize(np.zeros(2, np.float32), 0.0)


def test_infinities_saturate():
    """+inf and -inf quantize to the format's max and min."""
    assert ops.quantize(np.array([np.inf, -np.inf], np.float32), 1.0).tolist() == [127, -128]


def test_per_channel_any_axis(rng):
    """Per-channel along axis 1 of a 3-D tensor equals per-tensor quantization of each slice."""
    x = rng.normal(size=(3, 4, 5)).astype(np.float32)
    scale = np.array([0.01, 0.02, 0.05, 0.1], np.float32)
    zp = np.array([-3, 0, 4, 10])
    q = ops.quantize(x, scale, zp, "int8", axis=1)
    for c in range(4):
        np.testing.assert_array_equal(q[:, c], ops.quantize(x[:, c], scale[c], zp[c], "int8"))
    back = ops.dequantize(q, scale, zp, axis=1)
    np.testing.assert_array_equal(back[:, 2], ops.dequantize(q[:, 2], scale[2], zp[2]))


def test_per_group_along_reduction_axis(rng):
    """Per-group scales (channel axis 0, groups of 16 along axis 1) equal quantizing each block alone."""
    w = rng.normal(size=(3, 40)).astype(np.float32)
    scale = rng.uniform(0.01, 0.1, size=(3, 3)).astype(np.float32)  # ceil(40 / 16) = 3 groups
    q = ops.quantize(w, scale, 0, "int4", axis=0, group_size=16, group_axis=1)
    for c in range(3):
        for g in range(3):
            block = w[c, g * 16 : (g + 1) * 16]
            np.testing.assert_array_equal(
                q[c, g * 16 : (g + 1) * 16], ops.quantize(block, scale[c, g], 0, "int4")
            )
    fq = ops.fake_quantize(w, scale, 0, "int4", axis=0, group_size=16, group_axis=1)
    np.testing.assert_array_equal(fq[2, 32:], q[2, 32:].astype(np.float32) * scale[2, 2])


def test_per_group_channel_after_group_axis(rng):
    """Groups along axis 0 with channels on axis 1 (a [K, N] weight) index scales as [channel, group]."""
    w = rng.normal(size=(32, 2)).astype(np.float32)
    scale = np.array([[0.1, 0.2], [0.3, 0.4]], np.float32)  # [channel, group]
    q = ops.quantize(w, scale, 0, "int8", axis=1, group_size=16, group_axis=0)
    np.testing.assert_array_equal(q[16:, 0], ops.quantize(w[16:, 0], 0.2, 0))
    np.testing.assert_array_equal(q[:16, 1], ops.quantize(w[:16, 1], 0.3, 0))


def test_parameter_shape_errors():
    """Wrong parameter shapes name the parameter and the expected shape."""
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(ConfigError, match=r"scale: per-channel along axis 1 needs shape \(3,\)"):
        ops.quantize(x, np.ones(2, np.float32), 0, axis=1)
    with pytest.raises(ConfigError, match="per-tensor needs one value"):
        ops.quantize(x, np.ones(2, np.float32), 0)
    with pytest.raises(ConfigError, match="per-group"):
        ops.quantize(x, np.ones((2, 3), np.float32), 0, axis=0, group_size=2, group_axis=1)


@pytest.mark.parametrize("signed", [True, False])
def test_qparams_cover_the_range(signed):
    """Asymmetric and symmetric parameters map the range ends to codes within one step of the format's
    ends."""
    fmt = IntFormat(8, signed)
    scale, zp = ops.qparams_from_range(-1.0, 3.0, fmt)
    q = ops.quantize(np.array([-1.0, 0.0, 3.0], np.float32), scale, zp, fmt)
    assert q[1] == zp  # zero is exactly representable
    assert q[0] <= fmt.min + 1 and q[2] >= fmt.max - 1
    s_scale, s_zp = ops.qparams_from_range(-1.0, 3.0, IntFormat(8, True, narrow_range=True), symmetric=True)
    assert s_zp == 0 and np.isclose(s_scale, 3.0 / 127)
    p_scale, _ = ops.qparams_from_range(-1.0, 3.0, fmt, power_of_two=True)
    assert np.log2(p_scale) == np.round(np.log2(p_scale))


def test_int_format_names_and_errors():
    """Formats parse from names, and an impossible width is an error naming 'bits'."""
    assert IntFormat.parse("uint4") == IntFormat(4, False)
    assert IntFormat.parse("int8n") == IntFormat(8, True, True)
    assert (IntFormat(2).min, IntFormat(2).max) == (-2, 1)
    assert IntFormat(32).max == 2**31 - 1
    with pytest.raises(ConfigError, match="bits"):
        IntFormat(65)
    with pytest.raises(ConfigError, match="integer format"):
        IntFormat.parse("float8")


def test_reciprocal_fma_quantize_adds_the_zero_point_before_rounding():
    """PyTorch's rule: round(float32(x * float32(1/s) + zp)) in one rounding; the divide rule rounds first."""
    x = np.array([0.125, -0.125, 0.375], np.float32)
    assert ops.quantize(x, 0.25, 1, "int8", method="reciprocal-fma").tolist() == [2, 0, 2]  # 1.5, 0.5, 2.5
    assert ops.quantize(x, 0.25, 1, "int8").tolist() == [1, 1, 3]  # 0.5 -> 0, -0.5 -> 0, 1.5 -> 2, then + 1
    with pytest.raises(ConfigError, match="method"):
        ops.quantize(x, 0.25, 1, "int8", method="multiply")
