"""The ordered kernels with outputs as lanes, on shapes that cross their tiles, and through ops' calls."""

import numba
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hwsim.numerics import kernels_ordered, ops, reference, reference_ordered
from hwsim.numerics.formats import IntFormat, OverflowMode
from hwsim.numerics.ops import Accumulator

OPERANDS = {
    "int8": (np.int8, -128, 128, 5),
    "uint8": (np.uint8, 0, 256, 130),
    "int16": (np.int16, -32768, 32768, 9),
}


def _inputs(rng, kind, shape):
    """Codes of ``kind`` with about 40% at the zero point (a ReLU's output), which the kernel skips."""
    dtype, lo, hi, zx = OPERANDS[kind]
    x = rng.integers(lo, hi, shape)
    x[rng.random(shape) < 0.4] = zx
    return x.astype(dtype), zx


@pytest.mark.parametrize("kind", list(OPERANDS))
@pytest.mark.parametrize("bits", [16, 20, 32])
@pytest.mark.parametrize("overflow", list(OverflowMode))
def test_gemm_lanes_across_tiles(rng, kind, bits, overflow):
    """11 x 30 x 75 (partial row and column tiles) in a shuffled order: lanes kernel == numpy twin == scalar
    reference, accumulators and excursion counts."""
    x, zx = _inputs(rng, kind, (11, 30))
    w = rng.integers(-128, 128, (30, 75)).astype(np.int8)
    zw = rng.integers(-4, 4, 75)
    bias = rng.integers(-40000, 40000, 75)
    fmt = IntFormat(bits)
    args = (x, w, zx, zw, bias, fmt.min, fmt.max, int(overflow), rng.permutation(30), bool(bits == 20))
    want, count = reference.matmul_acc(*args)
    for twin in (kernels_ordered, reference_ordered):
        acc, n = twin.matmul_acc(*args)
        np.testing.assert_array_equal(acc, want)
        assert n == count


@pytest.mark.parametrize("overflow", list(OverflowMode))
def test_depthwise_lanes_wide_channels(rng, overflow):
    """40 channels x multiplier 2 (80 lanes), stride 2, SAME, a 12-bit register: all three agree."""
    x, zx = _inputs(rng, "int8", (2, 7, 7, 40))
    w = rng.integers(-128, 128, (3, 3, 80)).astype(np.int8)
    zw, bias = rng.integers(-3, 3, 80), rng.integers(-3000, 3000, 80)
    geo = ops.conv_geometry((7, 7), (3, 3), 2, "same", 1)
    fmt = IntFormat(12)
    args = (
        x,
        w,
        zx,
        zw,
        bias,
        *geo.stride,
        *geo.dilation,
        geo.pads[0],
        geo.pads[2],
        *geo.out_hw,
        2,
        fmt.min,
        fmt.max,
        int(overflow),
    )
    want, count = reference.depthwise_acc(*args)
    for twin in (kernels_ordered, reference_ordered):
        acc, n = twin.depthwise_acc(*args)
        np.testing.assert_array_equal(acc, want)
        assert n == count


def test_lane_width_follows_the_largest_sum():
    """int16 lanes (the saturating 16-bit add) for int8 products into a saturating 16-bit register; int32 for
    the true sums of 20 bits; int64 where a 32-bit register plus a product, or the true sums of a long int16 x
    int8 reduction, could leave int32, and for a wrap by a modulo. Operands are int16 where their product
    fits."""

    def lanes(max_x, overflow, bits, depth):
        fmt = IntFormat(bits)
        return kernels_ordered._lanes(max_x, 128, 0, fmt.min, fmt.max, int(overflow), depth)

    assert lanes(128, OverflowMode.SATURATE, 16, 4096)[::6] == (np.int16, kernels_ordered.SAT16_FULL)
    assert lanes(128, OverflowMode.SATURATE, 12, 4096)[::6] == (np.int16, kernels_ordered.SAT16)
    assert lanes(255, OverflowMode.SATURATE, 16, 4096)[0] is np.int16  # 255 x 128 = 32640 fits int16,
    assert lanes(256, OverflowMode.SATURATE, 16, 4096)[:2] == (np.int32, np.int32)  # 32768 does not
    assert lanes(128, OverflowMode.EXACT, 20, 4096)[:2] == (np.int32, np.int16)
    assert lanes(128, OverflowMode.SATURATE, 32, 16)[0] is np.int64
    assert lanes(32768, OverflowMode.EXACT, 32, 4096)[:2] == (np.int64, np.int64)
    # each lane dtype takes a fixed set of modes (the kernels compile a copy per mode only for those):
    assert lanes(16, OverflowMode.WRAP, 10, 4096)[::6] == (np.int16, kernels_ordered.WRAP_MASK)
    assert lanes(1, OverflowMode.EXACT, 12, 4)[::6] == (np.int32, kernels_ordered.EXACT)  # fits int16 too
    modulo = kernels_ordered._lanes(8, 8, 0, -100, 100, int(OverflowMode.WRAP), 64)  # 201 codes
    assert modulo[::6] == (np.int64, kernels_ordered.WRAP)


