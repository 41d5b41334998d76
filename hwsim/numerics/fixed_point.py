"""Fixed-point and table arithmetic of TFLite's nonlinear int8 kernels, written as plain numpy.

Everything here is integer math on int64 arrays (wide enough for every product below) or float32 math done
one IEEE operation at a time, so results do not depend on numpy's dtype promotion. The functions are
hwsim's own statements of the math TFLite's kernels compute (gemmlowp fixed point, lookup tables built at
prepare time, float32 softmax tables); which resolver uses which is recorded in
:mod:`hwsim.runtime.nonlinear`.

Notation: ``SRDHM(a, b)`` is gemmlowp's SaturatingRoundingDoublingHighMul, round(a * b / 2**31) with ties
toward +inf (the nudge is +2**30 for a non-negative product, 1 - 2**30 for a negative one, then C division
truncates), saturating the one overflow case a = b = -2**31. ``RDBPOT(x, r)`` is RoundingDivideByPOT:
x / 2**r rounded to nearest, ties away from zero.
"""

from __future__ import annotations

import functools
import math
from typing import Callable

import numpy as np

from hwsim.numerics.requant_kinds import quantize_multiplier

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1
_F32 = np.float32


def _i64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.int64)


def _trunc_div_pot(x: np.ndarray, bits: int) -> np.ndarray:
    """C division of int64 ``x`` by 2**bits (truncates toward zero)."""
    return np.where(x >= 0, x >> bits, -((-x) >> bits))


