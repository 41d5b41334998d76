"""Fused layers: kernel == plain twin, fused == accumulate-then-requantize, and prepared layers stay exact."""

import numba
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from hwsim.errors import ConfigError
from hwsim.numerics import (
    fused,
    kernels_fused,
    kernels_simd,
    ops,
    reference,
    reference_fused,
    reference_simd,
    simd,
)
from hwsim.numerics import quantized as Q
from hwsim.numerics.formats import INT8, IntFormat, OverflowMode
from hwsim.numerics.kernel_records import read_only as ro  # operands reach the kernels read-only
from hwsim.numerics.ops import Accumulator
from hwsim.numerics.requant_kinds import RequantKind
from hwsim.numerics.semantics import SEMANTICS

CODES = {np.int8: (-128, 127), np.uint8: (0, 255), np.int16: (-32768, 32767)}
SEMANTICS_NAMES = SEMANTICS.names()


@st.composite
def stages(draw, channels: int):
    """A random per-channel stage: any kind, a channel tail anywhere, fixed and float multipliers."""
    kind, tail_kind = (int(draw(st.sampled_from(list(RequantKind)))) for _ in range(2))
    mult = np.array(draw(st.lists(st.integers(1 << 30, (1 << 31) - 1), min_size=channels, max_size=channels)))
    shift = np.array(draw(st.lists(st.integers(-12, 2), min_size=channels, max_size=channels)))
    scale = np.array(
        draw(st.lists(st.floats(0.0001220703125, 2.0, width=32), min_size=channels, max_size=channels)),
        np.float32,
    )
    if RequantKind.INT16_MULTIPLIER in (kind, tail_kind):
        shift = np.minimum(shift, 0)
    zp = draw(st.integers(-20, 20))
    return ops.OutputStage(
        mult.astype(np.int64),
        shift.astype(np.int64),
        scale,
        zp,
        -128,
        127,
        kind,
        tail_kind,
        draw(st.integers(0, channels)),
        np.dtype(np.int8),
    )


@st.composite
def gemm_cases(draw):
    dtype = draw(st.sampled_from(list(CODES)))
    lo, hi = CODES[dtype]
    hi = min(hi, 255)  # keeps one float32 BLAS product exact at these depths
    lo = max(lo, -255)
    m, k, n = draw(st.integers(1, 40)), draw(st.integers(1, 24)), draw(st.integers(1, 40))
    x = draw(hnp.arrays(dtype, (m, k), elements=st.integers(lo, hi)))
    w = draw(hnp.arrays(np.int8, (k, n), elements=st.integers(-128, 127)))
    zw = np.array(draw(st.lists(st.integers(-3, 3), min_size=n, max_size=n)), np.int64)
    if draw(st.booleans()):
        zw[:] = 0
    bias = np.array(draw(st.lists(st.integers(-5000, 5000), min_size=n, max_size=n)), np.int64)
    return x, w, draw(st.integers(lo, hi)), zw, bias, draw(stages(n))


@given(gemm_cases(), st.integers(1, 48), st.integers(1, 48))
def test_gemm_requantize_kernel_matches_twin(case, rows_per_tile, width):
    """The BLAS-tiled kernel equals its twin for any tiling, panel width, kind, tail and zero points."""
    x, w, zx, zw, bias, stage = case
    packed = ops.prepack(w, zw)
    correction = ops.zero_point_correction(packed, bias, zx)
    row_sum = x.sum(axis=1, dtype=np.int64) if zw.any() else np.zeros(0, np.int64)
    panels = packed.float_panels(width)
    args = (ro(x), panels, rows_per_tile, ro(correction), ro(zw), row_sum, stage.kernel_args())
    got = kernels_fused.gemm_requantize(*args, np.empty((len(x), w.shape[1]), np.int8))
    want = reference_fused.gemm_requantize(*args, np.empty((len(x), w.shape[1]), np.int8))
    np.testing.assert_array_equal(got, want)


