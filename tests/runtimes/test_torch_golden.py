"""Golden tests: hwsim against PyTorch's quantized CPU ops (fbgemm, x86 and qnnpack engines), bit for bit.

Quantized tensors are built from integer codes (``torch._make_per_tensor_quantized_tensor``), so the layers
see exactly the codes hwsim sees: quint8 activations x qint8 weights, as PyTorch requires. Float biases are
integers times float32(sx * sw), so that every engine's bias handling recovers the integer bias hwsim adds.

What the engines do, as measured here (the report and the xfail reasons give the details):
- fbgemm, and x86 where it uses fbgemm: hwsim's host ``pytorch`` semantics (multiplier float32(sx * sw) / sy;
  u8 x s8 exact on VNNI/AMX, pair-saturated on AVX2), except fbgemm's depthwise fast path, which
  pair-saturates along (ky, kx) taps on every CPU. x86 gives symmetric weights to oneDNN on VNNI CPUs.
- qnnpack: exact products, but the multiplier is float32(sx * sw) * float32(1 / sy): the tests of hwsim's
  ``pytorch-qnnpack`` semantics use power-of-two output scales, where both are the same number.
- quantize_per_tensor / quantize_per_channel: half to even of float32(fma(x, 1/s, zp)), hwsim's
  ``ops.quantize(method="reciprocal-fma")`` (the default divide rule agrees for power-of-two scales with zero
  point 0, and on exact ties when the zero point is even).
"""

from __future__ import annotations

import collections
import os
import warnings

import numpy as np
import pytest

from hwsim.numerics import ops
from hwsim.numerics import quantized as Q
from hwsim.numerics.cpu import has_int8_dot_product
from hwsim.numerics.formats import IntFormat
from hwsim.numerics.semantics import get_semantics
from tests.runtimes.conftest import require

F32 = np.float32
UINT8, INT8 = IntFormat(8, signed=False), IntFormat(8)
#: elements compared per check, for the record (never asserted on)
COMPARED: collections.Counter = collections.Counter()
ENGINES = ["fbgemm", "x86", "qnnpack"]


# ---------------------------------------------------------------- plumbing
@pytest.fixture(scope="module")
def torch():
    """PyTorch, or a skip (locally) / failure (CI) when it is missing."""
    module = require("torch")
    warnings.filterwarnings("ignore", message=".*quantized tensor creation functions.*")
    return module


@pytest.fixture
def qF(torch):
    """torch.ao.nn.quantized.functional."""
    return require("torch.ao.nn.quantized.functional")


@pytest.fixture
def engine(torch, request):
    """Select ``request.param`` as torch's quantized engine for one test, and restore the previous one."""
    name = request.param
    if name not in torch.backends.quantized.supported_engines:
        message = f"quantized engine {name!r} is not in {torch.backends.quantized.supported_engines}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    previous = torch.backends.quantized.engine
    torch.backends.quantized.engine = name
    yield name
    torch.backends.quantized.engine = previous


def assert_same(got, want, what: str) -> None:
    """Assert equal shapes and 0 mismatching elements, naming the first few that differ."""
    got, want = np.asarray(got).astype(np.int64), np.asarray(want).astype(np.int64)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    idx = np.argwhere(got != want)
    detail = ", ".join(f"{tuple(int(j) for j in i)}: {got[tuple(i)]} != {want[tuple(i)]}" for i in idx[:8])
    assert idx.shape[0] == 0, f"{what}: {idx.shape[0]} of {got.size} elements differ ({detail})"
    COMPARED[what.split(":")[0]] += got.size


def qtensor(torch, codes: np.ndarray, scale, zero_point, axis: int | None = None):
    """A quantized tensor holding exactly ``codes`` (uint8: quint8, int8: qint8), per tensor or channel."""
    data = torch.from_numpy(np.ascontiguousarray(codes))
    if axis is None:
        return torch._make_per_tensor_quantized_tensor(data, float(scale), int(zero_point))
    scales = torch.from_numpy(np.asarray(scale, np.float64))
    zero_points = torch.from_numpy(np.asarray(zero_point, np.int64))
    return torch._make_per_channel_quantized_tensor(data, scales, zero_points, axis)