def wrap32(x) -> np.ndarray:
    """The low 32 bits of ``x`` as signed values (a C int32 store).

    >>> wrap32([2**31, -2**31 - 1, 5]).tolist()
    [-2147483648, 2147483647, 5]
    """
    return ((_i64(x) + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def srdhm(a, b) -> np.ndarray:
    """gemmlowp SaturatingRoundingDoublingHighMul of int32 values: round(a * b / 2**31), ties toward +inf.

    >>> # 0.5 * 0.5 in Q31; 1.5 -> 2; -1.5 -> -1; -2.5 -> -2
    >>> srdhm([1 << 30, -(1 << 30), 3, -3, -5], 1 << 30).tolist()
    [536870912, -536870912, 2, -1, -2]
    >>> srdhm(-2**31, -2**31).tolist()  # the one product that does not fit saturates
    2147483647
    """
    a, b = np.broadcast_arrays(_i64(a), _i64(b))
    ab = a * b
    q = ab + np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    return np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, _trunc_div_pot(q, 31))


def srdhm16(a, b) -> np.ndarray:
    """The int16 SaturatingRoundingDoublingHighMul: round(a * b / 2**15), ties toward +inf.

    >>> srdhm16([3, -3, 16384], 16384).tolist()  # 1.5 -> 2, -1.5 -> -1, 0.5 * 0.5 = 0.25
    [2, -1, 8192]
    >>> srdhm16(-32768, -32768).tolist()
    32767
    """
    a, b = np.broadcast_arrays(_i64(a), _i64(b))
    ab = a * b
    q = ab + np.where(ab >= 0, 1 << 14, 1 - (1 << 14))
    return np.where((a == -32768) & (b == -32768), 32767, _trunc_div_pot(q, 15))


def sdhm16(a, b) -> np.ndarray:
    """The int16 SaturatingDoublingHighMul without rounding: a * b / 2**15 truncated toward zero.

    >>> sdhm16([3, -3, 1, -1], 16384).tolist()  # 1.5 -> 1, -1.5 -> -1, +-0.5 -> 0
    [1, -1, 0, 0]
    """
    a, b = np.broadcast_arrays(_i64(a), _i64(b))
    return np.where((a == -32768) & (b == -32768), 32767, _trunc_div_pot(a * b, 15))


def rounding_divide_by_pot(x, exponent) -> np.ndarray:
    """gemmlowp RoundingDivideByPOT: x / 2**exponent rounded to nearest, ties away from zero.

    >>> rounding_divide_by_pot([5, -5, 6, -6, 7, -7], 2).tolist()  # 1.25, -1.25, +-1.5, +-1.75
    [1, -1, 2, -2, 2, -2]
    >>> rounding_divide_by_pot([-3, 3], 0).tolist()
    [-3, 3]
    """
    x, e = np.broadcast_arrays(_i64(x), _i64(exponent))
    mask = (np.int64(1) << e) - 1
    threshold = (mask >> 1) + (x < 0)
    return (x >> e) + ((x & mask) > threshold)


def rounding_shift_half_up(x, exponent) -> np.ndarray:
    """(x + 2**(exponent-1)) >> exponent: nearest, ties toward +inf (ARM's rounding shift, VRSHL).

    >>> rounding_shift_half_up([6, -6, 5, -5], 2).tolist()  # 1.5 -> 2, -1.5 -> -1, 1.25, -1.25
    [2, -1, 1, -1]
    """
    x, e = np.broadcast_arrays(_i64(x), _i64(exponent))
    half = np.where(e > 0, np.int64(1) << np.maximum(e - 1, 0), 0)
    return (x + half) >> e


def saturating_left_shift(x, exponent: int, bits: int = 32) -> np.ndarray:
    """x * 2**exponent saturated to a signed ``bits``-bit register (gemmlowp SaturatingRoundingMultiplyByPOT).

    >>> saturating_left_shift([1, -1, 1 << 29, -(1 << 29)], 2).tolist()
    [4, -4, 2147483647, -2147483648]
    """
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return np.clip(_i64(x) << exponent, lo, hi)


def multiply_by_quantized_multiplier(x, multiplier, shift) -> np.ndarray:
    """TFLite MultiplyByQuantizedMultiplier on int32 ``x``: RDBPOT(SRDHM(wrap32(x << l), M), r).

    ``shift`` is the exponent e of the real multiplier M * 2**(e - 31); l = max(e, 0), r = max(-e, 0).
    Two roundings, the first ties up, the second ties away from zero: with M = 2**30, e = 0 (0.5),
    3 -> 1.5 -> 2 and -3 -> -1.5 -> -1.

    >>> multiply_by_quantized_multiplier([3, -3, 1], 1 << 30, 0).tolist()
    [2, -1, 1]
    >>> multiply_by_quantized_multiplier([3, -3], 1 << 30, -1).tolist()  # 0.75 -> 1 (1.5 then 0.75)
    [1, -1]
    """
    x, m, e = np.broadcast_arrays(_i64(x), _i64(multiplier), _i64(shift))
    left, right = np.maximum(e, 0), np.maximum(-e, 0)
    return rounding_divide_by_pot(srdhm(wrap32(x << left), m), right)


def multiply_by_quantized_multiplier_half_up(x, multiplier, shift) -> np.ndarray:
    """The ARM-NEON form of the requantizer: (wrap32(x << l) * M + 2**30) >> 31, then a half-up shift by r.

    TFLite's optimized kernels compute it with VQRDMULH and VRSHL (emulated on x86 by NEON_2_SSE); both
    roundings go toward +inf on ties, so -3 * 0.5 gives -1 where the gemmlowp form gives -2.

    >>> multiply_by_quantized_multiplier_half_up([3, -3], 1 << 30, 0).tolist()
    [2, -1]
    """
    x, m, e = np.broadcast_arrays(_i64(x), _i64(multiplier), _i64(shift))
    left, right = np.maximum(e, 0), np.maximum(-e, 0)
    high = np.minimum((wrap32(x << left) * m + (1 << 30)) >> 31, INT32_MAX)
    return rounding_shift_half_up(high, right)


def downscale_multiplier_int16(multiplier: int) -> int:
    """A Q31 multiplier rounded to Q15: (M + 2**15) >> 16, or 32767 when that would overflow int16.

    >>> downscale_multiplier_int16(1 << 30), downscale_multiplier_int16(2**31 - 1)
    (16384, 32767)
    """
    if multiplier >= INT32_MAX - (1 << 15):
        return 32767
    return (multiplier + (1 << 15)) >> 16


def round_half_away(x) -> np.ndarray:
    """C ``round()`` of float values: nearest, ties away from zero, as int64.

    >>> round_half_away([0.5, -0.5, 1.5, -2.5, 2.4999]).tolist()
    [1, -1, 2, -3, 2]
    """
    x = np.asarray(x, np.float64)
    return (np.sign(x) * np.floor(np.abs(x) + 0.5)).astype(np.int64)


# ---------------------------------------------------------------- float32 transcendental helpers
def exp_f32(x) -> np.ndarray:
    """expf of float32 values: exp in double, rounded once to float32 (libm's expf is correctly rounded
    except in rare cases none of TFLite's tables has hit)."""
    with np.errstate(over="ignore"):  # overflow to inf is what expf returns too
        return np.exp(np.asarray(x, np.float32).astype(np.float64)).astype(np.float32)


def logistic_f32(x) -> np.ndarray:
    """TFLite's float logistic for tables: 1.0f / (1.0f + expf(-x)), each step in float32.

    >>> logistic_f32([0.0, 100.0, -100.0]).tolist()  # expf(100) overflows to inf, as in C
    [0.5, 1.0, 0.0]
    """
    e = exp_f32(-np.asarray(x, np.float32))
    return (_F32(1) / (_F32(1) + e)).astype(np.float32)


def tanh_f32(x) -> np.ndarray:
    """tanhf of float32 values (tanh in double, rounded once to float32).

    >>> tanh_f32([0.0, 20.0]).tolist()
    [0.0, 1.0]
    """
    return np.tanh(np.asarray(x, np.float32).astype(np.float64)).astype(np.float32)


def float_lut(
    transform: Callable[[np.ndarray], np.ndarray],
    input_scale: float,
    input_zero_point: int,
    output_scale: float,
    output_zero_point: int,
    qmin: int,
    qmax: int,
) -> np.ndarray:
    """The 8-bit lookup table TFLite builds at prepare time for LOGISTIC and TANH.

    For every code v in [qmin, qmax]: y = clamp(round_half_away(f(sx * (v - zx)) * (1 / sy)) + zy), where
    sx * (v - zx), 1 / sy and the product are float32 operations. Returns y indexed by v - qmin.

    >>> # x = -12.8, 0, 12.7
    >>> float_lut(logistic_f32, 0.1, 0, 1 / 256, -128, -128, 127)[[0, 128, 255]].tolist()
    [-128, 0, 127]
    """
    codes = np.arange(qmin, qmax + 1, dtype=np.int64)
    real = (_F32(input_scale) * (codes - input_zero_point).astype(np.float32)).astype(np.float32)
    inverse = _F32(1) / _F32(output_scale)
    scaled = (np.asarray(transform(real), np.float32) * inverse).astype(np.float32)
    return np.clip(round_half_away(scaled) + output_zero_point, qmin, qmax)


# ---------------------------------------------------------------- HARD_SWISH
def hard_swish_params(input_scale: float, output_scale: float) -> tuple[int, int, int, int]:
    """(output_multiplier_q15, output_exponent, reluish_multiplier_q15, reluish_exponent) of TFLite's int8
    HARD_SWISH.

    hires_input_scale = float32(sx / 128); output multiplier = hires / sy; reluish multiplier = hires / (3 /
    32768), each a float32 quotient encoded by QuantizeMultiplier and rounded to Q15.
    """
    hires = _F32(_F32(1.0 / 128.0) * _F32(input_scale))
    out_m, out_e = quantize_multiplier(float(_F32(hires / _F32(output_scale))))
    rel_m, rel_e = quantize_multiplier(float(_F32(hires / _F32(_F32(3.0) / _F32(32768.0)))))
    return downscale_multiplier_int16(out_m), out_e, downscale_multiplier_int16(rel_m), rel_e


def hard_swish(
    x, input_zero_point: int, output_zero_point: int, params: tuple[int, int, int, int], qmin: int, qmax: int
) -> np.ndarray:
    """TFLite's int8 HARD_SWISH, x * relu6(x + 3) / 6, in int16 fixed point (identical in every resolver).

    v = (x - zx) * 128 (int16); a = SRDHM16(v, M_out) is x on the output scale before its right shift;
    the "reluish" factor r = SRDHM16(v << (e_r - 1), M_r) << 1 (or RDBPOT by -e_r), mapped from [-1, 1]
    to [0, 1] by (r + 2**15) >> 1; then y = RDBPOT(SDHM16(r, a), -e_out) + zy, clamped.

    >>> p = hard_swish_params(0.05, 0.05)
    >>> hard_swish([0, 60, -60, 127], 0, 0, p, -128, 127).tolist()  # 0, 3 -> 3, -3 -> 0, 6.35 -> 6.35
    [0, 60, 0, 127]
    """
    out_m, out_e, rel_m, rel_e = params
    v = _i64(x) - input_zero_point
    hires = np.clip(v * 128, -32768, 32767)
    preshift = srdhm16(hires, out_m)
    reluish = hires
    if rel_e > 0:
        reluish = saturating_left_shift(reluish, rel_e - 1, 16)
    reluish = srdhm16(reluish, rel_m)
    if rel_e > 0:
        reluish = saturating_left_shift(reluish, 1, 16)
    if rel_e < 0:
        reluish = rounding_divide_by_pot(reluish, -rel_e)
    reluish = (reluish + (1 << 15)) >> 1
    y = rounding_divide_by_pot(sdhm16(reluish, preshift), -out_e) + output_zero_point
    return np.clip(y, qmin, qmax)


# ---------------------------------------------------------------- RSQRT
def _sat_shift32(x: int, e: int) -> int:
    return int(saturating_left_shift(x, e)) if e > 0 else int(rounding_divide_by_pot(x, -e))


def inv_sqrt_multiplier_exp(value: int) -> tuple[int, int]:
    """(M, e) with M * 2**(e - 31) ~ 1 / sqrt(value), as TFLite's GetInvSqrtQuantizedMultiplierExp computes
    it.

    The input is normalised by pairs of bits into [2**27, 2**29), then five Newton-Raphson steps
    x <- 1.5 x - (v / 2) x**3 run in gemmlowp Q3.28 arithmetic (every product an SRDHM, every rescale a
    saturating shift), and the result is multiplied by sqrt(2) / 2 (1518500250 in Q0.31). Inputs 0 and 1
    give (2**31 - 1, 0).

    >>> inv_sqrt_multiplier_exp(1)
    (2147483647, 0)
    >>> m, e = inv_sqrt_multiplier_exp(4); round(m * 2.0 ** (e - 31), 6)
    0.5
    """
    if value <= 1:
        return INT32_MAX, 0
    shift = 11
    while value >= (1 << 29):
        value //= 4
        shift += 1
    pairs = ((32 - value.bit_length()) - 1) // 2 - 1
    shift -= pairs
    value <<= 2 * pairs

    def mul(a: int, b: int) -> int:
        return int(srdhm(a, b))

    x_in = value >> 1  # Q3.28
    half_in = int(rounding_divide_by_pot(x_in, 1))
    half_three = (1 << 28) + (1 << 27)  # 1.5 in Q3.28
    x = 1 << 28  # 1.0 in Q3.28
    for _ in range(5):
        x3 = _sat_shift32(mul(mul(x, x), x), 6)  # Q9 -> Q3
        x = _sat_shift32(int(wrap32(mul(half_three, x) - mul(half_in, x3))), 3)  # Q6 -> Q3
    x = mul(x, 1518500250)
    if shift < 0:
        x = int(wrap32(x << -shift))
        shift = 0
    return x, -shift


def rsqrt_table(
    input_scale: float,
    input_zero_point: int,
    output_scale: float,
    output_zero_point: int,
    qmin: int = -128,
    qmax: int = 127,
) -> np.ndarray:
    """TFLite's int8 RSQRT for every input code (indexed by code - qmin); codes below zx have no value (qmax).

    multiplier = 1 / (float32(sqrt(sx)) * sy) in double; for v = x - zx > 0:
    d = MBQM(1, inv_sqrt(v) with exponent + 20), y = MBQM(d, multiplier with exponent - 20) + zy; v = 0 gives
    qmax.
    """
    scale = 1.0 / float(_F32(_F32(math.sqrt(float(_F32(input_scale)))) * _F32(output_scale)))
    mult, shift = quantize_multiplier(scale)
    out = np.full(qmax - qmin + 1, qmax, np.int64)
    for code in range(qmin, qmax + 1):
        value = code - input_zero_point
        if value <= 0:
            continue
        inv_m, inv_e = inv_sqrt_multiplier_exp(value)
        data = int(multiply_by_quantized_multiplier(1, inv_m, inv_e + 20))
        y = int(multiply_by_quantized_multiplier(data, mult, shift - 20)) + output_zero_point
        out[code - qmin] = min(max(y, qmin), qmax)
    return out


# ---------------------------------------------------------------- SOFTMAX
def softmax_exp_table(input_scale: float, beta: float) -> np.ndarray:
    """TFLite's float32 softmax table: t[d] = expf(float32(-sx * beta) * d) for a distance d = max - x in [0,
    255].

    >>> t = softmax_exp_table(0.5, 1.0); float(t[0]), float(t[2]) == float(np.float32(np.exp(-1.0)))
    (1.0, True)
    """
    scale = _F32(-(_F32(input_scale) * _F32(beta)))
    return exp_f32((scale * np.arange(256, dtype=np.float32)).astype(np.float32))


# ---------------------------------------------------------------- MEAN
def mean_multiplier(multiplier: int, shift: int, count: int) -> tuple[int, int]:
    """Fold a division by ``count`` into (M, e), as TFLite's integer reference mean does.

    s = min(floor(log2(count)), 32, 31 + e); M' = (M << s) // count (integer division); e' = e - s.

    >>> mean_multiplier(1 << 30, 0, 4)  # 0.5 / 4: M unchanged, exponent - 2
    (1073741824, -2)
    >>> mean_multiplier(1 << 30, 0, 3)  # 0.5 / 3 = 715827882 * 2**-32 (truncated)
    (715827882, -1)
    """
    s = min(count.bit_length() - 1, 32, 31 + shift)
    return (multiplier << s) // count, shift - s


# ---------------------------------------------------------------- int16 (16x8) tables
#: sigmoid(i / 24) for i = 0..255 in Q0.16 (saturating at 65535): the constant table TFLite's int16 LOGISTIC
#: and TANH interpolate (``sigmoid_table_uint16`` in tensorflow/lite/kernels/internal/common.h). It is not
#: plain rounding of the real function (44 entries are one above it), so it is data here, not a formula.
SIGMOID_TABLE_UINT16 = np.array(
    [
        32768,
        33451,
        34133,
        34813,
        35493,
        36169,
        36843,
        37513,
        38180,
        38841,
        39498,
        40149,
        40794,
        41432,
        42064,
        42688,
        43304,
        43912,
        44511,
        45102,
        45683,
        46255,
        46817,
        47369,
        47911,
        48443,
        48964,
        49475,
        49975,
        50464,
        50942,
        51409,
        51865,
        52311,
        52745,
        53169,
        53581,
        53983,
        54374,
        54755,
        55125,
        55485,
        55834,
        56174,
        56503,
        56823,
        57133,
        57433,
        57724,
        58007,
        58280,
        58544,
        58800,
        59048,
        59288,
        59519,
        59743,
        59959,
        60168,
        60370,
        60565,
        60753,
        60935,
        61110,
        61279,
        61441,
        61599,
        61750,
        61896,
        62036,
        62172,
        62302,
        62428,
        62549,
        62666,
        62778,
        62886,
        62990,
        63090,
        63186,
        63279,
        63368,
        63454,
        63536,
        63615,
        63691,
        63765,
        63835,
        63903,
        63968,
        64030,
        64090,
        64148,
        64204,
        64257,
        64308,
        64357,
        64405,
        64450,
        64494,
        64536,
        64576,
        64614,
        64652,
        64687,
        64721,
        64754,
        64786,
        64816,
        64845,
        64873,
        64900,
        64926,
        64950,
        64974,
        64997,
        65019,
        65039,
        65060,
        65079,
        65097,
        65115,
        65132,
        65149,
        65164,
        65179,
        65194,
        65208,
        65221,
        65234,
        65246,
        65258,
        65269,
        65280,
        65291,
        65301,
        65310,
        65319,
        65328,
        65337,
        65345,
        65352,
        65360,
        65367,
        65374,
        65381,
        65387,
        65393,
        65399,
        65404,
        65410,
        65415,
        65420,
        65425,
        65429,
        65433,
        65438,
        65442,
        65445,
        65449,
        65453,
        65456,
        65459,
        65462,
        65465,
        65468,
        65471,
        65474,
        65476,
        65479,
        65481,
        65483,
        65485,
        65488,
        65489,
        65491,
        65493,
        65495,
        65497,
        65498,
        65500,
        65501,
        65503,
        65504,
        65505,
        65507,
        65508,
        65509,
        65510,
        65511,
        65512,
        65513,
        65514,
        65515,
        65516,
        65517,
        65517,
        65518,
        65519,
        65520,
        65520,
        65521,
        65522,
        65522,
        65523,
        65523,
        65524,
        65524,
        65525,
        65525,
        65526,
        65526,
        65526,
        65527,
        65527,
        65528,
        65528,
        65528,
        65529,
        65529,
        65529,
        65529,
        65530,
        65530,
        65530,
        65530,
        65531,
        65531,
        65531,
        65531,
        65531,
        65532,
        65532,
        65532,
        65532,
        65532,
        65532,
        65533,
        65533,
        65533,
        65533,
        65533,
        65533,
        65533,
        65533,
        65534,
        65534,
        65534,
        65534,
        65534,
        65534,
        65534,
        65534,
        65534,
        65534,
        65535,
    ],
    np.int64,
)


def checked_log2(scale: float) -> tuple[bool, int]:
    """TFLite's CheckedLog2 of a float32 scale: (is a power of two within 1e-3 in log2, rounded log2).

    >>> checked_log2(2.0 ** -12), checked_log2(0.001)
    ((True, -12), (False, -10))
    """
    log2 = _F32(_F32(math.log(float(_F32(scale)))) * _F32(1.0 / float(_F32(math.log(2.0)))))
    rounded = _F32(round_half_away(log2))
    return bool(abs(_F32(log2 - rounded)) < _F32(1e-3)), int(rounded)


def int16_table_multiplier(input_scale: float, pot_shifts: tuple[int, ...]) -> tuple[int, int]:
    """(multiplier, left shift) that TFLite's int16 LOGISTIC / TANH apply to their input codes.

    A power-of-two input scale whose shift 12 + log2(sx) is in ``pot_shifts`` (LOGISTIC: 0; TANH: 0 or 1)
    gives multiplier 0 (the kernel then uses 3 << shift). Otherwise m = sx * 4096 * 3 in double is doubled
    while it is at most 32767 / 2 (and the shift at most 30), and truncated: the input becomes x * m >> shift
    in units of 1 / (3 * 4096), where +-2**17 stands for +-10.7.

    >>> int16_table_multiplier(2.0 ** -12, (0,)), int16_table_multiplier(0.001, (0,))
    ((0, 0), (25165, 11))
    """
    pot, log2 = checked_log2(input_scale)
    shift = 12 + log2
    if pot and shift in pot_shifts:
        return 0, shift
    multiplier, shift = float(_F32(input_scale)) * 4096.0 * 3.0, 0
    while multiplier <= 32767.0 / 2.0 and shift <= 30:
        shift += 1
        multiplier *= 2.0
    return int(multiplier), shift


def lut_int16(
    transform: Callable[[np.ndarray], np.ndarray],
    input_scale: float,
    input_zero_point: int,
    output_scale: float,
    output_zero_point: int,
) -> np.ndarray:
    """The 513-entry int16 table TFLite builds at prepare time (LUTPopulate<int16_t>, float32 arithmetic).

    The int16 input range is cut into 512 steps; entry i is f at the step's start, rounded half away on the
    output scale 65536 / (output range), less half the error (rounded) that linear interpolation would make
    at the step's midpoint; entry 512 is f at the range's end. Every operation is one float32 operation.

    >>> t = lut_int16(exp_f32, 10 / 65535, 32767, 2 / 65535, 0); int(t[512]), int(t[0])  # exp(0), exp(-10)
    (32767, 2)
    """
    scale_in, scale_out = _F32(input_scale), _F32(output_scale)
    input_min = _F32(scale_in * _F32(-32768 - input_zero_point))
    input_max = _F32(scale_in * _F32(32767 - input_zero_point))
    output_min = _F32(scale_out * _F32(-32768 - output_zero_point))
    output_max = _F32(scale_out * _F32(32767 - output_zero_point))
    step = _F32(_F32(input_max - input_min) / _F32(512))
    half_step = _F32(step / _F32(2))
    inverse = _F32(_F32(65536) / _F32(output_max - output_min))
    steps = np.arange(513, dtype=np.float32)
    start = (input_min + (steps * step).astype(np.float32)).astype(np.float32)

    def scaled(x):
        return (np.asarray(transform(x), np.float32) * inverse).astype(np.float32)

    def rounded(x):
        return round_half_away(x).astype(np.float32)

    value = scaled(start[:512])
    value_next = scaled(start[1:])
    value_mid = scaled((start[:512] + half_step).astype(np.float32))
    sample = rounded(value)
    interpolated = rounded(((value_next + sample).astype(np.float32) / _F32(2)).astype(np.float32))
    bias = rounded(((interpolated - rounded(value_mid)).astype(np.float32) / _F32(2)).astype(np.float32))
    table = np.empty(513, np.int64)
    table[:512] = np.clip((sample - bias).astype(np.float32), -32768, 32767).astype(np.int64)
    table[512] = int(np.clip(rounded(scaled(np.array([input_max], np.float32)))[0], -32768, 32767))
    return table


def reciprocal_one_plus_f32(x) -> np.ndarray:
    """1.0f / (1.0f + x) in float32, the function of int16 softmax's second table."""
    return (_F32(1) / (_F32(1) + np.asarray(x, np.float32))).astype(np.float32)


@functools.cache
def softmax_int16_tables() -> tuple[np.ndarray, np.ndarray]:
    """The two 513-entry tables of TFLite's int16 SOFTMAX: exp(x) on [-10, 0] and 1 / (1 + x) on [0, 1],
    both with output scale 2 / 65535 (the float32 quotients of the kernel's prepare step)."""
    span = _F32(65535)
    exp_table = lut_int16(exp_f32, float(_F32(10) / span), 32767, float(_F32(2) / span), 0)
    recip_table = lut_int16(reciprocal_one_plus_f32, float(_F32(1) / span), -32768, float(_F32(2) / span), 0)
    return exp_table, recip_table