@given(gemm_cases(), st.integers(1, 48))
def test_gemm_requantize_groups_of_narrow_rows_match_twin(case, rows_per_tile):
    """One unpadded panel and no channel tail: rows are requantized in groups, which must change nothing."""
    x, w, zx, zw, bias, stage = case
    stage = ops.OutputStage(*stage.kernel_args()[:6], stage.kind, stage.kind, w.shape[1], stage.dtype)
    packed = ops.prepack(w, zw)
    correction = ops.zero_point_correction(packed, bias, zx)
    row_sum = x.sum(axis=1, dtype=np.int64) if zw.any() else np.zeros(0, np.int64)
    panels = packed.float_panels(w.shape[1])
    args = (ro(x), panels, rows_per_tile, ro(correction), ro(zw), row_sum, stage.kernel_args())
    np.testing.assert_array_equal(
        kernels_fused.gemm_requantize(*args, np.empty((len(x), w.shape[1]), np.int8)),
        reference_fused.gemm_requantize(*args, np.empty((len(x), w.shape[1]), np.int8)),
    )


def _needs(isa: str) -> None:
    """Skip unless this host runs the SIMD kernel on ``isa`` (VNNI hosts run both; AVX2-only hosts avx2)."""
    if isa == "vnni" and simd.instruction() != "vnni":
        pytest.skip("no AVX-512 VNNI here (or no JIT): the byte kernel never runs")
    if isa == "avx2" and simd.instruction() is None:
        pytest.skip("no AVX2 here (or no JIT): the int16 pair kernel never runs")


def _simd_inputs(x: np.ndarray, isa: str) -> tuple[np.ndarray, int]:
    """``x`` as the kernel on ``isa`` takes it, and the offset that makes it so: VNNI takes bytes (int8 + 128,
    uint8 as is; int16 inputs are clipped to int8 for it), AVX2 takes all three dtypes as they are."""
    if isa == "avx2":
        return x, 0
    if x.dtype == np.int16:
        x = np.clip(x, -128, 127).astype(np.int8)
    return x, 0 if x.dtype == np.uint8 else 128


@pytest.mark.parametrize("isa", ["vnni", "avx2"])
@given(gemm_cases(), st.integers(1, 12), st.integers(1, 8), st.booleans(), st.booleans())
def test_simd_kernel_matches_twin(isa, case, tile_blocks, chunks, int64_rows, uint8_weights):
    """The vpdpbusd and vpmaddwd kernels equal their twin for any tiling, column chunks, padding of K and N,
    kind, tail, weight zero points (row sums), every input dtype each takes, and (AVX2) uint8 weights."""
    _needs(isa)
    x, w, zx, zw, bias, stage = case
    x, offset = _simd_inputs(x, isa)
    if isa == "avx2" and uint8_weights:
        w = (w.astype(np.int16) + 128).astype(np.uint8)
    correction = ops.zero_point_correction(ops.prepack(w, zw), bias, zx + offset)
    # int64 rows on int8 inputs only: the rows' width is the requantizer's business, the input dtype the
    # conversion's, so each is covered without compiling every pair (each costs a parallel kernel)
    int64_rows = int64_rows and x.dtype == np.int8
    correction = correction if int64_rows else correction.astype(np.int32)
    args = (
        ro(x),
        offset,
        ro(simd.pack(w, isa)),
        w.shape[0],
        4 * tile_blocks,
        chunks,
        ro(correction),
        ro(zw),
        bool(zw.any()),
        *stage.kernel_args(),
    )
    got = kernels_simd.gemm_requantize_simd(*args, np.empty((len(x), w.shape[1]), np.int8))
    np.testing.assert_array_equal(
        got, reference_simd.gemm_requantize_simd(*args, np.empty((len(x), w.shape[1]), np.int8))
    )


