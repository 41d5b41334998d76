"""MAC kernels: GEMM, conv2d, depthwise, pooling, add and int4 packing, kernel == reference == naive numpy.

The ordered (narrow-register) kernels are checked three ways: the numba lanes kernel, its numpy twin (all
outputs per step) and the scalar reference (one output at a time) agree bit for bit, counts included.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from hwsim.errors import ConfigError
from hwsim.numerics import geometry, kernels, kernels_ordered, ops, reference, reference_ordered
from hwsim.numerics.formats import INT8, IntFormat, OverflowMode
from hwsim.numerics.ops import Accumulator
from hwsim.numerics.quantized import QParams, add, xnnpack_add_multipliers
from hwsim.numerics.requant_kinds import RequantKind, quantize_multiplier

OPERANDS = {
    "int8": (np.int8, -128, 127),
    "uint8": (np.uint8, 0, 255),
    "int4": (np.int8, -8, 7),
    "int16": (np.int16, -32768, 32767),
}


def naive_matmul(x, w, zx, zw, bias):
    """Exact integer GEMM in numpy int64 (independent of both implementations)."""
    return (x.astype(np.int64) - zx) @ (w.astype(np.int64) - np.asarray(zw)[None, :]) + bias[None, :]


@st.composite
def gemm_cases(draw, max_dim=6):
    xk, wk = draw(st.sampled_from(list(OPERANDS))), draw(st.sampled_from(["int8", "int4", "uint8"]))
    (xt, xlo, xhi), (wt, wlo, whi) = OPERANDS[xk], OPERANDS[wk]
    m, k, n = (draw(st.integers(1, max_dim)) for _ in range(3))
    x = draw(hnp.arrays(xt, (m, k), elements=st.integers(xlo, xhi)))
    w = draw(hnp.arrays(wt, (k, n), elements=st.integers(wlo, whi)))
    zx = draw(st.integers(xlo, xhi))
    zw = np.array(draw(st.lists(st.integers(wlo, whi), min_size=n, max_size=n)), np.int64)
    bias = np.array(draw(st.lists(st.integers(-(1 << 20), 1 << 20), min_size=n, max_size=n)), np.int64)
    return x, w, zx, zw, bias


@given(
    gemm_cases(max_dim=9),
    st.integers(8, 40),
    st.sampled_from(list(OverflowMode)),
    st.booleans(),
    st.randoms(),
)
def test_ordered_gemm_kernel_matches_reference(case, bits, overflow, bias_last, random):
    """The ordered GEMM (lanes kernel, numpy twin, scalar reference) agree for any register width (int32 and
    int64 lanes), overflow mode, order and bias placement."""
    x, w, zx, zw, bias = case
    order = list(range(x.shape[1]))
    random.shuffle(order)
    fmt = IntFormat(bits)
    args = (x, w, zx, zw, bias, fmt.min, fmt.max, int(overflow), np.array(order, np.int64), bias_last)
    acc_r, count_r = reference.matmul_acc(*args)
    for twin in (kernels_ordered, reference_ordered):
        acc, count = twin.matmul_acc(*args)
        np.testing.assert_array_equal(acc, acc_r)
        assert count == count_r


@given(gemm_cases(max_dim=12))
def test_exact_gemm_equals_naive(case):
    """With a 32-bit register that cannot overflow, ops.matmul (any fast path) is the exact integer
    product."""
    x, w, zx, zw, bias = case
    res = ops.matmul(x, w, x_zero_point=zx, w_zero_point=zw, bias=bias)
    np.testing.assert_array_equal(res.acc, naive_matmul(x, w, zx, zw, bias))
    assert res.overflows == 0


@pytest.mark.parametrize("rows", [1, 3, 16, 64])
@pytest.mark.parametrize(
    "kinds", [("int8", "int8"), ("uint8", "int8"), ("int16", "int8"), ("uint8", "uint8")]
)
def test_fast_paths_exact_at_extremes_and_long_k(rows, kinds):
    """BLAS float32 chunks, the SIMD kernels (VNNI bytes, AVX2 int16 pairs) and the int64 kernel are exact at
    the operand extremes with K = 4096.

    16x8 needs a 64-bit accumulator there (as TFLite uses): 4096 * 32768 * 128 = 2**34."""
    (xt, xlo, xhi), (wt, wlo, whi) = OPERANDS[kinds[0]], OPERANDS[kinds[1]]
    rng = np.random.default_rng(rows)
    k = 4096
    x = rng.choice([xlo, xhi, xlo + 1, 0], size=(rows, k)).astype(xt)
    w = rng.choice([wlo, whi, 1], size=(k, 5)).astype(wt)
    x[0] = xlo  # the largest-magnitude row: K * 128 * 128 = 2**26 > 2**24, so chunking is needed
    w[:, 0] = wlo
    acc = Accumulator(IntFormat(64 if kinds[0] == "int16" else 32))
    res = ops.matmul(x, w, x_zero_point=0, bias=np.arange(5), accumulator=acc)
    np.testing.assert_array_equal(res.acc, naive_matmul(x, w, 0, np.zeros(5, np.int64), np.arange(5)))
    assert res.path in ("blas-float32", "int32", "int64", "vnni", "avx2")


def test_narrow_saturating_accumulator_depends_on_order():
    """Saturating at int8, +100 +100 -100 gives 27 in order but 100 reversed; both count their excursions."""
    x = np.array([[1, 1, 1]], np.int8)
    w = np.array([[100], [100], [-100]], np.int8)
    forward = ops.matmul(x, w, accumulator=Accumulator(IntFormat(8), "saturate"))
    backward = ops.matmul(x, w, accumulator=Accumulator(IntFormat(8), "saturate", order=(2, 1, 0)))
    assert (int(forward.acc[0, 0]), forward.overflows) == (27, 1)
    assert (int(backward.acc[0, 0]), backward.overflows) == (100, 0)
    wrapped = ops.matmul(x, w, accumulator=Accumulator(IntFormat(8), "wrap"))
    assert int(wrapped.acc[0, 0]) == 100  # wrap-around is order independent (modular arithmetic)


def test_exact_accumulator_counts_without_changing_the_sum():
    """EXACT keeps the true sum and counts every partial sum outside the int16 range."""
    x = np.full((1, 8), 127, np.int8)
    w = np.full((8, 1), 127, np.int8)
    res = ops.matmul(x, w, accumulator=Accumulator(IntFormat(16), "exact"))
    assert int(res.acc[0, 0]) == 8 * 127 * 127
    assert res.overflows == 6  # partial sums 3..8 x 16129 exceed 32767


def test_bad_order_is_rejected():
    """An order that is not a permutation of the reduction axis names accumulator.order."""
    with pytest.raises(ConfigError, match="accumulator.order"):
        ops.matmul(
            np.ones((1, 3), np.int8),
            np.ones((3, 1), np.int8),
            accumulator=Accumulator(IntFormat(8), "saturate", order=(0, 0, 1)),
        )


@given(
    hnp.arrays(np.uint8, (2, 9), elements=st.integers(0, 255)),
    hnp.arrays(np.int8, (9, 3), elements=st.integers(-128, 127)),
    st.integers(0, 255),
    st.integers(-128, 127),
)
def test_pairwise16_kernel_matches_reference(x, w, zx, zw):
    """The AVX2 vpmaddubsw model (numba) equals its reference, odd K included."""
    zws = np.full(3, zw, np.int64)
    bias = np.array([5, -5, 0], np.int64)
    np.testing.assert_array_equal(
        kernels.matmul_acc_pairwise16(x, w, zx, zws, bias),
        reference.matmul_acc_pairwise16(x, w, zx, zws, bias),
    )


def test_pairwise16_saturates_where_exact_does_not():
    """255*127 + 255*127 = 64770 saturates to 32767 per pair under AVX2 arithmetic; exact keeps it."""
    x = np.full((1, 4), 255, np.uint8)
    w = np.full((4, 1), 127, np.int8)
    exact = ops.matmul(x, w).acc[0, 0]
    avx2 = ops.matmul(x, w, arithmetic="avx2-pairwise16").acc[0, 0]
    assert (int(exact), int(avx2)) == (4 * 255 * 127, 2 * 32767)


def naive_conv(x, w, zx, zw, bias, stride, pads, dilation, groups):
    """NHWC x OHWI convolution in numpy int64 by explicit padding with the zero point."""
    top, bottom, left, right = pads
    xp = np.pad(x.astype(np.int64) - zx, ((0, 0), (top, bottom), (left, right), (0, 0)))
    out_c, kh, kw, cin_g = w.shape
    oh = (xp.shape[1] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (xp.shape[2] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    out = np.zeros((x.shape[0], oh, ow, out_c), np.int64) + bias
    wz = w.astype(np.int64) - zw[:, None, None, None]
    per_group = out_c // groups
    for o in range(out_c):
        g = o // per_group
        for ky in range(kh):
            for kx in range(kw):
                patch = xp[
                    :,
                    ky * dilation[0] : ky * dilation[0] + stride[0] * (oh - 1) + 1 : stride[0],
                    kx * dilation[1] : kx * dilation[1] + stride[1] * (ow - 1) + 1 : stride[1],
                    g * cin_g : (g + 1) * cin_g,
                ]
                out[..., o] += patch @ wz[o, ky, kx]
    return out


@given(
    st.integers(1, 2),
    st.integers(3, 7),
    st.integers(3, 7),
    st.sampled_from([1, 2, 3]),
    st.integers(1, 3),
    st.integers(1, 3),
    st.integers(1, 2),
    st.integers(1, 2),
    st.sampled_from(["same", "valid", (1, 0, 2, 1)]),
    st.integers(0, 2**31 - 1),
)
def test_conv2d_equals_naive(batch, h, w_, groups, cin_g, kernel, stride, dilation, padding, seed):
    """conv2d accumulators equal naive convolution for any stride, dilation, padding and group count."""
    rng = np.random.default_rng(seed)
    out_c = groups * rng.integers(1, 3)
    x = rng.integers(-128, 128, (batch, h, w_, groups * cin_g)).astype(np.int8)
    w = rng.integers(-127, 128, (out_c, kernel, kernel, cin_g)).astype(np.int8)
    zx = int(rng.integers(-128, 128))
    zw = rng.integers(-5, 5, out_c)
    bias = rng.integers(-1000, 1000, out_c)
    try:
        geo = ops.conv_geometry((h, w_), (kernel, kernel), stride, padding, dilation)
    except ConfigError:
        return  # the window does not fit: covered by test_conv_errors
    res = ops.conv2d(
        x,
        w,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        x_zero_point=zx,
        w_zero_point=zw,
        bias=bias,
    )
    want = naive_conv(x, w, zx, zw, bias, geo.stride, geo.pads, geo.dilation, groups)
    np.testing.assert_array_equal(res.acc, want)


def test_conv2d_same_padding_puts_the_extra_row_last():
    """SAME with an even total pad splits evenly; with an odd total the extra row/column is at the end."""
    assert geometry.resolve_padding("same", (5, 6), (3, 3), (2, 2), (1, 1)) == (1, 1, 0, 1)


def test_conv_errors():
    """Channel and window mismatches are errors naming the argument."""
    x = np.zeros((1, 4, 4, 4), np.int8)
    with pytest.raises(ConfigError, match="groups"):
        ops.conv2d(x, np.zeros((4, 3, 3, 3), np.int8))
    with pytest.raises(ConfigError, match="padding"):
        ops.conv2d(x, np.zeros((4, 5, 5, 4), np.int8))
    with pytest.raises(ConfigError, match="stride"):
        ops.conv2d(x, np.zeros((4, 1, 1, 4), np.int8), stride=0)


@given(
    st.integers(3, 6),
    st.integers(1, 3),
    st.integers(1, 3),
    st.integers(1, 2),
    st.integers(1, 2),
    st.sampled_from(["same", "valid"]),
    st.integers(8, 32),
    st.sampled_from(list(OverflowMode)),
    st.integers(0, 2**31 - 1),
)
def test_depthwise_kernel_matches_reference_and_naive(
    size, mult, kernel, stride, dilation, padding, bits, overflow, seed
):
    """Depthwise (multiplier 1-3): lanes kernel == numpy twin == reference at any register width; at 32 bits
    == naive grouped conv."""
    rng = np.random.default_rng(seed)
    channels = 3
    x = rng.integers(-128, 128, (1, size, size, channels)).astype(np.int8)
    w = rng.integers(-127, 128, (kernel, kernel, channels * mult)).astype(np.int8)
    zw = rng.integers(-3, 3, channels * mult)
    bias = rng.integers(-500, 500, channels * mult)
    try:
        geo = ops.conv_geometry((size, size), (kernel, kernel), stride, padding, dilation)
    except ConfigError:
        return
    fmt = IntFormat(bits)
    args = (
        x,
        w,
        7,
        zw,
        bias,
        *geo.stride,
        *geo.dilation,
        geo.pads[0],
        geo.pads[2],
        *geo.out_hw,
        mult,
        fmt.min,
        fmt.max,
        int(overflow),
    )
    acc_r, n_r = reference.depthwise_acc(*args)
    for twin in (kernels_ordered, reference_ordered):
        acc, count = twin.depthwise_acc(*args)
        np.testing.assert_array_equal(acc, acc_r)
        assert count == n_r
    res = ops.depthwise_conv2d(
        x,
        w[None],
        stride=stride,
        padding=padding,
        dilation=dilation,
        depth_multiplier=mult,
        x_zero_point=7,
        w_zero_point=zw,
        bias=bias,
    )
    w_ohwi = w.transpose(2, 0, 1)[..., None]  # [C*m, kh, kw, 1]: a grouped conv with groups = C
    want = naive_conv(x, w_ohwi, 7, zw, bias, geo.stride, geo.pads, geo.dilation, channels)
    np.testing.assert_array_equal(res.acc, want)


@given(
    st.integers(2, 6),
    st.integers(1, 3),
    st.integers(1, 2),
    st.sampled_from(["same", "valid"]),
    st.booleans(),
    st.integers(0, 2**31 - 1),
)
def test_pool_kernel_matches_reference(size, kernel, stride, padding, is_max, seed):
    """Average and max pooling kernels equal the reference, padded windows included."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, (1, size, size, 2)).astype(np.int8)
    try:
        geo = ops.conv_geometry((size, size), (kernel, kernel), stride, padding, 1)
    except ConfigError:
        return
    args = (x, kernel, kernel, stride, stride, geo.pads[0], geo.pads[2], *geo.out_hw, is_max, -100, 100)
    np.testing.assert_array_equal(kernels.pool2d(*args), reference.pool2d(*args))