def float_bias(torch, b_int: np.ndarray, sx, sw) -> tuple[object, np.ndarray]:
    """A float32 bias tensor and the integer bias every engine recovers from it.

    fbgemm adds float32(bias / float32(sx * sw)) to float32(acc); qnnpack quantizes the bias with scale
    sx * sw. Integers whose float32 multiple does not divide back exactly move to a neighbour that does.
    """
    prod = (F32(sx) * np.broadcast_to(np.asarray(sw, F32), b_int.shape)).astype(F32)
    b_int = np.array(b_int, np.int64)
    for _ in range(64):
        bias = (b_int * prod.astype(np.float64)).astype(F32)
        bad = (bias / prod).astype(F32) != b_int
        if not bad.any():
            break
        b_int[bad] += 1
    assert (np.rint(bias / (np.float64(sx) * np.asarray(sw, np.float64))) == b_int).all()
    return torch.from_numpy(bias), b_int


def power_of_two(rng, lo: float, hi: float) -> F32:
    """A random power of two in [lo, hi]."""
    return F32(2.0 ** rng.integers(int(np.ceil(np.log2(lo))), int(np.floor(np.log2(hi))) + 1))


def semantics_for(engine: str) -> str:
    """hwsim's semantics for a torch engine on this host (fbgemm and x86 share fbgemm's arithmetic)."""
    return "pytorch-qnnpack" if engine == "qnnpack" else "pytorch"


def weight_params(rng, channels: int, per_channel: bool, w_zero: int):
    """Weight scale(s) and zero point(s)."""
    if per_channel:
        return rng.uniform(0.001, 0.02, channels).astype(F32), np.full(channels, w_zero, np.int64)
    return F32(rng.uniform(0.001, 0.02)), w_zero


def output_scale(rng, engine: str, sx, sw, depth: int) -> F32:
    """An output scale spreading outputs over about +-60 codes; a power of two for qnnpack (module doc)."""
    spread = np.sqrt(depth) * 74.0 * 74.0  # std of a sum of products of uniform 8-bit codes
    target = np.float64(sx) * np.float64(np.max(sw)) * spread / 60.0 * rng.uniform(0.6, 1.6)
    return F32(2.0 ** np.round(np.log2(target))) if engine == "qnnpack" else F32(target)


def nhwc(a: np.ndarray) -> np.ndarray:
    """NCHW / OIHW to NHWC / OHWI."""
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1))


# ---------------------------------------------------------------- quantize_per_tensor / quantize_per_channel
TORCH_DTYPES = {"quint8": UINT8, "qint8": INT8}


def _tie_grid(f: IntFormat, zero_point: int, scale: float) -> np.ndarray:
    """Half-integer multiples of a power-of-two ``scale`` across and beyond the range, and saturation."""
    k = np.arange(f.min - zero_point - 4, f.max - zero_point + 5, dtype=np.float64)
    return (np.concatenate([k + 0.5, k - 0.5, k, [-1e4, 1e4, -3e7, 3e7]]) * scale).astype(F32)


@pytest.mark.parametrize("dtype", list(TORCH_DTYPES))
def test_quantize_per_tensor_ties_and_saturation(torch, dtype):
    """quantize_per_tensor rounds exact ties half to even and saturates, as hwsim does (even zero points)."""
    f = TORCH_DTYPES[dtype]
    for zero_point in (f.min, 0 if f.signed else 128, f.max - 1, -100 if f.signed else 50):
        for scale in (F32(0.25), F32(2.0), F32(1 / 64)):
            x = _tie_grid(f, zero_point, scale)
            got = torch.quantize_per_tensor(
                torch.from_numpy(x), float(scale), zero_point, getattr(torch, dtype)
            )
            want = ops.quantize(x, scale, zero_point, f, rounding="half_even")
            what = f"quantize_per_tensor {dtype}: zp={zero_point} s={scale}"
            assert_same(got.int_repr().numpy(), want, what)