@pytest.mark.parametrize("isa", ["vnni", "avx2"])
@pytest.mark.parametrize("cols", [16, 24, 48])
@pytest.mark.parametrize("weight_zero_points", [False, True])
@pytest.mark.parametrize("kind", list(RequantKind))
def test_simd_kernel_whole_tile_rows_match_twin(isa, cols, weight_zero_points, kind, rng):
    """One column chunk and no tail: a tile's rows are requantized in one call (N = 24: past the padding)."""
    _needs(isa)
    x, offset = _simd_inputs(rng.integers(-128, 128, (37, 23)).astype(np.int8), isa)
    w = rng.integers(-128, 128, (23, cols)).astype(np.int8)
    zw = rng.integers(-3, 4, cols) if weight_zero_points else np.zeros(cols, np.int64)
    stage = ops.OutputStage(
        rng.integers(1 << 30, 1 << 31, cols),
        rng.integers(-12, 1, cols),
        rng.uniform(1e-4, 1e-2, cols).astype(np.float32),
        -3,
        -128,
        127,
        int(kind),
        int(kind),
        cols,
        np.dtype(np.int8),
    )
    correction = ops.zero_point_correction(ops.prepack(w, zw), rng.integers(-999, 999, cols), 5 + offset)
    correction = correction.astype(np.int32)
    packed = ro(simd.pack(w, isa))
    args = (ro(x), offset, packed, 23, 8, 1, ro(correction), ro(zw), weight_zero_points, *stage.kernel_args())
    np.testing.assert_array_equal(
        kernels_simd.gemm_requantize_simd(*args, np.empty((37, cols), np.int8)),
        reference_simd.gemm_requantize_simd(*args, np.empty((37, cols), np.int8)),
    )


@pytest.mark.parametrize("isa", ["vnni", "avx2", "avx2-pairwise16"])
@given(
    hnp.arrays(np.int8, st.tuples(st.integers(1, 40), st.integers(1, 50)), elements=st.integers(-128, 127))
)
def test_simd_packing_round_trips(isa, w):
    """simd.pack and the twin's unpack_simd are inverses on both layouts, whatever K and N (padding
    included)."""
    np.testing.assert_array_equal(reference_simd.unpack_simd(simd.pack(w, isa), *w.shape), w)


@given(
    st.integers(1, 40),
    st.integers(1, 70),
    st.integers(1, 40),
    st.integers(1, 12),
    st.integers(1, 8),
    st.floats(0, 1),
    st.integers(0, 2**32 - 1),
)
def test_pairwise_kernel_saturates_as_onnx_runtime(rows, depth, cols, tile_blocks, chunks, extreme, seed):
    """The ``vpmaddubsw`` micro-kernel gives ONNX Runtime's AVX2 uint8 x int8 sums (each pair of adjacent
    products saturated to int16) exactly as the scalar reference and the twin do, for any K (odd ones end
    in a lone product), tiling and share of extreme codes (255 x -128 pairs saturate)."""
    if simd.instruction() is None:
        pytest.skip("no AVX2 here (or no JIT): the pairwise kernel never runs")
    rng = np.random.default_rng(seed)
    x = np.where(rng.random((rows, depth)) < extreme, 255, rng.integers(0, 256, (rows, depth))).astype(
        np.uint8
    )
    w = np.where(rng.random((depth, cols)) < extreme, -128, rng.integers(-128, 128, (depth, cols)))
    w = w.astype(np.int8)
    packed = ro(simd.pack(w, "avx2-pairwise16"))
    got = kernels_simd.dot_simd(ro(x), 0, packed, depth, 4 * tile_blocks, chunks)[:, :cols]
    zeros = np.zeros(cols, np.int64)
    want = reference.matmul_acc_pairwise16(x, w, 0, zeros, zeros)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(reference_simd.dot_simd(x, 0, packed, depth, 4, 1)[:, :cols], want)