@pytest.mark.parametrize("overflow", ["saturate", "wrap", "exact"])
def test_public_ops_equal_the_scalar_reference(rng, monkeypatch, overflow):
    """conv2d, per-group sums and depthwise with a 14-bit register give the same accumulators and counts as
    with HWSIM_REFERENCE=1 (every call on the scalar reference)."""
    acc = Accumulator(IntFormat(14), overflow)
    x, zx = _inputs(rng, "int8", (1, 6, 6, 8))
    w = rng.integers(-128, 128, (12, 3, 3, 8)).astype(np.int8)
    dw = rng.integers(-128, 128, (3, 3, 8)).astype(np.int8)
    cols = x.reshape(36, 8)
    gw = rng.integers(-128, 128, (8, 5)).astype(np.int8)

    def run():
        return (
            ops.conv2d(x, w, padding="same", x_zero_point=zx, accumulator=acc),
            ops.depthwise_conv2d(x, dw, padding="same", x_zero_point=zx, accumulator=acc),
            ops.matmul_groups(cols, gw, group_size=3, x_zero_point=zx, accumulator=acc),
        )

    fast = run()
    monkeypatch.setenv("HWSIM_REFERENCE", "1")
    for got, want in zip(fast, run()):
        assert got.overflows == want.overflows > 0
        np.testing.assert_array_equal(got.acc, want.acc)


@pytest.mark.parametrize("overflow", list(OverflowMode))
@pytest.mark.parametrize("bias_last", [False, True])
def test_per_group_sums_in_one_call(rng, overflow, bias_last):
    """Groups of 7 over K = 30 (a short last group), zero points per column and group, a 14-bit register: the
    one-call lanes kernel == its numpy twin == the scalar reference group by group."""
    x, zx = _inputs(rng, "uint8", (11, 30))
    w = rng.integers(-128, 128, (30, 70)).astype(np.int8)
    zw = rng.integers(-4, 4, (70, 5))
    fmt = IntFormat(14)
    args = (x, w, zx, zw, 7, fmt.min, fmt.max, int(overflow), bias_last)
    parts = [
        reference.matmul_acc(
            x[:, k : k + 7],
            w[k : k + 7],
            zx,
            zw[:, g],
            np.zeros(70, np.int64),
            fmt.min,
            fmt.max,
            int(overflow),
            range(min(7, 30 - k)),
            bias_last,
        )
        for g, k in enumerate(range(0, 30, 7))
    ]
    want, count = np.stack([p[0] for p in parts]), sum(p[1] for p in parts)
    assert count > 0
    for twin in (kernels_ordered, reference_ordered):
        acc, n = twin.matmul_groups_acc(*args)
        np.testing.assert_array_equal(acc, want)
        assert n == count


