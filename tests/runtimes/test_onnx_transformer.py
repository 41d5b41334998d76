"""A quantized transformer encoder block runs bit-exactly in hwsim against ONNX Runtime (QOperator and QDQ).

The float block (sequence 16, model dimension 32, two heads: Q/K/V projections, Q·Kᵀ of two activations,
scaling, Softmax, attention·V, output projection, residual, layer norm, a feed-forward pair, residual, layer
norm) is written with onnx.helper in two variants: "gelu" (scores times 1/√d, LayerNormalization ops,
GELU as x/2 (1 + erf(x/√2))) and "relu" (scores divided by √d, ReLU, and layer norm decomposed into
ReduceMean, Sub, Pow, Sqrt, Div, Mul, Add). Each is quantized by the real
onnxruntime.quantization.quantize_static (per-channel int8 weights, uint8 and int8 activations).

What ONNX Runtime 1.32 runs (default session options, x86): QLinearMatMul for every MatMul whose A is uint8
(Q·Kᵀ and attention·V with two activations), com.microsoft QLinearAdd, QLinearMul and QLinearSoftmax,
integer Reshape/Transpose, and float32 LayerNormalization, Div and Erf between DequantizeLinear and
QuantizeLinear (ReduceMean, Sub, Pow, Sqrt and Div too in the decomposed norm). In QDQ form with int8
activations it first turns every int8 Q/DQ pair with a single reader into uint8, then leaves the groups with
an int8 A (MatMul) or mixed types (Add, Mul) in float32: the Q/K/V and first feed-forward projections run as
float SGEMM, the bias adds and the GELU products as float Add/Mul. hwsim reproduces all of it (see
hwsim.runtime.onnx_ops); every tensor, integer and float, is compared.
"""

import numpy as np
import pytest

from hwsim.importers import load_model
from hwsim.numerics import mlas
from hwsim.runtime.execute import run_graph
from hwsim.verify.compare import verify
from hwsim.workload.shapes import output_shape
from tests.runtimes.conftest import ONNX_FORMS, quantize_onnx_four_ways, require

SAMPLES = 8
SEQ, DIM, HEADS, FFN = 16, 32, 2, 64
KEYS = [f"{block}-{form}" for block in ("gelu", "relu") for form in ONNX_FORMS]