def test_avx2_kernel_is_exact_at_the_int32_bound(rng):
    """The deepest int16 x int8 GEMM the AVX2 kernel accepts sums every product at its extreme exactly (and
    one step deeper it is refused): no pair and no lane wraps."""
    if simd.instruction() is None:
        pytest.skip("no AVX2 here (or no JIT): the int16 pair kernel never runs")
    depth = ((1 << 31) - 1) // (32768 * 128)
    w = np.full((depth, 20), -128, np.int8)
    assert simd.input_offset(np.zeros((depth + 1, 20), np.int8), (-32768, 32767)) is None
    assert simd.input_offset(w, (-32768, 32767)) == 0 or simd.instruction() == "vnni"
    x = np.full((5, depth), -32768, np.int16)
    sums = kernels_simd.dot_simd(ro(x), 0, ro(simd.pack(w, "avx2")), depth, 4, 1)[:, :20]
    np.testing.assert_array_equal(sums, np.full((5, 20), depth * 32768 * 128, np.int64))


@given(gemm_cases(), st.sampled_from([np.float32, np.int32, np.int64]))
def test_requantize_gemm_kernel_matches_twin(case, raw_dtype):
    """The epilogue equals its twin on float32 (BLAS), int32 and int64 products, int32 or int64 rows."""
    x, w, zx, zw, bias, stage = case
    raw = (x.astype(np.int64) @ w.astype(np.int64)).astype(raw_dtype)
    correction = ops.zero_point_correction(ops.prepack(w, zw), bias, zx)
    correction = correction.astype(np.int32) if raw_dtype != np.int64 else correction
    row_sum = x.sum(axis=1, dtype=np.int64) if zw.any() else np.zeros(0, np.int64)
    args = (raw, ro(correction), ro(zw), row_sum, stage.kernel_args())
    got = kernels_fused.requantize_gemm(*args, np.empty(raw.shape, np.int8))
    np.testing.assert_array_equal(got, reference_fused.requantize_gemm(*args, np.empty(raw.shape, np.int8)))


@st.composite
def depthwise_cases(draw):
    dtype = draw(st.sampled_from(list(CODES)))
    lo, hi = CODES[dtype]
    mult, k = draw(st.integers(1, 3)), draw(st.sampled_from([1, 3, 5]))
    c, h, wd = draw(st.integers(1, 9)), draw(st.integers(1, 9)), draw(st.integers(1, 9))
    x = draw(hnp.arrays(dtype, (draw(st.integers(1, 2)), h, wd, c), elements=st.integers(lo, hi)))
    w = draw(hnp.arrays(np.int8, (k, k, c * mult), elements=st.integers(-128, 127)))
    zw = np.array(draw(st.lists(st.integers(-2, 2), min_size=c * mult, max_size=c * mult)), np.int64)
    bias = np.array(draw(st.lists(st.integers(-5000, 5000), min_size=c * mult, max_size=c * mult)), np.int64)
    stride, dilation = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    padding = draw(st.sampled_from(["same", "valid"]))
    return x, w, draw(st.integers(lo, hi)), zw, bias, mult, stride, dilation, padding, draw(stages(c * mult))


@given(depthwise_cases())
def test_depthwise_requantize_kernel_matches_twin(case):
    """The fused depthwise kernel equals the exact reference accumulators requantized, for any geometry."""
    x, w, zx, zw, bias, mult, stride, dilation, padding, stage = case
    try:
        geo = ops.conv_geometry(x.shape[1:3], w.shape[:2], stride, padding, dilation)
    except Exception:
        return  # the window does not fit this input
    shape = (x.shape[0], *geo.out_hw, w.shape[2])
    args = (ro(x), ro(w), zx, ro(zw), ro(bias), geo.window(), mult, stage.kernel_args())
    got = kernels_fused.depthwise_requantize(*args, np.empty(shape, np.int8))
    np.testing.assert_array_equal(got, reference_fused.depthwise_requantize(*args, np.empty(shape, np.int8)))


