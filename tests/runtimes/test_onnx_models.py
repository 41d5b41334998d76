"""Whole quantized ONNX models (QOperator and QDQ, uint8 and int8 activations) run bit-exactly in hwsim.

Float models are written with onnx.helper and quantized by the real onnxruntime.quantization.quantize_static;
hwsim verify compares every integer tensor with ONNX Runtime under this host's semantics (VNNI or AVX2).
"""

import numpy as np
import pytest

from hwsim.errors import ConfigError
from hwsim.importers import load_model
from hwsim.runtime.execute import run_graph
from hwsim.verify.compare import verify
from hwsim.workload.shapes import output_shape
from tests.runtimes.conftest import ONNX_FORMS, quantize_onnx_four_ways, require

SAMPLES = 8


def _float_models(onnx, helper, numpy_helper, tp):
    """Float32 models keyed by name: (model, input shape)."""
    rng = np.random.default_rng(0)

    def weight(name, shape, scale=0.3):
        return numpy_helper.from_array((rng.normal(size=shape) * scale).astype(np.float32), name)

    def model(name, nodes, inits, shape, out_shape):
        graph = helper.make_graph(
            nodes,
            name,
            [helper.make_tensor_value_info("x", tp.FLOAT, shape)],
            [helper.make_tensor_value_info("y", tp.FLOAT, out_shape)],
            inits,
        )
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        onnx.checker.check_model(m)
        return m, shape

    def conv(x, y, w, b, **attrs):
        return helper.make_node("Conv", [x, w, b], [y], **attrs)

    relu = lambda x, y: helper.make_node("Relu", [x], [y])  # noqa: E731
    models = {}
    # ResNet-style: strided conv, residual add, depthwise, max pool, global pool, Gemm.
    inits = [
        weight("w0", (8, 3, 3, 3)),
        weight("b0", (8,), 0.1),
        weight("w1", (8, 8, 3, 3)),
        weight("b1", (8,), 0.1),
        weight("w2", (8, 8, 3, 3)),
        weight("b2", (8,), 0.1),
        weight("wd", (8, 1, 3, 3)),
        weight("bd", (8,), 0.1),
        weight("fc", (8, 10)),
        weight("fcb", (10,), 0.1),
    ]
    nodes = [
        conv("x", "c0", "w0", "b0", pads=[1, 1, 1, 1], strides=[2, 2]),
        relu("c0", "r0"),
        conv("r0", "c1", "w1", "b1", pads=[1, 1, 1, 1]),
        relu("c1", "r1"),
        conv("r1", "c2", "w2", "b2", pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["r0", "c2"], ["a"]),
        relu("a", "ra"),
        conv("ra", "cd", "wd", "bd", pads=[1, 1, 1, 1], group=8),
        relu("cd", "rd"),
        helper.make_node("MaxPool", ["rd"], ["mp"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["mp"], ["gap"]),
        helper.make_node("Flatten", ["gap"], ["fl"]),
        helper.make_node("Gemm", ["fl", "fc", "fcb"], ["y"]),
    ]
    models["resnet"] = model("resnet", nodes, inits, [1, 3, 16, 16], [1, 10])
    # MobileNetV1-style: depthwise-separable blocks (depthwise as group conv, multiplier 1 and 2), stride 2.
    inits = [
        weight("w0", (16, 3, 3, 3)),
        weight("b0", (16,), 0.1),
        weight("d1", (16, 1, 3, 3)),
        weight("e1", (16,), 0.1),
        weight("p1", (24, 16, 1, 1)),
        weight("q1", (24,), 0.1),
        weight("d2", (48, 1, 3, 3)),
        weight("e2", (48,), 0.1),
        weight("p2", (32, 48, 1, 1)),
        weight("q2", (32,), 0.1),
        weight("fc", (10, 32)),
        weight("fcb", (10,), 0.1),
    ]
    nodes = [
        conv("x", "c0", "w0", "b0", pads=[1, 1, 1, 1], strides=[2, 2]),
        relu("c0", "r0"),
        conv("r0", "c1", "d1", "e1", pads=[1, 1, 1, 1], group=16),
        relu("c1", "r1"),
        conv("r1", "c2", "p1", "q1"),
        relu("c2", "r2"),
        conv("r2", "c3", "d2", "e2", pads=[1, 1, 1, 1], strides=[2, 2], group=24),
        relu("c3", "r3"),
        conv("r3", "c4", "p2", "q2"),
        relu("c4", "r4"),
        helper.make_node("GlobalAveragePool", ["r4"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "fc", "fcb"], ["y"], transB=1),
    ]
    models["mobilenet"] = model("mobilenet", nodes, inits, [1, 3, 24, 24], [1, 10])
    # DS-CNN keyword spotting (49 frames x 10 MFCC, NCHW with one channel).
    inits = [
        weight("w0", (16, 1, 10, 4)),
        weight("b0", (16,), 0.1),
        weight("d1", (16, 1, 3, 3)),
        weight("e1", (16,), 0.1),
        weight("p1", (16, 16, 1, 1)),
        weight("q1", (16,), 0.1),
        weight("fc", (16, 12)),
        weight("fcb", (12,), 0.1),
    ]
    nodes = [
        conv("x", "c0", "w0", "b0", pads=[4, 1, 5, 2], strides=[2, 2]),
        relu("c0", "r0"),
        conv("r0", "c1", "d1", "e1", pads=[1, 1, 1, 1], group=16),
        relu("c1", "r1"),
        conv("r1", "c2", "p1", "q1"),
        relu("c2", "r2"),
        helper.make_node("GlobalAveragePool", ["r2"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "fc", "fcb"], ["y"]),
    ]
    models["ds_cnn"] = model("ds_cnn", nodes, inits, [1, 1, 49, 10], [1, 12])
    # MLP autoencoder on 8x8 digits: MatMul + Add + Relu layers.
    inits, nodes, prev = [], [], "x"
    for i, (k, n) in enumerate(((64, 32), (32, 8), (8, 32), (32, 64))):
        inits += [weight(f"w{i}", (k, n)), weight(f"b{i}", (n,), 0.1)]
        out = "y" if i == 3 else f"h{i}"
        nodes += [
            helper.make_node("MatMul", [prev, f"w{i}"], [f"m{i}"]),
            helper.make_node("Add", [f"m{i}", f"b{i}"], [f"a{i}"] if i < 3 else [out]),
        ]
        if i < 3:
            nodes.append(relu(f"a{i}", out))
        prev = out
    models["mlp_autoencoder"] = model("mlp_autoencoder", nodes, inits, [1, 64], [1, 64])
    return models


@pytest.fixture(scope="module")
def quantized(tmp_path_factory):
    """Every model quantized four ways: QOperator/QDQ x uint8/int8 activations (int8 per-channel weights)."""
    onnx = require("onnx")
    from onnx import TensorProto, helper, numpy_helper

    folder = tmp_path_factory.mktemp("onnx")
    paths = {}
    for name, (model, shape) in _float_models(onnx, helper, numpy_helper, TensorProto).items():
        src = folder / f"{name}_f32.onnx"
        onnx.save(model, str(src))
        paths.update(
            quantize_onnx_four_ways(
                src, name, lambda rng, shape=shape: rng.uniform(-1, 1, shape).astype(np.float32)
            )
        )
        paths[f"{name}-float"] = src
    return paths


KEYS = [f"{m}-{form}" for m in ("resnet", "mobilenet", "ds_cnn", "mlp_autoencoder") for form in ONNX_FORMS]


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
def test_quantized_model_is_bit_exact_against_onnxruntime(quantized, key):
    """Every integer tensor and the final output equal ONNX Runtime's, under this host's semantics."""
    (report,) = verify(quantized[key], against="onnxruntime", samples=SAMPLES, seed=2).reports
    assert report.outputs_exact, report.table()
    for row in report.ops:
        assert row.observable and row.exact == row.elements, report.table()


def test_float_model_imports_with_its_mac_count(quantized):
    """A plain float32 model imports too (to be quantized by hwsim); its MACs are counted from its shapes."""
    graph = load_model(quantized["mlp_autoencoder-float"])
    assert graph.mac_count() == 64 * 32 + 32 * 8 + 8 * 32 + 32 * 64


def test_missing_initializer_is_named(quantized, tmp_path):
    """An ONNX file whose node reads a removed initializer fails with the node and the tensor named."""
    onnx = require("onnx")
    model = onnx.load(str(quantized["resnet-QOperator-QUInt8"]))
    victim = model.graph.initializer[0].name
    del model.graph.initializer[0]
    path = tmp_path / "broken.onnx"
    onnx.save(model, str(path))
    with pytest.raises(ConfigError, match=f"reads '{victim}'.*missing initializer"):
        load_model(path)


@pytest.mark.parametrize("opset", [5, 29])
def test_opsets_onnxruntime_refuses_are_refused(tmp_path, opset):
    """A model stamped with an ai.onnx opset ONNX Runtime 1.32 does not run (below 7: no kernels; above 28:
    refused at load) is refused at import in one line, as ONNX Runtime refuses it."""
    onnx = require("onnx")
    ort = require("onnxruntime")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    path = tmp_path / f"opset{opset}.onnx"
    onnx.save(model, str(path))
    options = ort.SessionOptions()
    options.log_severity_level = 4
    with pytest.raises(Exception):
        ort.InferenceSession(str(path), options)
    with pytest.raises(ConfigError, match=f"ai.onnx opset {opset} is outside what ONNX Runtime runs"):
        load_model(path)