@pytest.mark.parametrize("dtype", list(TORCH_DTYPES))
def test_quantize_per_tensor_random(torch, dtype, rng):
    """quantize_per_tensor equals hwsim's quantize on random data, power-of-two scales, zero point 0."""
    f = TORCH_DTYPES[dtype]
    for trial in range(5):
        scale = power_of_two(rng, 1e-3, 4.0)
        x = (rng.standard_normal(100_003) * 60 * scale).astype(F32)  # odd length: vector body and scalar tail
        got = torch.quantize_per_tensor(torch.from_numpy(x), float(scale), 0, getattr(torch, dtype))
        want = ops.quantize(x, scale, 0, f)
        assert_same(got.int_repr().numpy(), want, f"quantize_per_tensor {dtype}: {trial}")


@pytest.mark.parametrize("dtype", list(TORCH_DTYPES))
@pytest.mark.parametrize("axis", [0, 1, 3])
def test_quantize_per_channel(torch, dtype, axis, rng):
    """quantize_per_channel uses each channel's scale and zero point: ties (even zero points), random data."""
    f = TORCH_DTYPES[dtype]
    shape = (6, 8, 5, 7)
    channels = shape[axis]
    view = [1] * 4
    view[axis] = channels
    scale = np.array([power_of_two(rng, 1 / 256, 4.0) for _ in range(channels)], F32)
    zero_point = 2 * rng.integers(f.min // 2, f.max // 2 + 1, channels)
    zero_point[0] = f.min
    k = rng.integers(f.min - f.max - 3, f.max - f.min + 4, shape)
    ties = ((k + 0.5) * scale.reshape(view).astype(np.float64)).astype(F32)
    random = (rng.standard_normal(shape) * 60 * scale.reshape(view)).astype(F32)
    for x, zp, what in ((ties, zero_point, "ties"), (random, np.zeros(channels, np.int64), "random")):
        got = torch.quantize_per_channel(
            torch.from_numpy(x),
            torch.from_numpy(scale.astype(np.float64)),
            torch.from_numpy(zp),
            axis,
            getattr(torch, dtype),
        )
        want = ops.quantize(x, scale, zp, f, axis=axis)
        assert_same(got.int_repr().numpy(), want, f"quantize_per_channel {dtype}: axis {axis} {what}")


def _quantize_fma_rule(x: np.ndarray, scale: np.ndarray, zero_point, f: IntFormat) -> np.ndarray:
    """The measured rule: clamp(half_even(float32(x * float32(1 / scale) + zero_point))), one rounding (FMA).

    x * inverse is exact in float64 (24 + 24 bits); adding the zero point there and rounding once to float32
    gives the fused result for the magnitudes used here.
    """
    inverse = (F32(1) / scale.astype(F32)).astype(np.float64)
    fused = (x.astype(np.float64) * inverse + zero_point).astype(F32)
    return np.clip(np.rint(fused), f.min, f.max).astype(np.int64)


def _odd_zero_point_cases(rng):
    """(format, x, scale, zero point, axis) where torch and divide-round-add quantization disagree."""
    cases = []
    for f, zp in ((UINT8, 129), (INT8, -3), (INT8, 1)):
        k = np.arange(-40, 41, dtype=np.float64)
        cases.append((f, ((k + 0.5) * 0.25).astype(F32), F32(0.25), zp, None))  # exact ties, odd zero point
    x = (rng.standard_normal(200_000) * 30).astype(F32)
    cases.append((UINT8, x, F32(0.1), 128, None))  # near ties: x / 0.1 = -45.499996 gives 83, torch 82
    scale = rng.uniform(0.01, 0.9, 64).astype(F32)
    x = (rng.standard_normal((64, 3001)) * 30).astype(F32)
    cases.append((INT8, x, scale, rng.integers(-9, 10, 64), 0))
    return cases


def _torch_quantize(torch, x, scale, zero_point, f: IntFormat, axis):
    dtype = torch.qint8 if f.signed else torch.quint8
    if axis is None:
        q = torch.quantize_per_tensor(torch.from_numpy(x), float(scale), int(zero_point), dtype)
    else:
        q = torch.quantize_per_channel(
            torch.from_numpy(x),
            torch.from_numpy(np.asarray(scale, np.float64)),
            torch.from_numpy(np.asarray(zero_point, np.int64)),
            axis,
            dtype,
        )
    return q.int_repr().numpy()


def test_quantize_matches_fused_multiply_add_rule(torch, rng):
    """torch's quantize is half_even(float32(fma(x, 1/s, zp))): the zero point is added before rounding."""
    assert _quantize_fma_rule(F32([0.125]), F32([0.25]), np.int64(1), INT8)[0] == 2  # 0.5 + 1 = 1.5 -> 2
    for f, x, scale, zp, axis in _odd_zero_point_cases(rng):
        view = (-1, 1) if axis == 0 else ()
        want = _quantize_fma_rule(x, np.asarray(scale, F32).reshape(view), np.asarray(zp).reshape(view), f)
        assert_same(_torch_quantize(torch, x, scale, zp, f, axis), want, f"quantize fma rule: {f} zp {zp}")


def test_quantize_odd_zero_points_and_generic_scales(torch, rng):
    """ops.quantize(method="reciprocal-fma"), the 'pytorch*' semantics' rule, equals torch's quantize with odd
    zero points and non-power-of-two scales, where the divide-round-add rule differs (x=0.125, s=0.25, zp=1:
    torch 2, divide 1; x=-4.5499997, s=0.1, zp=128: torch 82, divide 83)."""
    assert get_semantics("pytorch").quantize_method == "reciprocal-fma"
    differ = 0
    for f, x, scale, zp, axis in _odd_zero_point_cases(rng):
        want = ops.quantize(x, scale, zp, f, axis=axis, method="reciprocal-fma")
        differ += int((want != ops.quantize(x, scale, zp, f, axis=axis)).sum())
        assert_same(_torch_quantize(torch, x, scale, zp, f, axis), want, f"quantize hwsim: {f} zp {zp}")
    assert differ > 0, "the cases must tell the two rules apart"


# ---------------------------------------------------------------- quantized linear
@pytest.mark.parametrize("engine", ENGINES, indirect=True)
@pytest.mark.parametrize("per_channel", [False, True], ids=["per_tensor", "per_channel"])
@pytest.mark.parametrize("w_zero", [0, 5])
@pytest.mark.parametrize("depth", [1, 16, 200])
def test_linear(torch, qF, engine, per_channel, w_zero, depth, rng):
    """Quantized linear (quint8 x qint8, float bias) equals hwsim's fully_connected for the engine."""
    rows, cols = 37, 19
    for trial in range(4):
        x = rng.integers(0, 256, (rows, depth)).astype(np.uint8)
        w = rng.integers(-128, 128, (cols, depth)).astype(np.int8)
        x[0], w[0] = 255, -128
        sx, zx = F32(rng.uniform(0.002, 0.05)), int(rng.integers(0, 256))
        sw, zw = weight_params(rng, cols, per_channel, w_zero)
        sy, zy = output_scale(rng, engine, sx, sw, depth), int(rng.integers(0, 256))
        bias, b_int = (None, None)
        if trial % 2:
            bias, b_int = float_bias(torch, rng.integers(-20000, 20000, cols), sx, sw)
        wq = qtensor(torch, w, sw, zw, 0 if per_channel else None)
        got = qF.linear(qtensor(torch, x, sx, zx), wq, bias, float(sy), zy).int_repr().numpy()
        quant = Q.LayerQuant(
            Q.QParams.of(sx, zx),
            Q.QParams.of(sw, zw),
            Q.QParams.of(sy, zy),
            UINT8,
            semantics=semantics_for(engine),
        )
        want = Q.fully_connected(x, w, b_int, quant)
        assert_same(got, want, f"linear {engine}: K={depth} zw={w_zero} trial {trial}")


# ---------------------------------------------------------------- quantized conv2d
# (C, O, kernel, stride, padding (h, w), dilation, groups, H, W); channels per group even (AVX2 pair order)
CONV_GEOMETRIES = {
    "3x3_same": (8, 16, (3, 3), (1, 1), (1, 1), (1, 1), 1, 9, 10),
    "3x3_s2_d2": (6, 10, (3, 3), (2, 2), (0, 0), (2, 2), 1, 12, 11),
    "5x3_s21": (4, 5, (5, 3), (2, 1), (2, 1), (1, 1), 1, 11, 9),
    "group4": (8, 12, (3, 3), (1, 1), (1, 1), (1, 1), 4, 8, 9),
    "pointwise": (16, 8, (1, 1), (1, 1), (0, 0), (1, 1), 1, 6, 7),
    "depthwise_c6": (6, 6, (3, 3), (1, 1), (1, 1), (1, 1), 6, 8, 9),  # C % 8 != 0: no fbgemm fast path
    "depthwise_pad0": (8, 8, (3, 3), (1, 1), (0, 0), (1, 1), 8, 8, 9),  # padding != k // 2: no fast path
}


def _torch_conv(torch, qF, x, w, bias, q, per_channel, stride, padding, dilation, groups):
    sx, zx, sw, zw, sy, zy = q
    wq = qtensor(torch, w, sw, zw, 0 if per_channel else None)
    return (
        qF.conv2d(
            qtensor(torch, x, sx, zx),
            wq,
            bias,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            scale=float(sy),
            zero_point=zy,
        )
        .int_repr()
        .numpy()
    )


@pytest.mark.parametrize("engine", ENGINES, indirect=True)
@pytest.mark.parametrize("geometry", list(CONV_GEOMETRIES))
@pytest.mark.parametrize("per_channel", [False, True], ids=["per_tensor", "per_channel"])
@pytest.mark.parametrize("w_zero", [0, 3])
def test_conv2d(torch, qF, engine, geometry, per_channel, w_zero, rng):
    """Quantized conv2d (strides, pads, dilations, groups) equals hwsim's conv2d for the engine."""
    c, o, kernel, stride, padding, dilation, groups, h, w_ = CONV_GEOMETRIES[geometry]
    depth = c // groups * kernel[0] * kernel[1]
    for trial in range(2):
        x = rng.integers(0, 256, (2, c, h, w_)).astype(np.uint8)
        w = rng.integers(-128, 128, (o, c // groups, *kernel)).astype(np.int8)
        sx, zx = F32(rng.uniform(0.002, 0.05)), int(rng.integers(0, 256))
        sw, zw = weight_params(rng, o, per_channel, w_zero)
        sy, zy = output_scale(rng, engine, sx, sw, depth), int(rng.integers(0, 256))
        bias, b_int = float_bias(torch, rng.integers(-20000, 20000, o), sx, sw)
        got = _torch_conv(
            torch, qF, x, w, bias, (sx, zx, sw, zw, sy, zy), per_channel, stride, padding, dilation, groups
        )
        pads = (padding[0], padding[0], padding[1], padding[1])
        quant = Q.LayerQuant(
            Q.QParams.of(sx, zx),
            Q.QParams.of(sw, zw),
            Q.QParams.of(sy, zy),
            UINT8,
            semantics=semantics_for(engine),
        )
        want = Q.conv2d(
            nhwc(x), nhwc(w), b_int, quant, stride=stride, padding=pads, dilation=dilation, groups=groups
        )
        assert_same(got, want.transpose(0, 3, 1, 2), f"conv2d {engine}: {geometry} zw={w_zero} trial {trial}")


# fbgemm's depthwise fast path: groups == C, C % 8 == 0, O in (C, 2C), 3x3 or 5x5, padding k // 2, stride <= 2
DEPTHWISE_FAST = {  # (C, O, k, stride)
    "3x3_s1": (8, 8, 3, 1),
    "3x3_s2": (16, 16, 3, 2),
    "5x5_s1": (8, 8, 5, 1),
    "3x3_x2": (8, 16, 3, 1),
}


def depthwise_fast_arithmetic(engine: str, symmetric: bool) -> str:
    """The products of torch's depthwise fast path: fbgemm pair-saturates on every CPU; x86 hands symmetric
    weights to oneDNN (exact) on VNNI CPUs and everything else to fbgemm; qnnpack is exact."""
    if engine == "qnnpack" or (engine == "x86" and symmetric and has_int8_dot_product()):
        return "exact"
    return "avx2-pairwise16"


def _depthwise_case(torch, qF, rng, engine, geometry, per_channel, w_zero):
    """Run one depthwise fast-path conv in torch; return its codes and hwsim's inputs."""
    c, o, k, stride = DEPTHWISE_FAST[geometry]
    x = rng.integers(0, 256, (2, c, 10, 11)).astype(np.uint8)
    w = rng.integers(-128, 128, (o, 1, k, k)).astype(np.int8)
    x[:, :, :4, :4], w[: c // 2] = 255, 127  # saturating pairs for sure
    sx, zx = F32(rng.uniform(0.002, 0.05)), int(rng.integers(0, 256))
    sw, zw = weight_params(rng, o, per_channel, w_zero)
    sy, zy = output_scale(rng, engine, sx, sw, k * k), int(rng.integers(0, 256))
    bias, b_int = float_bias(torch, rng.integers(-20000, 20000, o), sx, sw)
    got = _torch_conv(
        torch,
        qF,
        x,
        w,
        bias,
        (sx, zx, sw, zw, sy, zy),
        per_channel,
        (stride, stride),
        (k // 2, k // 2),
        (1, 1),
        c,
    )
    conv = {
        "stride": stride,
        "padding": (k // 2,) * 4,
        "groups": c,
        "x_zero_point": zx,
        "w_zero_point": zw,
        "bias": b_int,
    }
    return got, nhwc(x), nhwc(w), conv, (sx, zx, sw, zw, sy, zy)


@pytest.mark.parametrize("engine", ENGINES, indirect=True)
@pytest.mark.parametrize("geometry", list(DEPTHWISE_FAST))
@pytest.mark.parametrize("per_channel", [False, True], ids=["per_tensor", "per_channel"])
@pytest.mark.parametrize("w_zero", [0, 3])
def test_conv2d_depthwise_fast_path(torch, qF, engine, geometry, per_channel, w_zero, rng):
    """Torch's depthwise fast path equals hwsim's accumulators in the engine's arithmetic, requantized."""
    got, x, w, conv, q = _depthwise_case(torch, qF, rng, engine, geometry, per_channel, w_zero)
    sx, _, sw, _, sy, zy = q
    arithmetic = depthwise_fast_arithmetic(engine, symmetric=w_zero == 0)
    acc = ops.conv2d(x, w, arithmetic=arithmetic, **conv).acc
    other = ops.conv2d(x, w, arithmetic="exact" if arithmetic != "exact" else "avx2-pairwise16", **conv).acc
    assert (acc != other).any(), "the data must tell the two arithmetics apart"
    want = Q.requantize(
        acc,
        input_scale=sx,
        weight_scale=sw,
        output=Q.QParams.of(sy, zy),
        fmt=UINT8,
        semantics=semantics_for(engine),
        op="conv2d",
    )
    what = f"conv2d depthwise {engine}: {geometry} zw={w_zero} {arithmetic}"
    assert_same(got, want.transpose(0, 3, 1, 2), what)


@pytest.mark.parametrize("engine", ["fbgemm"], indirect=True)
def test_conv2d_depthwise_fast_path_host_semantics(torch, qF, engine, rng):
    """hwsim's host pytorch semantics reproduce fbgemm's depthwise fast path through quantized.conv2d:
    adjacent taps summed in pairs with int16 saturation (vpmaddubsw), even on VNNI/AMX CPUs where fbgemm's
    other kernels are exact (Semantics.depthwise_fast_u8s8). E.g. x = 255 and w = 127 on two adjacent taps:
    sat16(64770) = 32767."""
    got, x, w, conv, (sx, zx, sw, zw, sy, zy) = _depthwise_case(torch, qF, rng, engine, "3x3_s1", False, 0)
    quant = Q.LayerQuant(
        Q.QParams.of(sx, zx), Q.QParams.of(sw, zw), Q.QParams.of(sy, zy), UINT8, semantics="pytorch"
    )
    want = Q.conv2d(
        x, w, conv["bias"], quant, stride=conv["stride"], padding=conv["padding"], groups=conv["groups"]
    )
    assert_same(got, want.transpose(0, 3, 1, 2), "conv2d depthwise fbgemm vs hwsim pytorch semantics")


# ---------------------------------------------------------------- qnnpack's multiplier
# float32(sx * sw) / sy: acc * m = 25.499998 (-> 25); float32(sx * sw) * float32(1 / sy): 25.5 (-> 26)
RECIP = {"sx": F32(0.045062345), "sw": F32(0.0030444183), "sy": F32(0.3153617)}
RECIP_X = np.array([[254, 236], [0, 0], [254, 236], [10, 20]], np.uint8)  # acc = 58618 with w below
RECIP_W = np.array([[123, 116], [-123, -116]], np.int8)


def _recip_case(torch, qF):
    """qnnpack's output on the near tie, the accumulators, and the reciprocal multiplier."""
    sx, sw, sy = RECIP["sx"], RECIP["sw"], RECIP["sy"]
    acc = ops.matmul(RECIP_X, RECIP_W.T).acc
    divided, reciprocal = F32(F32(sx * sw) / sy), F32(F32(sx * sw) * F32(F32(1) / sy))
    assert acc[0, 0] == 58618
    assert acc[0, 0].astype(F32) * reciprocal == F32(25.5) != acc[0, 0].astype(F32) * divided
    xq, wq = qtensor(torch, RECIP_X, sx, 0), qtensor(torch, RECIP_W, sw, 0)
    return qF.linear(xq, wq, None, float(sy), 100).int_repr().numpy(), acc, reciprocal


@pytest.mark.parametrize("engine", ["qnnpack"], indirect=True)
def test_qnnpack_multiplies_by_reciprocal_output_scale(torch, qF, engine):
    """qnnpack requantizes with float32(sx * sw) * float32(1 / sy): 58618 * m = 25.5 rounds to 26 (+100)."""
    got, acc, reciprocal = _recip_case(torch, qF)
    want = np.clip(np.rint(acc.astype(F32) * reciprocal) + 100, 0, 255)
    assert want[0].tolist() == [126, 74]
    assert_same(got, want, "linear qnnpack reciprocal rule")


@pytest.mark.parametrize("engine", ["qnnpack"], indirect=True)
def test_qnnpack_multiplier_in_hwsim_semantics(torch, qF, engine):
    """hwsim's pytorch-qnnpack semantics reproduce qnnpack where its reciprocal multiplier matters."""
    got, _, _ = _recip_case(torch, qF)
    want = Q.fully_connected(
        RECIP_X,
        RECIP_W,
        None,
        Q.LayerQuant(
            Q.QParams.of(RECIP["sx"], 0),
            Q.QParams.of(RECIP["sw"], 0),
            Q.QParams.of(RECIP["sy"], 100),
            UINT8,
            semantics="pytorch-qnnpack",
        ),
    )
    assert_same(got, want, "linear qnnpack vs hwsim pytorch-qnnpack")


# ---------------------------------------------------------------- CPU-dependent arithmetic, on this host
@pytest.mark.skipif(not has_int8_dot_product(), reason="this host lacks VNNI/AMX: fbgemm's u8 x s8 saturates")
@pytest.mark.parametrize("engine", ["fbgemm", "x86"], indirect=True)
def test_linear_saturating_pairs_exact_on_vnni(torch, qF, engine, rng):
    """On a VNNI/AMX host fbgemm's linear is exact where AVX2 pairs saturate; hwsim's avx2 model differs."""
    assert get_semantics("pytorch").name == "pytorch-fbgemm-vnni"
    depth, cols = 16, 6
    x = rng.integers(0, 256, (9, depth)).astype(np.uint8)
    w = rng.integers(-128, 128, (cols, depth)).astype(np.int8)
    x[:3], w[:2] = 255, 127
    sx, sw = F32(0.01), F32(0.01)
    sy = F32(0.01 * 0.01 * depth * 255 * 127 / 200)  # the exact saturating sums map to code 200
    kw = {"x_q": Q.QParams.of(sx, 0), "w_q": Q.QParams.of(sw, 0), "y_q": Q.QParams.of(sy, 0), "y_fmt": UINT8}
    exact = Q.fully_connected(x, w, None, Q.LayerQuant(semantics="pytorch", **kw))
    avx2 = Q.fully_connected(x, w, None, Q.LayerQuant(semantics="pytorch-fbgemm-avx2", **kw))
    assert exact[0, 0] == 200 and avx2[0, 0] < 110
    got = qF.linear(qtensor(torch, x, sx, 0), qtensor(torch, w, sw, 0), None, float(sy), 0).int_repr().numpy()
    assert_same(got, exact, f"linear {engine} vnni saturating pairs")