@pytest.mark.parametrize("channels, tail", [(520, 7), (1030, 1030)])  # past kernels_fused._SPAN
def test_depthwise_requantize_wide_layers_match_twin(channels, tail, rng):
    """Layers too wide for a run of several pixels (MobileNetV2's 576 and 960 channels) equal the twin,
    with and without a channel tail."""
    x = rng.integers(-128, 128, (1, 5, 6, channels)).astype(np.int8)
    w = rng.integers(-127, 128, (3, 3, channels)).astype(np.int8)
    zw = rng.integers(-2, 3, channels)
    bias = rng.integers(-5000, 5000, channels)
    geo = ops.conv_geometry(x.shape[1:3], (3, 3), 1, "same", 1)
    scale = rng.uniform(0.0005, 0.01, channels).astype(np.float32)
    kind = int(RequantKind.FLOAT32_SCALE)
    stage = ops.OutputStage(
        np.full(channels, 1 << 30),
        np.zeros(channels, np.int64),
        scale,
        3,
        -128,
        127,
        kind,
        kind,
        7,
        np.dtype(np.int8),
    )
    args = (ro(x), ro(w), -5, ro(zw), ro(bias), geo.window(), 1, stage.kernel_args())
    shape = (1, *geo.out_hw, channels)
    got = kernels_fused.depthwise_requantize(*args, np.empty(shape, np.int8))
    np.testing.assert_array_equal(got, reference_fused.depthwise_requantize(*args, np.empty(shape, np.int8)))


def _qparams(rng, channels):
    return (Q.QParams.of(0.02, 3), Q.QParams.of(rng.uniform(0.001, 0.02, channels)), Q.QParams.of(0.05, -4))


