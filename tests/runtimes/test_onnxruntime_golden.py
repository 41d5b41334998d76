"""Golden tests: hwsim's integer ops against live ONNX Runtime and onnx.reference, bit for bit.

Each test builds a single-op ONNX model with ``onnx.helper`` (opset 21), runs it in ONNX Runtime's
CPUExecutionProvider (with default graph optimizations and with all of them disabled) and, where it
implements the op, in ``onnx.reference.ReferenceEvaluator``, and asserts that hwsim gives the same integers:
the int32 accumulators for MatMulInteger / ConvInteger, the output codes for QLinearMatMul / QLinearConv.

ONNX Runtime's uint8 x int8 products depend on the CPU (exact with VNNI/AMX, pair-saturated to int16 on
AVX2 without VNNI, see shared/NUMERICS.md), so hwsim runs with the host's semantics: ``onnxruntime``
resolves to ``onnxruntime-vnni`` or ``onnxruntime-avx2``. ConvInteger is exact on both (its GEMM is s8
weights x u8 activations), and so is MLAS' depthwise kernel (one output per group); a depthwise QLinearConv
with a depth multiplier of 2 is a grouped GEMM and pair-saturates on AVX2 (all measured on an AMD Zen1).
"""

from __future__ import annotations

import collections

import numpy as np
import pytest

from hwsim.numerics import ops
from hwsim.numerics import quantized as Q
from hwsim.numerics.cpu import has_int8_dot_product
from hwsim.numerics.formats import IntFormat
from hwsim.numerics.semantics import get_semantics
from tests.runtimes.conftest import require

F32 = np.float32
OPSET = 21
#: elements compared per check, for the record (never asserted on)
COMPARED: collections.Counter = collections.Counter()

NP_TYPES = {"u8": np.uint8, "s8": np.int8}
COMBOS = ["s8s8", "u8s8", "u8u8"]  # activations x weights, as ORT implements them
FORMATS = {
    "int8": IntFormat(8),
    "uint8": IntFormat(8, signed=False),
    "int4": IntFormat(4),
    "uint4": IntFormat(4, signed=False),
}


# ---------------------------------------------------------------- runtime plumbing
class Runtimes:
    """Builds single-op models; runs them in ONNX Runtime (two optimization levels) and in onnx.reference."""

    def __init__(self) -> None:
        self.ort = require("onnxruntime")
        self.onnx = require("onnx")
        self.reference = require("onnx.reference")
        ml_dtypes = require("ml_dtypes")  # a dependency of onnx: numpy dtypes for INT4 / UINT4
        self.int4 = {"int4": ml_dtypes.int4, "uint4": ml_dtypes.uint4}

    def tensor_type(self, dtype) -> int:
        """The ONNX element type of a numpy dtype."""
        return self.onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))

    def model(self, nodes, inputs: dict, initializers: dict, output_type: int):
        """A graph of ``nodes`` ``(op, inputs, outputs, attributes)`` with inputs, constants and output y."""
        helper, numpy_helper = self.onnx.helper, self.onnx.numpy_helper
        graph = helper.make_graph(
            [helper.make_node(op, ins, outs, **attrs) for op, ins, outs, attrs in nodes],
            "golden",
            [
                helper.make_tensor_value_info(name, self.tensor_type(a.dtype), a.shape)
                for name, a in inputs.items()
            ],
            [helper.make_tensor_value_info("y", output_type, None)],
            [numpy_helper.from_array(np.asarray(a), name) for name, a in initializers.items()],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
        model.ir_version = 10
        return model

    def run_ort(self, model, feeds: dict) -> list[np.ndarray]:
        """Outputs of ONNX Runtime's CPU provider with default optimizations and with ORT_DISABLE_ALL."""
        outs = []
        for level in (None, self.ort.GraphOptimizationLevel.ORT_DISABLE_ALL):
            options = self.ort.SessionOptions()
            options.log_severity_level = 3
            if level is not None:
                options.graph_optimization_level = level
            session = self.ort.InferenceSession(
                model.SerializeToString(), options, providers=["CPUExecutionProvider"]
            )
            outs.append(session.run(None, feeds)[0])
        return outs

    def run_reference(self, model, feeds: dict) -> np.ndarray:
        """Output of the ONNX specification's Python evaluator."""
        return self.reference.ReferenceEvaluator(model).run(None, feeds)[0]


@pytest.fixture(scope="module")
def rt() -> Runtimes:
    """ONNX Runtime and onnx.reference, or a skip (locally) / failure (CI) when they are missing."""
    return Runtimes()


def assert_same(got: np.ndarray, want: np.ndarray, what: str) -> None:
    """Assert equal shapes and 0 mismatching elements (floats by bit pattern), naming the first few."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    if got.dtype.kind == "f" or want.dtype.kind == "f":
        bad = got.astype(F32).view(np.uint32) != want.astype(F32).view(np.uint32)
    else:
        bad = got.astype(np.int64) != want.astype(np.int64)
    idx = np.argwhere(bad)
    detail = ", ".join(f"{tuple(int(j) for j in i)}: {got[tuple(i)]} != {want[tuple(i)]}" for i in idx[:8])
    assert idx.shape[0] == 0, f"{what}: {idx.shape[0]} of {bad.size} elements differ ({detail})"
    COMPARED[what.split(":")[0]] += bad.size


def host_arithmetic(x_dtype, w_dtype) -> str:
    """hwsim's dot-product arithmetic for ONNX Runtime on this host, for these operand types."""
    if np.dtype(x_dtype) == np.uint8 and np.dtype(w_dtype) == np.int8:
        return get_semantics("onnxruntime").u8s8
    return "exact"


def codes(rng: np.random.Generator, dtype, shape, high: int | None = None) -> np.ndarray:
    """Uniform random codes over the whole range of ``dtype`` (or up to ``high``)."""
    info = np.iinfo(dtype)
    return rng.integers(info.min, (info.max if high is None else high) + 1, shape).astype(dtype)


def onnx_pads(pads: tuple[int, int, int, int]) -> list[int]:
    """hwsim's (top, bottom, left, right) as ONNX's [top, left, bottom, right]."""
    top, bottom, left, right = pads
    return [top, left, bottom, right]


def nhwc(a: np.ndarray) -> np.ndarray:
    """NCHW / OIHW to NHWC / OHWI."""
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1))