@given(
    st.integers(9, 16),
    st.sampled_from(list(OverflowMode)),
    st.booleans(),
    st.integers(1, 40),
    st.integers(0, 2**31 - 1),
)
def test_int16_lanes_match_the_reference(bits, overflow, bias_last, depth, seed):
    """Symmetric int8 operands (-128 included) into a register of 9-16 bits, the int16 lanes' home (the
    saturating 16-bit add for SATURATE): lanes kernel == numpy twin == scalar reference, counts included."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, (9, depth)).astype(np.int8)
    w = rng.integers(-128, 128, (depth, 70)).astype(np.int8)
    x[rng.random(x.shape) < 0.3] = 0
    w[0, 0], x[0, 0] = -128, -128
    fmt = IntFormat(bits)
    bias = rng.integers(-300, 300, 70)
    args = (
        x,
        w,
        0,
        np.zeros(70, np.int64),
        bias,
        fmt.min,
        fmt.max,
        int(overflow),
        rng.permutation(depth),
        bias_last,
    )
    want, count = reference.matmul_acc(*args)
    for twin in (kernels_ordered, reference_ordered):
        acc, n = twin.matmul_acc(*args)
        np.testing.assert_array_equal(acc, want)
        assert n == count


@pytest.mark.parametrize("bits, overflow", [(16, "saturate"), (20, "exact"), (13, "wrap")])
def test_long_reductions_and_quiet_stretches(rng, bits, overflow):
    """K = CHUNK + 7 (the lane counters are emptied and go on), weights of int4 range for the first half (the
    registers stay far inside: steps run unchecked) and int8 after (they leave it): lanes kernel == scalar
    reference."""
    depth = kernels_ordered.CHUNK + 7
    x = rng.integers(-128, 128, (2, depth)).astype(np.int8)
    w = rng.integers(-128, 128, (depth, 3)).astype(np.int8)
    w[: depth // 2] //= 16
    fmt, mode = IntFormat(bits), OverflowMode[overflow.upper()]
    bias = np.array([5, -7, 0])
    args = (x, w, 0, np.zeros(3, np.int64), bias, fmt.min, fmt.max, int(mode), np.arange(depth), False)
    want, count = reference.matmul_acc(*args)
    acc, n = kernels_ordered.matmul_acc(*args)
    assert count > 0
    np.testing.assert_array_equal(acc, want)
    assert n == count


def test_results_do_not_depend_on_the_thread_count(rng):
    """The tiles of one GEMM split across 1 or 2 threads give the same accumulators and counts."""
    x = rng.integers(-128, 128, (40, 48)).astype(np.int8)
    w = rng.integers(-128, 128, (48, 150)).astype(np.int8)
    zeros, fmt = np.zeros(150, np.int64), IntFormat(16)
    args = (x, w, 0, zeros, zeros, fmt.min, fmt.max, int(OverflowMode.SATURATE), np.arange(48), False)
    before = numba.get_num_threads()
    try:
        runs = []
        for threads in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(threads)
            runs.append(kernels_ordered.matmul_acc(*args))
    finally:
        numba.set_num_threads(before)
    for acc, n in runs[1:]:
        np.testing.assert_array_equal(acc, runs[0][0])
        assert n == runs[0][1]


@pytest.mark.parametrize("overflow", list(OverflowMode))
def test_a_register_whose_count_of_codes_is_no_power_of_two(rng, overflow):
    """A register of [-100, 100] (201 codes: WRAP by a modulo, in int64 lanes), GEMM and depthwise: the lanes
    kernel == its numpy twin == the scalar reference."""
    x, zx = _inputs(rng, "int8", (1, 5, 5, 9))
    w = rng.integers(-8, 8, (3, 3, 9)).astype(np.int8)
    zeros, bias = np.zeros(9, np.int64), rng.integers(-150, 150, 9)
    cols = x.reshape(25, 9)
    wg = rng.integers(-8, 8, (9, 9)).astype(np.int8)
    gemm = (cols, wg, zx, zeros, bias, -100, 100, int(overflow), rng.permutation(9), False)
    depthwise = (x, w, zx, zeros, bias, 1, 1, 1, 1, 1, 1, 5, 5, 1, -100, 100, int(overflow))
    for name, args in (("matmul_acc", gemm), ("depthwise_acc", depthwise)):
        want, count = getattr(reference, name)(*args)
        assert count > 0
        for twin in (kernels_ordered, reference_ordered):
            acc, n = getattr(twin, name)(*args)
            np.testing.assert_array_equal(acc, want)
            assert n == count


@pytest.mark.parametrize("bits, overflow", [(16, OverflowMode.SATURATE), (20, OverflowMode.EXACT)])
def test_unchecked_steps_stop_one_code_before_the_rail(bits, overflow):
    """A register loaded 4 codes below its top, then 4 steps of +1: their bound reaches exactly one past the
    top, so the pass must be checked (saturated and counted once, or counted once), not summed unchecked."""
    fmt = IntFormat(bits)
    x, w = np.ones((1, 4), np.int8), np.ones((4, 1), np.int8)
    args = (x, w, 0, np.zeros(1, np.int64), [fmt.max - 3], fmt.min, fmt.max, int(overflow), range(4), False)
    want, count = reference.matmul_acc(*args)
    acc, n = kernels_ordered.matmul_acc(*args)
    assert count == 1
    np.testing.assert_array_equal(acc, want)
    assert n == count