@pytest.mark.parametrize("semantics", SEMANTICS_NAMES)
@pytest.mark.parametrize("rows", [5, 200])  # the int32 kernel and the BLAS tiles
def test_fused_layers_equal_accumulate_then_requantize(semantics, rows, rng):
    """Fused conv, depthwise and FC equal the MAC accumulators requantized afterwards, under every
    semantics."""
    x = rng.integers(-128, 128, (1, rows // 5, 5, 24)).astype(np.int8)
    w = rng.integers(-127, 128, (40, 3, 3, 24)).astype(np.int8)
    dw = rng.integers(-127, 128, (1, 3, 3, 24)).astype(np.int8)
    bias = rng.integers(-3000, 3000, 40)
    x_q, w_q, y_q = _qparams(rng, 40)
    common = dict(x_q=x_q, y_q=y_q, activation="relu6", semantics=semantics)
    got = Q.conv2d(x, w, bias, Q.LayerQuant(w_q=w_q, **common), padding="same")
    acc = ops.conv2d(x, w, padding="same", x_zero_point=3, bias=bias).acc
    want = Q.requantize(
        acc,
        input_scale=0.02,
        weight_scale=w_q.scale,
        output=y_q,
        fmt=INT8,
        semantics=semantics,
        op="conv2d",
        activation="relu6",
    )
    arithmetic = Q._arithmetic(x.dtype, w.dtype, SEMANTICS.get(semantics))
    if arithmetic == "exact":
        np.testing.assert_array_equal(got, want)
    dw_q = Q.QParams.of(w_q.scale[:24])
    got = Q.depthwise_conv2d(x, dw, bias[:24], Q.LayerQuant(w_q=dw_q, **common), padding="same")
    acc = ops.depthwise_conv2d(x, dw, padding="same", x_zero_point=3, bias=bias[:24]).acc
    np.testing.assert_array_equal(
        got,
        Q.requantize(
            acc,
            input_scale=0.02,
            weight_scale=dw_q.scale,
            output=y_q,
            fmt=INT8,
            semantics=semantics,
            op="depthwise_conv2d",
            activation="relu6",
        ),
    )


@pytest.mark.parametrize("engine", ["fastest", "avx2", "off"])
@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16])
def test_prepared_layers_equal_the_checked_path(dtype, engine, rng, monkeypatch):
    """A layer prepared for a dtype gives the checked path's codes on inputs spanning that dtype's range, with
    the host's best SIMD kernel, with the AVX2 one (``HWSIM_SIMD=avx2``) and with the float32 BLAS tiles."""
    if engine != "fastest":
        monkeypatch.setenv("HWSIM_SIMD", engine)
    lo, hi = CODES[dtype]
    x = rng.integers(lo, hi + 1, (2, 9, 7, 16)).astype(dtype)
    x.flat[:2] = (lo, hi)
    w = rng.integers(-127, 128, (24, 3, 3, 16)).astype(np.int8)
    w.flags.writeable = False
    bias = rng.integers(-3000, 3000, 24)
    x_q, w_q, y_q = _qparams(rng, 24)
    y_fmt = IntFormat(16, True) if dtype == np.int16 else INT8
    quant = Q.LayerQuant(x_q, w_q, y_q, y_fmt, semantics="tflite-reference")
    layer = Q.prepare_layer("conv2d", x.dtype, w, bias, quant, stride=2, padding="same")
    assert layer is not None
    np.testing.assert_array_equal(layer(x), Q.conv2d(x, w, bias, quant, stride=2, padding="same"))
    fc_w = np.ascontiguousarray(w.reshape(24, -1)[:, :16])
    fc_w.flags.writeable = False
    quant = Q.LayerQuant(x_q, w_q, y_q, y_fmt, semantics="xnnpack")
    rows = np.ascontiguousarray(x.reshape(-1, 16))
    fc = Q.prepare_layer("fully_connected", x.dtype, fc_w, bias, quant)
    for count in (len(rows), 1, 3):  # many rows, and few (batch 1), the dtype's ends in the first
        np.testing.assert_array_equal(fc(rows[:count]), Q.fully_connected(rows[:count], fc_w, bias, quant))


def test_prepare_declines_what_it_cannot_prove(rng):
    """No fused layer where the dtype's range could overflow a narrow register: the ordered path must run."""
    w = rng.integers(-127, 128, (8, 3, 3, 16)).astype(np.int8)
    x_q, w_q, y_q = _qparams(rng, 8)
    narrow = Accumulator(IntFormat(16, True), OverflowMode.SATURATE)
    quant = Q.LayerQuant(x_q, w_q, y_q)
    narrow_quant = Q.LayerQuant(x_q, w_q, y_q, accumulator=narrow)
    assert Q.prepare_layer("conv2d", np.int8, w, None, narrow_quant) is None
    assert Q.prepare_layer("conv2d", np.int8, w, None, quant) is not None
    assert Q.prepare_layer("conv2d", np.int8, np.repeat(w, 2, axis=3), None, quant, groups=2) is None
    with pytest.raises(ConfigError, match="kind: expected conv2d"):
        Q.prepare_layer("add", np.int8, w, None, quant)


def test_gemm_tiles_split_columns_when_rows_are_few():
    """Many rows: row tiles across the whole width; few rows: every row in one tile, columns in panels."""
    rows_per_tile, width = fused.gemm_tiles(12544, 16, 96)
    assert width == 96 and rows_per_tile < 12544
    rows_per_tile, width = fused.gemm_tiles(49, 320, 1280)
    assert rows_per_tile == 49 and width < 1280 and width % 16 == 0