def test_average_pool_rounds_half_away_from_zero():
    """avg(1, 2) = 1.5 -> 2 and avg(-1, -2) = -1.5 -> -2, as TFLite's integer average pool rounds."""
    x = np.array([1, 2, -1, -2], np.int8).reshape(1, 2, 2, 1)
    out = ops.pool2d(x, (1, 2), kind="avg", stride=(1, 2))
    assert out.ravel().tolist() == [2, -2]


ADD_CASE = (
    hnp.arrays(np.int8, 20, elements=st.integers(-128, 127)),
    hnp.arrays(np.int8, 20, elements=st.integers(-128, 127)),
    st.integers(-128, 127),
    st.integers(-128, 127),
    st.floats(0.001, 1.0),
    st.floats(0.001, 1.0),
    st.floats(0.001, 1.0),
)


@given(*ADD_CASE, st.sampled_from(["tflite-reference", "tflite-optimized"]))
def test_add_kernel_matches_reference(a, b, z1, z2, s1, s2, so, semantics):
    """TFLite's shifted ADD (reference form, and the optimized 16-element blocks): numba equals the
    reference."""
    got = add(
        a, b, x1_q=QParams.of(s1, z1), x2_q=QParams.of(s2, z2), y_q=QParams.of(so, 3), semantics=semantics
    )
    f1, f2, fo = (float(np.float32(s)) for s in (s1, s2, so))
    twice = 2 * max(f1, f2)
    (m1, e1), (m2, e2) = quantize_multiplier(f1 / twice), quantize_multiplier(f2 / twice)
    mo, eo = quantize_multiplier(twice / ((1 << 20) * fo))
    kind = int(RequantKind.GEMMLOWP_DOUBLE)
    blocked = 16 if semantics == "tflite-optimized" else 0
    head = reference.add_shifted(
        a[:blocked], b[:blocked], z1, z2, 20 + e1, m1, 0, 20 + e2, m2, 0, mo, eo, 3, -128, 127, kind
    )
    tail = reference.add_shifted(
        a[blocked:], b[blocked:], z1, z2, 20, m1, e1, 20, m2, e2, mo, eo, 3, -128, 127, kind
    )
    np.testing.assert_array_equal(got.astype(np.int64), np.concatenate([head, tail]))
    real = s1 * (a.astype(float) - z1) + s2 * (b.astype(float) - z2)
    inside = np.abs(real / float(np.float32(so))) < 120
    assert np.all(np.abs(got[inside] - 3 - real[inside] / float(np.float32(so))) <= 1.01)