def nchw(a: np.ndarray) -> np.ndarray:
    """NHWC back to NCHW."""
    return np.ascontiguousarray(a.transpose(0, 3, 1, 2))


# ---------------------------------------------------------------- QuantizeLinear / DequantizeLinear
def _quantize_model(rt: Runtimes, fmt: str, scale, zero_point, axis: int, shape):
    """QuantizeLinear to ``fmt``; 4-bit outputs are widened by a Cast (numpy cannot receive INT4 tensors)."""
    f = FORMATS[fmt]
    zp_dtype = rt.int4[fmt] if f.bits == 4 else f.storage_dtype
    nodes = [("QuantizeLinear", ["x", "s", "z"], ["q" if f.bits == 4 else "y"], {"axis": axis})]
    if f.bits == 4:
        nodes.append(("Cast", ["q"], ["y"], {"to": rt.tensor_type(f.storage_dtype)}))
    return rt.model(
        nodes,
        {"x": np.zeros(shape, F32)},
        {"s": np.asarray(scale, F32), "z": np.asarray(zero_point).astype(zp_dtype)},
        rt.tensor_type(f.storage_dtype),
    )


def _tie_grid(f: IntFormat, zero_point: int, scale: float) -> np.ndarray:
    """Half-integer multiples of ``scale`` from 4 codes below to 4 codes above the range, and saturation."""
    k = np.arange(f.min - zero_point - 4, f.max - zero_point + 5, dtype=np.float64)
    values = np.concatenate([k + 0.5, k - 0.5, k, [-1e4, 1e4, -3.0e7, 3.0e7, -0.0, 0.0]]) * scale
    return values.astype(F32)  # exact: a power-of-two scale times a small half-integer


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_quantize_linear_ties_and_saturation(rt, fmt):
    """QuantizeLinear rounds exact ties half to even before adding the zero point, and saturates both ends."""
    f = FORMATS[fmt]
    for zero_point in sorted({f.min, f.max, 0 if f.signed else 1, (f.min + f.max) // 2 + 1, f.min + 1}):
        for scale in (0.25, 2.0):
            x = _tie_grid(f, zero_point, scale)
            model = _quantize_model(rt, fmt, scale, zero_point, 0, x.shape)
            want = ops.quantize(x, scale, zero_point, f, rounding="half_even")
            for out in rt.run_ort(model, {"x": x}):
                assert_same(out, want, f"QuantizeLinear {fmt} ort: zp={zero_point} s={scale}")
            assert_same(rt.run_reference(model, {"x": x}), want, f"QuantizeLinear {fmt} ref: zp={zero_point}")


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_quantize_linear_random_scales(rt, fmt, rng):
    """QuantizeLinear divides by the float32 scale (no reciprocal, no float64), near ties included."""
    f = FORMATS[fmt]
    for trial in range(6):
        scale = F32(rng.uniform(0.003, 0.9))
        zero_point = int(rng.integers(f.min, f.max + 1))
        k = rng.integers(f.min - zero_point - 3, f.max - zero_point + 4, 20000)
        near_ties = ((k + 0.5) * np.float64(scale)).astype(F32)  # rounded to float32: just off the tie
        spread = (rng.standard_normal(20000) * (f.max - f.min) * scale / 3).astype(F32)
        x = np.concatenate([near_ties, spread])
        model = _quantize_model(rt, fmt, scale, zero_point, 0, x.shape)
        want = ops.quantize(x, scale, zero_point, f)
        for out in rt.run_ort(model, {"x": x}):
            assert_same(out, want, f"QuantizeLinear {fmt} ort: trial {trial}")
        assert_same(rt.run_reference(model, {"x": x}), want, f"QuantizeLinear {fmt} ref: trial {trial}")


@pytest.mark.parametrize("fmt", ["int8", "uint8"])
def test_quantize_linear_extremes_onnxruntime(rt, fmt):
    """ORT saturates infinities and quotients beyond int32 as hwsim does (onnx.reference wraps those)."""
    f = FORMATS[fmt]
    x = np.array([np.inf, -np.inf, 3.4e38, -3.4e38, 1e30, -1e30, 1e10, -1e10, 2.2e9, -2.2e9, 1e6, -1e6], F32)
    model = _quantize_model(rt, fmt, 0.5, 3, 0, x.shape)
    want = ops.quantize(x, 0.5, 3, f)
    assert_same(want, np.where(x > 0, f.max, f.min), f"QuantizeLinear {fmt} hwsim saturates")
    for out in rt.run_ort(model, {"x": x}):
        assert_same(out, want, f"QuantizeLinear {fmt} ort: extremes")


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("axis", [0, 1, 3])
def test_quantize_linear_per_axis(rt, fmt, axis, rng):
    """Per-axis QuantizeLinear uses each channel's scale and zero point, ties and saturation included."""
    f = FORMATS[fmt]
    shape = (3, 5, 4, 6)
    channels = shape[axis]
    scale = np.where(np.arange(channels) % 2, rng.uniform(0.01, 0.5, channels), 0.25).astype(F32)
    zero_point = rng.integers(f.min, f.max + 1, channels)
    zero_point[0], zero_point[-1] = f.min, f.max
    view = [1] * len(shape)
    view[axis] = channels
    k = rng.integers(f.min - f.max - 2, f.max - f.min + 3, shape)
    half = rng.random(shape) < 0.5
    x = ((k + 0.5 * half) * scale.reshape(view).astype(np.float64)).astype(F32)
    model = _quantize_model(rt, fmt, scale, zero_point, axis, shape)
    want = ops.quantize(x, scale, zero_point, f, axis=axis)
    for out in rt.run_ort(model, {"x": x}):
        assert_same(out, want, f"QuantizeLinear {fmt} per-axis ort: axis {axis}")
    assert_same(rt.run_reference(model, {"x": x}), want, f"QuantizeLinear {fmt} per-axis ref: axis {axis}")


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("per_axis", [False, True], ids=["per_tensor", "per_axis"])
def test_dequantize_linear(rt, fmt, per_axis, rng):
    """DequantizeLinear is float32(q - zero_point) * float32 scale, bit for bit, for every code."""
    f = FORMATS[fmt]
    channels = 7
    q = np.tile(np.arange(f.min, f.max + 1), (channels, 3, 1)).astype(f.storage_dtype)  # every code
    if per_axis:
        scale = rng.uniform(1e-4, 3.0, channels).astype(F32)
        zero_point = rng.integers(f.min, f.max + 1, channels)
        zero_point[0], zero_point[-1] = f.min, f.max
        axis = 0
    else:
        scale, zero_point, axis = F32(rng.uniform(1e-4, 3.0)), int(f.max), 1
    zp_dtype = rt.int4[fmt] if f.bits == 4 else f.storage_dtype
    # 4-bit codes enter in their 8-bit container and are narrowed by a Cast (exact for in-range codes)
    nodes = [("DequantizeLinear", ["q" if f.bits == 4 else "q8", "s", "z"], ["y"], {"axis": axis})]
    if f.bits == 4:
        nodes.insert(0, ("Cast", ["q8"], ["q"], {"to": rt.tensor_type(zp_dtype)}))
    inits = {"s": np.asarray(scale, F32), "z": np.asarray(zero_point).astype(zp_dtype)}
    model = rt.model(nodes, {"q8": q}, inits, rt.tensor_type(F32))
    want = ops.dequantize(q, scale, zero_point, axis=axis if per_axis else None)
    for out in rt.run_ort(model, {"q8": q}):
        assert_same(out, want, f"DequantizeLinear {fmt} ort")
    assert_same(rt.run_reference(model, {"q8": q}), want, f"DequantizeLinear {fmt} ref")


# ---------------------------------------------------------------- MatMulInteger
def _zero_points(rng, case: str, x_dtype, w_dtype, n: int):
    """(x zero point, w zero point) for a named case: none, random, extreme or per-column."""
    xi, wi = np.iinfo(x_dtype), np.iinfo(w_dtype)
    if case == "none":
        return None, None
    if case == "extreme":  # the ends of the ranges: |(x - zx)(w - zw)| reaches 255 * 255 or 255 * 128
        return x_dtype(xi.max if xi.min == 0 else xi.min), w_dtype(wi.max)
    zx = x_dtype(rng.integers(xi.min, xi.max + 1))
    if case == "per_column":
        return zx, codes(rng, w_dtype, n)
    return zx, w_dtype(rng.integers(wi.min, wi.max + 1))


@pytest.mark.parametrize("combo", COMBOS)
@pytest.mark.parametrize("depth", [1, 7, 64, 4096])
@pytest.mark.parametrize("zp_case", ["none", "random", "extreme", "per_column"])
def test_matmul_integer(rt, combo, depth, zp_case, rng):
    """MatMulInteger's int32 accumulators equal hwsim's matmul (host arithmetic for ORT, exact for ref)."""
    x_dtype, w_dtype = NP_TYPES[combo[:2]], NP_TYPES[combo[2:]]
    rows, cols = (6, 9) if depth == 4096 else (33, 17)
    x, w = codes(rng, x_dtype, (rows, depth)), codes(rng, w_dtype, (depth, cols))
    x[0], w[:, 0] = np.iinfo(x_dtype).max, np.iinfo(w_dtype).min  # extreme operands in every case
    x[1], w[:, 1] = np.iinfo(x_dtype).min, np.iinfo(w_dtype).max
    zx, zw = _zero_points(rng, zp_case, x_dtype, w_dtype, cols)
    inits = {"w": w} if zx is None else {"w": w, "zx": np.asarray(zx), "zw": np.asarray(zw)}
    model = rt.model([("MatMulInteger", ["x", *inits], ["y"], {})], {"x": x}, inits, rt.tensor_type(np.int32))
    kw = {
        "x_zero_point": 0 if zx is None else int(zx),
        "w_zero_point": 0 if zw is None else np.asarray(zw, np.int64),
    }
    exact = ops.matmul(x, w, **kw).acc
    host = ops.matmul(x, w, arithmetic=host_arithmetic(x_dtype, w_dtype), **kw).acc
    for out in rt.run_ort(model, {"x": x}):
        assert_same(out, host, f"MatMulInteger ort: {combo} K={depth} {zp_case}")
    assert_same(rt.run_reference(model, {"x": x}), exact, f"MatMulInteger ref: {combo} K={depth} {zp_case}")


# ---------------------------------------------------------------- ConvInteger
# (C, O, kernel, stride, pads (top, bottom, left, right), dilation, group, H, W); C per group even
GEOMETRIES = {
    "3x3_same": (4, 6, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, 8, 9),
    "3x3_s2_d2": (6, 4, (3, 3), (2, 2), (0, 0, 0, 0), (2, 2), 1, 11, 10),
    "5x3_asym": (4, 5, (5, 3), (2, 1), (2, 0, 1, 1), (1, 2), 1, 10, 9),
    "group4": (8, 12, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 4, 7, 8),
    "depthwise": (6, 6, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 6, 9, 9),
    "depthwise_x2": (4, 8, (3, 3), (1, 1), (1, 2, 0, 1), (1, 1), 4, 6, 7),
    "pointwise": (16, 8, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1, 5, 6),
}


def _conv_attrs(kernel, stride, pads, dilation, group) -> dict:
    return {
        "kernel_shape": list(kernel),
        "strides": list(stride),
        "pads": onnx_pads(pads),
        "dilations": list(dilation),
        "group": group,
    }


def _is_u8s8(x_dtype, w_dtype) -> bool:
    return np.dtype(x_dtype) == np.uint8 and np.dtype(w_dtype) == np.int8


def _conv_x(rng, x_dtype, w_dtype, shape, cautious: bool) -> np.ndarray:
    """Activations; u8 x s8 convs whose AVX2 pair order is not established stay in [0, 127] (module doc)."""
    if cautious and _is_u8s8(x_dtype, w_dtype):
        return codes(rng, x_dtype, shape, high=127)
    return codes(rng, x_dtype, shape)


def _cautious_zero_point(zx, x_dtype, w_dtype, cautious: bool):
    """Padded taps read the input zero point: with cautious u8 x s8 data it stays in [0, 127] too."""
    return x_dtype(int(zx) % 128) if cautious and _is_u8s8(x_dtype, w_dtype) else zx


@pytest.mark.parametrize("combo", COMBOS)
@pytest.mark.parametrize("geometry", list(GEOMETRIES))
def test_conv_integer(rt, combo, geometry, rng):
    """ConvInteger's int32 accumulators equal hwsim's conv2d (strides, pads, dilations, groups, zero pts)."""
    x_dtype, w_dtype = NP_TYPES[combo[:2]], NP_TYPES[combo[2:]]
    c, o, kernel, stride, pads, dilation, group, h, w_ = GEOMETRIES[geometry]
    for zp_case in ("random", "extreme"):
        x = _conv_x(rng, x_dtype, w_dtype, (2, c, h, w_), cautious=False)
        w = codes(rng, w_dtype, (o, c // group, *kernel))
        zx, zw = _zero_points(rng, zp_case, x_dtype, w_dtype, o)
        attrs = _conv_attrs(kernel, stride, pads, dilation, group)
        model = rt.model(
            [("ConvInteger", ["x", "w", "zx", "zw"], ["y"], attrs)],
            {"x": x},
            {"w": w, "zx": np.asarray(zx), "zw": np.asarray(zw)},
            rt.tensor_type(np.int32),
        )
        kw = {
            "stride": stride,
            "padding": pads,
            "dilation": dilation,
            "groups": group,
            "x_zero_point": int(zx),
            "w_zero_point": int(zw),
        }
        exact = nchw(ops.conv2d(nhwc(x), nhwc(w), **kw).acc)
        what = f"{combo} {geometry} {zp_case}"
        for out in rt.run_ort(model, {"x": x}):  # exact on AVX2 too: hwsim's conv_integer op says so
            assert_same(out, exact, f"ConvInteger ort: {what}")
        assert_same(rt.run_reference(model, {"x": x}), exact, f"ConvInteger ref: {what}")


# ---------------------------------------------------------------- QLinearMatMul
def _output_scale(rng, sx, sw, depth: int) -> F32:
    """An output scale that spreads the outputs over roughly +-60 codes (some saturate)."""
    spread = np.sqrt(depth) * 74.0 * 74.0  # std of a sum of products of uniform 8-bit codes
    return F32(np.float64(sx) * np.float64(np.max(sw)) * spread / 60.0 * rng.uniform(0.6, 1.6))


def _qparams(rng, combo: str, channels: int, per_channel: bool, depth: int):
    """Random scales and zero points; per-channel int8 weights get zero zero points (ORT requires it)."""
    x_dtype, w_dtype = NP_TYPES[combo[:2]], NP_TYPES[combo[2:]]
    sx = F32(rng.uniform(0.002, 0.1))
    zx = x_dtype(rng.integers(np.iinfo(x_dtype).min, np.iinfo(x_dtype).max + 1))
    if per_channel:
        sw = rng.uniform(0.001, 0.05, channels).astype(F32)
        zw = np.zeros(channels, w_dtype) if w_dtype == np.int8 else codes(rng, w_dtype, channels)
    else:
        sw = F32(rng.uniform(0.001, 0.05))
        zw = w_dtype(rng.integers(-6, 7) if w_dtype == np.int8 else rng.integers(0, 256))
    sy = _output_scale(rng, sx, sw, depth)
    zy = x_dtype(rng.integers(np.iinfo(x_dtype).min, np.iinfo(x_dtype).max + 1))
    return sx, zx, sw, zw, sy, zy


def _hw_qparams(sx, zx, sw, zw, sy, zy) -> dict:
    """The same parameters as the keyword arguments of hwsim's ``LayerQuant``."""
    return {
        "x_q": Q.QParams.of(sx, int(zx)),
        "w_q": Q.QParams.of(sw, np.asarray(zw).astype(np.int64)),
        "y_q": Q.QParams.of(sy, int(zy)),
        "y_fmt": IntFormat(8, signed=np.asarray(zy).dtype == np.int8),
    }


def _qlinear_inits(w, sx, zx, sw, zw, sy, zy) -> dict:
    return {
        "sx": np.asarray(sx, F32),
        "zx": np.asarray(zx),
        "w": w,
        "sw": np.asarray(sw, F32),
        "zw": np.asarray(zw),
        "sy": np.asarray(sy, F32),
        "zy": np.asarray(zy),
    }


def _qlinear_matmul_model(rt, x, w, sx, zx, sw, zw, sy, zy):
    inputs = ["x", "sx", "zx", "w", "sw", "zw", "sy", "zy"]
    inits = _qlinear_inits(w, sx, zx, sw, zw, sy, zy)
    out_type = rt.tensor_type(np.asarray(zy).dtype)
    return rt.model([("QLinearMatMul", inputs, ["y"], {})], {"x": x}, inits, out_type)


@pytest.mark.parametrize("combo", COMBOS)
@pytest.mark.parametrize("per_channel", [False, True], ids=["per_tensor", "per_column"])
@pytest.mark.parametrize("depth", [1, 16, 255, 1024])
def test_qlinear_matmul(rt, combo, per_channel, depth, rng):
    """QLinearMatMul's codes equal hwsim's fully_connected under onnxruntime / onnx-reference semantics."""
    x_dtype, w_dtype = NP_TYPES[combo[:2]], NP_TYPES[combo[2:]]
    rows, cols = 40, 24
    for trial in range(3):
        x, w = codes(rng, x_dtype, (rows, depth)), codes(rng, w_dtype, (depth, cols))
        params = _qparams(rng, combo, cols, per_channel, depth)
        model = _qlinear_matmul_model(rt, x, w, *params)
        hw = _hw_qparams(*params)
        want_ort = Q.fully_connected(x, w.T, None, Q.LayerQuant(semantics="onnxruntime", **hw))
        want_ref = Q.fully_connected(x, w.T, None, Q.LayerQuant(semantics="onnx-reference", **hw))
        what = f"{combo} K={depth} trial {trial}"
        for out in rt.run_ort(model, {"x": x}):
            assert_same(out, want_ort, f"QLinearMatMul ort: {what}")
        assert_same(rt.run_reference(model, {"x": x}), want_ref, f"QLinearMatMul ref: {what}")


@pytest.mark.parametrize("combo", COMBOS)
def test_qlinear_matmul_requantization_ties(rt, combo):
    """Accumulators landing exactly on a half code (real multiplier 0.5 or 0.25) round half to even."""
    x_dtype, w_dtype = NP_TYPES[combo[:2]], NP_TYPES[combo[2:]]
    zx = x_dtype(100 if x_dtype == np.uint8 else -3)
    zw = w_dtype(120 if w_dtype == np.uint8 else 2)
    zy = x_dtype(128 if x_dtype == np.uint8 else 0)
    offsets = np.arange(-21, 22)  # x - zx; with w - zw = +-1 the accumulators are +-offset
    x = (offsets[:, None] + int(zx)).astype(x_dtype)
    w = np.array([[int(zw) + 1, int(zw) - 1]], w_dtype)
    for sy in (F32(0.5), F32(1.0)):  # m = 0.5 * 0.5 / sy: 0.5 or 0.25
        model = _qlinear_matmul_model(rt, x, w, F32(0.5), zx, F32(0.5), zw, sy, zy)
        hw = _hw_qparams(F32(0.5), zx, F32(0.5), zw, sy, zy)
        acc = ops.matmul(x, w, x_zero_point=int(zx), w_zero_point=int(zw)).acc
        half_even = np.rint(acc * (0.25 / float(sy))).astype(np.int64) + int(zy)
        got = Q.fully_connected(x, w.T, None, Q.LayerQuant(semantics="onnxruntime", **hw))
        assert_same(got, half_even, f"QLinearMatMul hwsim ties: {combo} sy={sy}")
        for out in rt.run_ort(model, {"x": x}):
            assert_same(out, half_even, f"QLinearMatMul ort ties: {combo} sy={sy}")
        assert_same(rt.run_reference(model, {"x": x}), half_even, f"QLinearMatMul ref ties: {combo} sy={sy}")


# acc * m is exactly 118.5 in float32 (half to even: 118) but 118.50000132 in float64 (119).
NEAR_TIE = {"sx": F32(0.098102696), "sw": F32(0.06886866), "sy": F32(0.6539547)}
NEAR_TIE_X = np.array([[110, 47], [-110, -47], [100, 15], [55, 0]], np.int8)  # acc 11470, -11470, 10150, 5500
NEAR_TIE_W = np.array([[100], [10]], np.int8)


def _near_tie_case(rt):
    sx, sw, sy = NEAR_TIE["sx"], NEAR_TIE["sw"], NEAR_TIE["sy"]
    zero = np.int8(0)
    acc = NEAR_TIE_X.astype(np.int64) @ NEAR_TIE_W.astype(np.int64)
    m = F32(F32(sx * sw) / sy)
    assert (acc[:2].astype(F32) * m == F32([[118.5], [-118.5]])).all()  # the case is what it claims to be
    assert (np.abs(acc[:2] * np.float64(m)) > 118.5).all()
    model = _qlinear_matmul_model(rt, NEAR_TIE_X, NEAR_TIE_W, sx, zero, sw, zero, sy, zero)
    return model, _hw_qparams(sx, zero, sw, zero, sy, zero)


def test_qlinear_matmul_near_tie_onnxruntime(rt):
    """ORT multiplies in float32: a float32 product of exactly 118.5 rounds to 118, as in hwsim."""
    model, hw = _near_tie_case(rt)
    want = Q.fully_connected(NEAR_TIE_X, NEAR_TIE_W.T, None, Q.LayerQuant(semantics="onnxruntime", **hw))
    assert want[:2, 0].tolist() == [118, -118]
    for out in rt.run_ort(model, {"x": NEAR_TIE_X}):
        assert_same(out, want, "QLinearMatMul ort near tie")


def test_qlinear_matmul_near_tie_onnx_reference(rt):
    """onnx.reference's QLinearMatMul equals hwsim's onnx-reference semantics on a float32-only tie."""
    model, hw = _near_tie_case(rt)
    want = Q.fully_connected(NEAR_TIE_X, NEAR_TIE_W.T, None, Q.LayerQuant(semantics="onnx-reference", **hw))
    assert_same(rt.run_reference(model, {"x": NEAR_TIE_X}), want, "QLinearMatMul ref near tie")


# ---------------------------------------------------------------- QLinearConv
def _qlinear_conv_model(rt, x, w, bias, params, attrs: dict):
    inputs = ["x", "sx", "zx", "w", "sw", "zw", "sy", "zy", "b"]
    inits = {**_qlinear_inits(w, *params), "b": bias}
    return rt.model(
        [("QLinearConv", inputs, ["y"], attrs)], {"x": x}, inits, rt.tensor_type(np.asarray(params[-1]).dtype)
    )


@pytest.mark.parametrize("combo", COMBOS)
@pytest.mark.parametrize("geometry", list(GEOMETRIES))
@pytest.mark.parametrize("per_channel", [False, True], ids=["per_tensor", "per_channel"])
def test_qlinear_conv(rt, combo, geometry, per_channel, rng):
    """QLinearConv's codes (int32 bias) equal hwsim's conv2d under onnxruntime / onnx-reference semantics."""
    x_dtype, w_dtype = NP_TYPES[combo[:2]], NP_TYPES[combo[2:]]
    c, o, kernel, stride, pads, dilation, group, h, w_ = GEOMETRIES[geometry]
    depth = c // group * kernel[0] * kernel[1]
    attrs = _conv_attrs(kernel, stride, pads, dilation, group)
    for trial in range(2):
        cautious = False  # every QLinearConv path is modelled on both kinds of CPU (module doc)
        x = _conv_x(rng, x_dtype, w_dtype, (2, c, h, w_), cautious)
        w = codes(rng, w_dtype, (o, c // group, *kernel))
        sx, zx, sw, zw, sy, zy = _qparams(rng, combo, o, per_channel, depth)
        params = (sx, _cautious_zero_point(zx, x_dtype, w_dtype, cautious), sw, zw, sy, zy)
        bias = rng.integers(-30 * 74 * 74, 30 * 74 * 74, o).astype(np.int32)
        bias[0] = 0
        model = _qlinear_conv_model(rt, x, w, bias, params, attrs)
        kw = {"stride": stride, "padding": pads, "dilation": dilation, "groups": group}
        hw = _hw_qparams(*params)
        want_ort = nchw(Q.conv2d(nhwc(x), nhwc(w), bias, Q.LayerQuant(semantics="onnxruntime", **hw), **kw))
        want_ref = nchw(
            Q.conv2d(nhwc(x), nhwc(w), bias, Q.LayerQuant(semantics="onnx-reference", **hw), **kw)
        )
        what = f"{combo} {geometry} trial {trial}"
        for out in rt.run_ort(model, {"x": x}):
            assert_same(out, want_ort, f"QLinearConv ort: {what}")
        assert_same(rt.run_reference(model, {"x": x}), want_ref, f"QLinearConv ref: {what}")


def test_qlinear_conv_depthwise_stays_exact_under_avx2_semantics(rt):
    """hwsim's onnxruntime-avx2 semantics keep depthwise QLinearConv exact, as MLAS's depthwise kernel is on
    every CPU (measured on VNNI hosts and on an AVX2-only AMD Zen1)."""
    c, k = 8, 3
    x = np.full((1, c, 5, 5), 255, np.uint8)
    w = np.full((c, 1, k, k), 127, np.int8)
    sy = F32(0.01 * 0.01 * 9 * 255 * 127 / 200)
    params = (F32(0.01), np.uint8(0), F32(0.01), np.int8(0), sy, np.uint8(0))
    bias = np.zeros(c, np.int32)
    model = _qlinear_conv_model(rt, x, w, bias, params, _conv_attrs((k, k), (1, 1), (1, 1, 1, 1), (1, 1), c))
    quant = Q.LayerQuant(semantics="onnxruntime-avx2", **_hw_qparams(*params))
    want = nchw(Q.conv2d(nhwc(x), nhwc(w), bias, quant, stride=1, padding=(1, 1, 1, 1), groups=c))
    assert_same(rt.run_ort(model, {"x": x})[0], want, "QLinearConv ort depthwise vs hwsim avx2")


def test_qlinear_conv_depthwise_multiplier_2_is_a_grouped_gemm(rt):
    """MLAS' depthwise kernel takes one output per group only: with a depth multiplier of 2, QLinearConv runs
    one GEMM per group, whose u8 x s8 pairs saturate on AVX2 hosts (exact on VNNI/AMX), as hwsim's host
    semantics say, through quantized.depthwise_conv2d (the ONNX importer's op) and conv2d alike."""
    c, k = 8, 3
    x = np.full((1, c, 5, 5), 255, np.uint8)
    w = np.full((2 * c, 1, k, k), 127, np.int8)
    w[1::2] = -37
    sy = F32(0.01 * 0.01 * 9 * 255 * 127 / 200)
    params = (F32(0.01), np.uint8(0), F32(0.01), np.int8(0), sy, np.uint8(0))
    bias = np.zeros(2 * c, np.int32)
    model = _qlinear_conv_model(rt, x, w, bias, params, _conv_attrs((k, k), (1, 1), (1, 1, 1, 1), (1, 1), c))
    kw, hw = {"stride": 1, "padding": (1, 1, 1, 1)}, _hw_qparams(*params)
    want = nchw(Q.conv2d(nhwc(x), nhwc(w), bias, Q.LayerQuant(semantics="onnxruntime", **hw), groups=c, **kw))
    other = "onnxruntime-avx2" if has_int8_dot_product() else "onnxruntime-vnni"
    assert (
        nchw(Q.conv2d(nhwc(x), nhwc(w), bias, Q.LayerQuant(semantics=other, **hw), groups=c, **kw)) != want
    ).any()
    dw = nchw(
        Q.depthwise_conv2d(
            nhwc(x),
            np.ascontiguousarray(w[:, 0].transpose(1, 2, 0)),
            bias,
            Q.LayerQuant(semantics="onnxruntime", **hw),
            depth_multiplier=2,
            **kw,
        )
    )
    assert_same(dw, want, "depthwise_conv2d vs conv2d with groups")
    assert_same(rt.run_ort(model, {"x": x})[0], want, "QLinearConv ort depth multiplier 2")


# ---------------------------------------------------------------- CPU-dependent arithmetic, on this host
@pytest.mark.parametrize("op", ["MatMulInteger", "ConvInteger", "QLinearMatMul", "QLinearConv"])
def test_saturating_pairs_follow_the_host(rt, op, rng):
    """ORT's u8 x s8 is exact on a VNNI/AMX host and pair-saturated (vpmaddubsw) on an AVX2 one, as hwsim's
    host semantics say; the data make the two differ."""
    vnni = has_int8_dot_product()
    assert get_semantics("onnxruntime").name == ("onnxruntime-vnni" if vnni else "onnxruntime-avx2")
    assert host_arithmetic(np.uint8, np.int8) == ("exact" if vnni else "avx2-pairwise16")
    depth, cols = 16, 5
    x = codes(rng, np.uint8, (7, depth))
    x[:3] = 255  # 255 * 127 + 255 * 127 = 64770 > 32767: every pair saturates under vpmaddubsw
    w = codes(rng, np.int8, (depth, cols))
    w[:, :2] = 127
    exact = ops.matmul(x, w).acc
    pairwise = ops.matmul(x, w, arithmetic="avx2-pairwise16").acc
    assert exact[0, 0] == depth * 255 * 127 and pairwise[0, 0] == depth // 2 * 32767
    assert (pairwise != exact).sum() >= 6
    sy = F32(0.01 * 0.01 * depth * 255 * 127 / 200)  # the exact saturating sums map to code 200
    qp = (F32(0.01), np.uint8(0), F32(0.01), np.int8(0), sy, np.uint8(0))
    hw = _hw_qparams(*qp)
    feeds = {"x": x}
    if op == "MatMulInteger":
        model = rt.model(
            [("MatMulInteger", ["x", "w"], ["y"], {})], feeds, {"w": w}, rt.tensor_type(np.int32)
        )
        want, avx2 = exact, pairwise
    elif op == "QLinearMatMul":
        model = _qlinear_matmul_model(rt, x, w, *qp)
        want = Q.fully_connected(x, w.T, None, Q.LayerQuant(semantics="onnxruntime-vnni", **hw))
        avx2 = Q.fully_connected(x, w.T, None, Q.LayerQuant(semantics="onnxruntime-avx2", **hw))
    else:  # the same products as a 1x1 conv over `depth` channels
        xc = np.ascontiguousarray(x.T.reshape(1, depth, 7, 1))
        wc = np.ascontiguousarray(w.T.reshape(cols, depth, 1, 1))
        feeds = {"x": xc}
        exact_c = nchw(ops.conv2d(nhwc(xc), nhwc(wc)).acc)
        assert_same(exact_c[0, :, :, 0].T, exact, "1x1 conv is the matmul")
        if op == "ConvInteger":  # its GEMM is s8 weights x u8 activations: exact on AVX2 too (measured, Zen1)
            model = rt.model(
                [("ConvInteger", ["x", "w"], ["y"], {"kernel_shape": [1, 1]})],
                feeds,
                {"w": wc},
                rt.tensor_type(np.int32),
            )
            want, avx2 = exact_c, nchw(ops.conv2d(nhwc(xc), nhwc(wc), arithmetic="avx2-pairwise16").acc)
            vnni = True  # ORT's answer is the exact one on every host
        else:
            bias = np.zeros(cols, np.int32)
            model = _qlinear_conv_model(rt, xc, wc, bias, qp, {"kernel_shape": [1, 1]})
            want = nchw(Q.conv2d(nhwc(xc), nhwc(wc), bias, Q.LayerQuant(semantics="onnxruntime-vnni", **hw)))
            avx2 = nchw(Q.conv2d(nhwc(xc), nhwc(wc), bias, Q.LayerQuant(semantics="onnxruntime-avx2", **hw)))
            host = nchw(Q.conv2d(nhwc(xc), nhwc(wc), bias, Q.LayerQuant(semantics="onnxruntime", **hw)))
            assert_same(host, want if vnni else avx2, f"{op}: the host semantics")
    assert (avx2 != want).any(), f"{op}: hwsim's avx2-pairwise16 model must differ from exact here"
    for out in rt.run_ort(model, feeds):
        assert_same(out, want if vnni else avx2, f"{op} ort {'vnni' if vnni else 'avx2'} saturating pairs")
    assert_same(rt.run_reference(model, feeds), want, f"{op} ref saturating pairs")