def test_exact_when_raw_products_need_64_bits_but_the_sums_fit_int32(rng):
    """uint8 inputs next to their zero point: sum xw needs 64 bits while sum (x - zx)w fits int32 (so the
    layer
    keeps an int32 correction); the fused path must still equal the exact accumulators requantized."""
    depth = 80_000
    x = np.full((3, depth), 255, np.uint8)
    x[0, :10] = 254
    w = rng.integers(120, 128, (depth, 4)).astype(np.int8)
    stage = ops.OutputStage(
        np.full(4, 1 << 30, np.int64),
        np.full(4, -20, np.int64),
        np.full(4, 0.01, np.float32),
        0,
        -128,
        127,
        int(RequantKind.GEMMLOWP_DOUBLE),
        int(RequantKind.GEMMLOWP_DOUBLE),
        4,
        np.dtype(np.int8),
    )
    acc = ops.matmul(x, w, x_zero_point=254).acc
    assert np.abs(acc).max() < 1 << 31 < np.abs(x.astype(np.int64) @ w).max()
    layer = fused.FusedGemm.prepare(ops.prepack(w), np.zeros(4, np.int64), 254, stage, (254, 255))
    assert layer.correction.dtype == np.int32
    np.testing.assert_array_equal(layer(x), ops.requantize_stage(acc, stage))
    np.testing.assert_array_equal(
        Q._matmul_codes(x, w, stage, x_zero_point=254), ops.requantize_stage(acc, stage)
    )


def test_empty_products_keep_their_shapes(rng):
    """No rows or no columns: every engine returns an empty result of the right shape, as before fusing."""
    w = rng.integers(-127, 128, (8, 20)).astype(np.int8)
    assert ops.matmul(np.zeros((0, 8), np.int8), w).acc.shape == (0, 20)
    assert ops.matmul(np.zeros((3, 8), np.int8), w[:, :0]).acc.shape == (3, 0)
    x_q, w_q, y_q = _qparams(rng, 4)
    y = Q.conv2d(
        np.zeros((0, 5, 5, 2), np.int8),
        rng.integers(-127, 128, (4, 3, 3, 2)).astype(np.int8),
        None,
        Q.LayerQuant(x_q, w_q, y_q),
    )
    assert y.shape == (0, 3, 3, 4)


def test_prepared_layers_check_what_they_are_given(rng):
    """A prepared layer refuses inputs of the wrong depth or outside its range, and stages of the wrong size,
    with a ConfigError rather than reading past an array (numba does not check bounds)."""
    w = rng.integers(-127, 128, (6, 16)).astype(np.int8)
    w.flags.writeable = False
    x_q, w_q, y_q = _qparams(rng, 6)
    layer = Q.prepare_layer("fully_connected", np.int8, w, None, Q.LayerQuant(x_q, w_q, y_q))
    with pytest.raises(ConfigError, match="shape"):
        layer(np.zeros((2, 64), np.int8))
    with pytest.raises(ConfigError, match="prepared for"):
        layer(np.full((2, 16), 300, np.int16))
    assert layer(np.full((2, 16), 100, np.int16)).shape == (2, 6)  # wider dtype, values inside: fine
    stage = layer.stage
    with pytest.raises(ConfigError, match="stage"):
        fused.FusedGemm.prepare(ops.prepack(w.T[:, :5]), np.zeros(5, np.int64), 0, stage, (-128, 127))
    with pytest.raises(ConfigError, match="zero point"):
        dw = rng.integers(-127, 128, (1, 3, 3, 6)).astype(np.int8)
        Q.prepare_layer(
            "depthwise_conv2d",
            np.int8,
            dw,
            None,
            Q.LayerQuant(x_q, Q.QParams.of(w_q.scale, np.zeros(4, np.int64)), y_q),
        )


def test_simd_needs_numba_to_target_this_cpu(monkeypatch):
    """A portable numba target (NUMBA_CPU_NAME=generic) cannot compile the intrinsics: the SIMD kernel is
    off."""
    monkeypatch.setattr(numba.config, "CPU_NAME", "generic")
    assert not simd.available()
    assert simd.input_offset(np.zeros((8, 4), np.int8), (-128, 127)) is None