def _transformer(onnx, helper, numpy_helper, tp, ffn: str):
    """A float32 post-norm encoder block (opset 17): "gelu" (LayerNormalization, GELU) or "relu" (decomposed
    layer norm, ReLU)."""
    rng = np.random.default_rng(0)
    inits, nodes = [], []

    def const(name, value):
        inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def weight(name, shape, scale):
        return const(name, (rng.normal(size=shape) * scale).astype(np.float32))

    def node(op, inputs, output, **attrs):
        nodes.append(helper.make_node(op, inputs, [output], **attrs))
        return output

    def linear(x, name, k, n):
        mm = node("MatMul", [x, weight(f"{name}_w", (k, n), 1 / np.sqrt(k))], f"{name}_mm")
        return node("Add", [mm, weight(f"{name}_b", (n,), 0.1)], f"{name}_out")

    def heads(x, name, perm):
        return node("Transpose", [node("Reshape", [x, "shape_heads"], f"{name}_r")], f"{name}_t", perm=perm)

    def layer_norm(x, name, out):
        gamma, beta = weight(f"{name}_g", (DIM,), 0.3), weight(f"{name}_b", (DIM,), 0.1)
        if ffn == "gelu":
            return node("LayerNormalization", [x, gamma, beta], out, axis=-1, epsilon=1e-5)
        # the decomposition torch and older exporters write: (x - mean) / sqrt(var + eps) * gamma + beta
        centered = node("Sub", [x, node("ReduceMean", [x], f"{name}_mu", axes=[-1])], f"{name}_d")
        square = node("Pow", [centered, const(f"{name}_two", np.array(2, np.float32))], f"{name}_d2")
        var = node("ReduceMean", [square], f"{name}_var", axes=[-1])
        eps = const(f"{name}_eps", np.array(1e-5, np.float32))
        std = node("Sqrt", [node("Add", [var, eps], f"{name}_ve")], f"{name}_sd")
        scaled = node("Mul", [node("Div", [centered, std], f"{name}_n"), gamma], f"{name}_ng")
        return node("Add", [scaled, beta], out)

    const("shape_heads", np.array([1, SEQ, HEADS, DIM // HEADS], np.int64))
    const("shape_model", np.array([1, SEQ, DIM], np.int64))
    q = heads(linear("x", "q", DIM, DIM), "q", [0, 2, 1, 3])
    k = heads(linear("x", "k", DIM, DIM), "k", [0, 2, 3, 1])
    v = heads(linear("x", "v", DIM, DIM), "v", [0, 2, 1, 3])
    scores = node("MatMul", [q, k], "scores")
    if ffn == "gelu":
        scaled = node(
            "Mul",
            [scores, const("inv_sqrt_dh", np.array(1 / np.sqrt(DIM // HEADS), np.float32))],
            "scores_scaled",
        )
    else:
        scaled = node(
            "Div", [scores, const("sqrt_dh", np.array(np.sqrt(DIM // HEADS), np.float32))], "scores_scaled"
        )
    probs = node("Softmax", [scaled], "probs", axis=-1)
    ctx = node("Transpose", [node("MatMul", [probs, v], "ctx")], "ctx_t", perm=[0, 2, 1, 3])
    attn = linear(node("Reshape", [ctx, "shape_model"], "ctx_r"), "o", DIM, DIM)
    ln1 = layer_norm(node("Add", ["x", attn], "res1"), "ln1", "ln1_out")
    hidden = linear(ln1, "ff1", DIM, FFN)
    if ffn == "gelu":
        erf = node(
            "Erf", [node("Div", [hidden, const("sqrt2", np.array(np.sqrt(2), np.float32))], "g_div")], "g_erf"
        )
        one_plus = node("Add", [erf, const("one", np.array(1, np.float32))], "g_add")
        gate = node("Mul", [hidden, one_plus], "g_mul")
        act = node("Mul", [gate, const("half", np.array(0.5, np.float32))], "gelu")
    else:
        act = node("Relu", [hidden], "relu")
    y = layer_norm(node("Add", [ln1, linear(act, "ff2", FFN, DIM)], "res2"), "ln2", "y")
    graph = helper.make_graph(
        nodes,
        f"encoder_{ffn}",
        [helper.make_tensor_value_info("x", tp.FLOAT, [1, SEQ, DIM])],
        [helper.make_tensor_value_info(y, tp.FLOAT, [1, SEQ, DIM])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


@pytest.fixture(scope="module")
def quantized(tmp_path_factory):
    """Both blocks quantized four ways: QOperator/QDQ x uint8/int8 activations (int8 per-channel weights)."""
    onnx = require("onnx")
    from onnx import TensorProto, helper, numpy_helper

    folder = tmp_path_factory.mktemp("transformer")
    paths = {}
    for block in ("gelu", "relu"):
        src = folder / f"{block}_f32.onnx"
        onnx.save(_transformer(onnx, helper, numpy_helper, TensorProto, block), str(src))
        paths.update(
            quantize_onnx_four_ways(src, block, lambda rng: rng.normal(size=(1, SEQ, DIM)).astype(np.float32))
        )
    return paths


@pytest.mark.parametrize("key", KEYS)
def test_shapes_at_import_are_the_executed_shapes(quantized, key):
    """Every shape the importer gives (ONNX's inference, else hwsim's rules) and every shape hwsim's rules
    alone derive equals the shape of the tensor the integer run produces."""
    graph = load_model(quantized[key])
    zeros = [np.zeros(graph.tensor(n).shape, graph.tensor(n).dtype) for n in graph.inputs]
    values = run_graph(graph, zeros, "onnx-reference")
    assert {n: graph.tensor(n).shape for n in values} == {n: v.shape for n, v in values.items()}
    assert {op.name: output_shape(graph, op) for op in graph.ops} == {
        op.name: values[op.outputs[0]].shape for op in graph.ops
    }


@pytest.mark.parametrize("key", KEYS)
def test_transformer_block_is_bit_exact_against_onnxruntime(quantized, key):
    """All tensors (integer codes, float32 ones between DQ and Q) and the output equal ONNX Runtime's."""
    (report,) = verify(quantized[key], against="onnxruntime", samples=SAMPLES, seed=2).reports
    assert report.outputs_exact, report.table()
    for row in report.ops:
        assert row.observable and row.exact == row.elements, report.table()


def test_import_follows_onnx_runtime_fusion(quantized):
    """QOperator keeps LayerNorm, Div and Erf in float; QDQ int8 also int8-A MatMuls and mixed-type Adds."""
    qop = [op.kind for op in load_model(quantized["gelu-QOperator-QInt8"]).ops]
    assert {"qlinear_matmul", "qlinear_softmax", "qlinear_mul", "qlinear_add"} <= set(qop)
    assert {"layer_norm_f32", "div_f32", "erf_f32"} <= set(qop) and "matmul_f32" not in qop
    qdq = load_model(quantized["gelu-QDQ-QInt8"])
    kinds = [op.kind for op in qdq.ops]
    assert kinds.count("matmul_f32") == 4 and kinds.count("qlinear_matmul") == 2  # Q, K, V, FF1 | Q·Kᵀ, P·V
    scores = next(op for op in qdq.ops if op.kind == "qlinear_matmul")
    assert all(qdq.tensor(name).dtype == np.uint8 for name in scores.inputs)  # int8 pairs became uint8


def _session(onnx, helper, nodes, inputs, inits, ms=False):
    """A session of one node reading ``inputs`` [(name, type, shape)], its output y of input 0's type."""
    import onnxruntime

    graph = helper.make_graph(
        nodes,
        "op",
        [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
        [helper.make_tensor_value_info("y", inputs[0][1], None)],
        inits,
    )
    opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid("com.microsoft", 1)] if ms else [])
    model = helper.make_model(graph, opset_imports=opsets)
    return onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def test_mlas_float_kernels_match_onnxruntime():
    """LayerNormalization (widths 8 to 64, with and without bias), ReduceMean, Pow, Erf, MatMul match ORT."""
    onnx = require("onnx")
    require("onnxruntime")
    from onnx import TensorProto as tp, helper, numpy_helper as nh

    from hwsim.numerics.semantics import get_semantics
    from hwsim.runtime.onnx_ops import erf_kernel

    rng = np.random.default_rng(3)
    for width in (8, 13, 32, 64):
        x = rng.normal(size=(512, width)) * rng.uniform(0.01, 10, (512, 1)) + rng.normal(size=(512, 1))
        x = x.astype(np.float32)
        g, b = rng.normal(size=width).astype(np.float32), rng.normal(size=width).astype(np.float32)
        for bias in (b, None):
            ins = ["x", "g"] + ([] if bias is None else ["b"])
            inits = [nh.from_array(g, "g")] + ([] if bias is None else [nh.from_array(b, "b")])
            norm = helper.make_node("LayerNormalization", ins, ["y"], axis=-1, epsilon=1e-5)
            s = _session(onnx, helper, [norm], [("x", tp.FLOAT, list(x.shape))], inits)
            assert np.array_equal(mlas.layer_norm(x, g, bias, 1e-5), s.run(None, {"x": x})[0])
        mean = helper.make_node("ReduceMean", ["x"], ["y"], axes=[-1])
        s = _session(onnx, helper, [mean], [("x", tp.FLOAT, list(x.shape))], [])
        assert np.array_equal(mlas.reduce_mean_last(x), s.run(None, {"x": x})[0])  # rows off 16-byte bounds
        for exponent in (2.0, 3.0, 0.5):
            power = helper.make_node("Pow", ["x", "e"], ["y"])
            s = _session(
                onnx,
                helper,
                [power],
                [("x", tp.FLOAT, list(x.shape))],
                [nh.from_array(np.array(exponent, np.float32), "e")],
            )
            assert np.array_equal(mlas.power(np.abs(x), exponent), s.run(None, {"x": np.abs(x)})[0])
    x = np.concatenate(
        [
            rng.normal(size=20000) * 2,
            rng.uniform(-5, 5, 20000),
            [0.0, -0.0, 0.921875, -0.921875, 3.725, 3.925, 10.0],
        ]
    ).astype(np.float32)
    s = _session(onnx, helper, [helper.make_node("Erf", ["x"], ["y"])], [("x", tp.FLOAT, [x.size])], [])
    expected = s.run(None, {"x": x})[0]
    assert np.array_equal(
        mlas.erf(x, erf_kernel(get_semantics("onnxruntime"))).view(np.int32), expected.view(np.int32)
    )
    a, w = rng.normal(size=(2, 16, 64)).astype(np.float32), rng.normal(size=(2, 64, 16)).astype(np.float32)
    s = _session(
        onnx,
        helper,
        [helper.make_node("MatMul", ["a", "w"], ["y"])],
        [("a", tp.FLOAT, list(a.shape)), ("w", tp.FLOAT, list(w.shape))],
        [],
    )
    assert np.array_equal(mlas.sgemm(a, w), s.run(None, {"a": a, "w": w})[0])


# (C, O, k, stride, pads (top, bottom, left, right), dilation, groups, H, W): K = C / groups * k * k
CONV_F32 = {
    "c3_s2": (3, 8, 3, 2, (1, 1, 1, 1), 1, 1, 16, 16),
    "k72": (8, 16, 3, 1, (1, 1, 1, 1), 1, 1, 9, 9),
    "k144_blocks": (16, 16, 3, 1, (1, 1, 1, 1), 1, 1, 12, 12),
    "k288_few_pixels": (32, 8, 3, 1, (1, 1, 1, 1), 1, 1, 7, 7),
    "k576": (64, 8, 3, 1, (1, 1, 1, 1), 1, 1, 4, 4),
    "groups3": (6, 12, 3, 1, (1, 0, 2, 1), 1, 3, 9, 9),
    "pointwise": (16, 4, 1, 1, (0, 0, 0, 0), 1, 1, 8, 8),
    "dilated_s2": (8, 8, 3, 2, (1, 1, 1, 1), 2, 1, 9, 9),
}


@pytest.mark.parametrize("geometry", list(CONV_F32))
def test_mlas_float_conv_matches_onnxruntime(geometry):
    """ONNX Runtime's float Conv with weights that are not constant (as DequantizeLinear's outputs are in a
    QDQ
    group it leaves unfused, so no NCHWc rewrite) equals mlas.conv2d_nchw to the last bit."""
    onnx = require("onnx")
    require("onnxruntime")
    from onnx import TensorProto as tp, helper, numpy_helper as nh

    c, o, k, stride, pads, dilation, groups, h, w_ = CONV_F32[geometry]
    rng = np.random.default_rng(6)
    x = (rng.normal(size=(2, c, h, w_)) * 3).astype(np.float32)
    w = rng.normal(size=(o, c // groups, k, k)).astype(np.float32)
    b = rng.normal(size=o).astype(np.float32)
    conv = helper.make_node(
        "Conv",
        ["x", "w", "b"],
        ["y"],
        strides=[stride] * 2,
        dilations=[dilation] * 2,
        group=groups,
        pads=[pads[0], pads[2], pads[1], pads[3]],
    )
    s = _session(
        onnx,
        helper,
        [conv],
        [("x", tp.FLOAT, list(x.shape)), ("w", tp.FLOAT, list(w.shape))],
        [nh.from_array(b, "b")],
    )
    got = mlas.conv2d_nchw(x, w, b, (stride, stride), pads, (dilation, dilation), groups)
    assert np.array_equal(got.view(np.int32), s.run(None, {"x": x, "w": w})[0].view(np.int32))


ONE_IMAGE_CONV_F32 = {  # as CONV_F32, run on one image: MLAS' one-row kernel, and per-thread segments
    "depthwise": (16, 16, 3, 1, (1, 1, 1, 1), 1, 16, 12, 12),
    "depthwise_k5_s2": (8, 8, 5, 2, (2, 2, 2, 2), 1, 8, 13, 13),
    "depthwise_k2_odd_pads": (6, 6, 2, 1, (0, 1, 1, 0), 1, 6, 7, 9),
    "k144_thread_segments": (16, 32, 3, 2, (1, 1, 1, 1), 1, 1, 24, 24),
}


@pytest.mark.parametrize("geometry", list(ONE_IMAGE_CONV_F32))
def test_mlas_float_conv_of_one_image_matches_onnxruntime(geometry):
    """On one image, a depthwise float Conv runs MLAS' M = 1 kernel (groups of 4 products, multiply then add)
    and an ungrouped one is split into output segments across ONNX Runtime's threads, each with its own K
    blocks; mlas.conv2d_nchw with this host's physical cores equals ONNX Runtime to the last bit."""
    onnx = require("onnx")
    require("onnxruntime")
    from onnx import TensorProto as tp, helper, numpy_helper as nh

    from hwsim.numerics.cpu import physical_cores

    c, o, k, stride, pads, dilation, groups, h, w_ = ONE_IMAGE_CONV_F32[geometry]
    rng = np.random.default_rng(8)
    x = (rng.normal(size=(1, c, h, w_)) * 3).astype(np.float32)
    w = rng.normal(size=(o, c // groups, k, k)).astype(np.float32)
    b = rng.normal(size=o).astype(np.float32)
    conv = helper.make_node(
        "Conv",
        ["x", "w", "b"],
        ["y"],
        strides=[stride] * 2,
        dilations=[dilation] * 2,
        group=groups,
        pads=[pads[0], pads[2], pads[1], pads[3]],
    )
    s = _session(
        onnx,
        helper,
        [conv],
        [("x", tp.FLOAT, list(x.shape)), ("w", tp.FLOAT, list(w.shape))],
        [nh.from_array(b, "b")],
    )
    got = mlas.conv2d_nchw(
        x, w, b, (stride, stride), pads, (dilation, dilation), groups, threads=physical_cores()
    )
    assert np.array_equal(got.view(np.int32), s.run(None, {"x": x, "w": w})[0].view(np.int32))


def test_conv_thread_segments():
    """MlasConvPrepare's split of 144 output pixels (32 filters, K = 144): 2 threads give segments of 80
    (rounded up to 16) and 64; few multiplies keep one thread; 16 threads at most."""
    assert mlas.conv_thread_segments(144, 32, 144, 2) == [(0, 80), (80, 144)]
    assert mlas.conv_thread_segments(144, 32, 144, 1) == [(0, 144)]
    assert mlas.conv_thread_segments(64, 2, 9, 8) == [(0, 64)]  # 1,152 multiplies: one thread
    assert len(mlas.conv_thread_segments(4096, 64, 576, 64)) == 16


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_com_microsoft_integer_ops_match_onnxruntime(dtype):
    """QLinearSoftmax (rows of 5 to 32, saturated int8 outputs), QLinearAdd and QLinearMul equal ORT's."""
    onnx = require("onnx")
    require("onnxruntime")
    from onnx import TensorProto as tp, helper, numpy_helper as nh

    rng = np.random.default_rng(4)
    info, code = np.iinfo(dtype), (tp.UINT8 if dtype == np.uint8 else tp.INT8)
    scalar = lambda v, name, t=dtype: nh.from_array(np.array(v, t), name)  # noqa: E731
    zy = 0 if dtype == np.uint8 else -128
    for depth in (5, 8, 16, 32):
        x = rng.integers(info.min, int(info.max) + 1, (256, depth)).astype(dtype)
        x[0], x[1, 0] = info.min, info.max
        for sx in (0.01, 0.045, 0.17):
            inits = [
                scalar(sx, "sx", np.float32),
                scalar(3, "zx"),
                scalar(1 / 256, "sy", np.float32),
                scalar(zy, "zy"),
            ]
            softmax = helper.make_node(
                "QLinearSoftmax",
                ["x", "sx", "zx", "sy", "zy"],
                ["y"],
                domain="com.microsoft",
                axis=-1,
                opset=17,
            )
            s = _session(onnx, helper, [softmax], [("x", code, list(x.shape))], inits, ms=True)
            assert np.array_equal(mlas.qlinear_softmax(x, sx, 1 / 256, zy), s.run(None, {"x": x})[0])
    names = ["a", "sa", "za", "b", "sb", "zb", "sy", "zy"]
    inputs = [(n, tp.FLOAT if n[0] == "s" else code, {"a": [256], "b": None}.get(n, [])) for n in names]
    a = np.arange(info.min, int(info.max) + 1).astype(dtype)
    sessions = {
        op: _session(
            onnx, helper, [helper.make_node(op, names, ["y"], domain="com.microsoft")], inputs, [], ms=True
        )
        for op in ("QLinearAdd", "QLinearMul")
    }
    for _ in range(300):
        sa, sb, sy = np.exp(rng.uniform(-6, 0, 3)).astype(np.float32)
        za, zb, zy, b = (int(v) for v in rng.integers(info.min, int(info.max) + 1, 4))
        for bv in (np.array(b, dtype), rng.permutation(a)):  # a broadcast scalar B, then a vector B
            feed = {
                "a": a,
                "sa": np.array(sa),
                "za": np.array(za, dtype),
                "b": bv,
                "sb": np.array(sb),
                "zb": np.array(zb, dtype),
                "sy": np.array(sy),
                "zy": np.array(zy, dtype),
            }
            for op, fn in (("QLinearAdd", mlas.qlinear_add), ("QLinearMul", mlas.qlinear_mul)):
                ours = fn(a, bv, za, zb, zy, sa, sb, sy, info.min, info.max)
                assert np.array_equal(ours, sessions[op].run(None, feed)[0]), (op, sa, sb, sy, za, zb, zy)


def test_attention_matmuls_are_scheduled_on_the_mac_array(quantized):
    """QLinearMatMul of two activations counts its MACs and runs on the device's MAC array, as batch
    matmul."""
    from hwsim.importers import load_model
    from hwsim.schedule.simulate import simulate

    graph = load_model(quantized["relu-QOperator-QUInt8"])
    attention = [op for op in graph.ops if op.kind == "qlinear_matmul"]
    assert len(attention) == 2  # Q.K^T and attention.V
    layers = {layer.op: layer for layer in simulate(graph, "ethos_u55_128_like").layers}
    for op in attention:
        assert layers[op.name].unit == "mac_array"
        assert layers[op.name].macs == SEQ * SEQ * DIM  # heads x seq x seq x head_dim, summed over heads