@given(*ADD_CASE)
def test_xnnpack_add_kernel_matches_reference(a, b, z1, z2, s1, s2, so):
    """XNNPACK's ADD: numba equals the reference, and the result is within one step of the real sum."""
    m1, m2, shift = xnnpack_add_multipliers(s1, s2, so)
    got = add(
        a, b, x1_q=QParams.of(s1, z1), x2_q=QParams.of(s2, z2), y_q=QParams.of(so, 3), semantics="xnnpack"
    )
    want = reference.add_xnnpack(a, b, z1, z2, m1, m2, shift, 3, -128, 127, np.empty(a.shape, np.int64))
    np.testing.assert_array_equal(got.astype(np.int64), want)
    real = (s1 * (a.astype(float) - z1) + s2 * (b.astype(float) - z2)) / float(np.float32(so))
    inside = np.abs(real) < 120
    assert np.all(np.abs(got[inside] - 3 - real[inside]) <= 1.01)


@given(
    st.sampled_from([np.int8, np.uint8]).flatmap(
        lambda dtype: hnp.arrays(dtype, st.tuples(st.just(2), st.integers(0, 40)))
    ),
    st.integers(-128, 255),
    st.integers(-128, 255),
    st.integers(-(1 << 22), 1 << 22),
    st.integers(-(1 << 22), 1 << 22),
    st.integers(1, 40),
)
def test_xnnpack_add_kernel_matches_twin_in_both_widths(x, z1, z2, m1, m2, shift):
    """The ADD kernel's int32 lanes (sums that fit int32) and its int64 loop (large shifts) equal the twin."""
    args = (x[0], x[1], z1, z2, m1, m2, shift, 3, -128, 127)
    got = kernels.add_xnnpack(*args, np.empty(x.shape[1], np.int8))
    np.testing.assert_array_equal(got, reference.add_xnnpack(*args, np.empty(x.shape[1], np.int64)))


@given(hnp.arrays(np.int8, st.integers(0, 33), elements=st.integers(-8, 7)))
def test_int4_pack_round_trip(values):
    """Packing then unpacking int4 codes returns them; kernel and reference pack identically."""
    packed = ops.pack_int4(values)
    np.testing.assert_array_equal(packed, reference.pack_int4(values))
    np.testing.assert_array_equal(ops.unpack_int4(packed, values.size), values)
    assert packed.size == (values.size + 1) // 2


def test_int4_nibble_order():
    """Element 0 is the low nibble: [1, -2] packs to 0xE1; uint4 [15, 0] to 0x0F."""
    assert ops.pack_int4(np.array([1, -2], np.int8)).tolist() == [0xE1]
    assert ops.pack_int4(np.array([15, 0], np.uint8)).tolist() == [0x0F]
    assert ops.unpack_int4(np.array([0x0F], np.uint8), 2, signed=False).tolist() == [15, 0]


def test_int4_rejects_out_of_range():
    """A code outside 4 bits is an error naming 'values'."""
    with pytest.raises(ConfigError, match="values"):
        ops.pack_int4(np.array([8, 16], np.int16))


def test_int8_x_int4_gemm_from_packed_weights(rng):
    """Mixed int8 x int4: unpacked int4 weights multiply exactly like int8 ones of the same value."""
    w = rng.integers(-8, 8, (64, 7)).astype(np.int8)
    unpacked = ops.unpack_int4(ops.pack_int4(w), w.size).reshape(w.shape)
    x = rng.integers(-128, 128, (3, 64)).astype(np.int8)
    np.testing.assert_array_equal(
        ops.matmul(x, unpacked).acc, naive_matmul(x, w, 0, np.zeros(7, np.int64), np.zeros(7, np.int64))
    )
    assert INT8.max == 127


def test_per_group_partial_sums_add_up(rng):
    """Per-group partial sums (group 16, K = 40) equal the naive sums of each K block and add to the total."""
    x = rng.integers(-128, 128, (3, 40)).astype(np.int8)
    w = rng.integers(-8, 8, (40, 5)).astype(np.int8)
    zw = rng.integers(-2, 3, (5, 3))
    res = ops.matmul_groups(x, w, group_size=16, x_zero_point=4, w_zero_point=zw)
    assert res.acc.shape == (3, 3, 5)
    for g in range(3):
        sl = slice(16 * g, 16 * (g + 1))
        np.testing.assert_array_equal(
            res.acc[g], naive_matmul(x[:, sl], w[sl], 4, zw[:, g], np.zeros(5, np.int64))
        )


def test_counting_overflows_collects_every_call():
    """ops.counting_overflows sums the excursions of every MAC call in its block, and nothing outside it."""
    x = np.full((1, 8), 127, np.int8)
    w = np.full((8, 1), 127, np.int8)
    narrow = Accumulator(IntFormat(16), "exact")
    ops.matmul(x, w, accumulator=narrow)  # outside: not counted
    with ops.counting_overflows() as total:
        ops.matmul(x, w, accumulator=narrow)
        ops.depthwise_conv2d(
            np.full((1, 3, 3, 1), 127, np.int8), np.full((3, 3, 1), 127, np.int8), accumulator=narrow
        )
    assert total[0] == 6 + 7  # partial sums 3..8 x 16129, and 3..9 of the nine taps, exceed 32767
