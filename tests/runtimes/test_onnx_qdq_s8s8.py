"""QDQ models with int8 activations (s8s8) from onnxruntime.quantization, MobileNetV2- and ResNet-style,
bit-exact against ONNX Runtime on every sample of data unlike the calibration set.

ONNX Runtime runs such a model partly in float (the groups its optimizer does not fuse, e.g. a Conv whose
input is int8 and output uint8 after its s8-to-u8 rewrite) and partly on integer kernels; hwsim reproduces
both. The samples are fed as a user would, ``hwsim verify MODEL --input samples.npy``. The AVX2 arithmetic
is also checked under an emulated AVX2 CPU (``qemu-x86_64 -cpu EPYC-v1``) where qemu-user is installed.
"""

import subprocess
import sys

import numpy as np
import pytest

from hwsim.runtime.execute import run_graph
from hwsim.importers import load_model
from hwsim.verify.compare import verify
from tests.runtimes.conftest import require

SHAPE = [1, 3, 24, 24]
SAMPLES = 12


class _Net:
    """A float ONNX graph under construction: convs (He-initialised, seeded) with ReLU / ReLU6 (Clip)."""

    def __init__(self, helper, numpy_helper):
        self.helper, self.numpy_helper = helper, numpy_helper
        self.rng = np.random.default_rng(0)
        self.nodes, self.inits, self.count = [], [], 0
        self.const("zero", 0.0)
        self.const("six", 6.0)

    def const(self, name, value):
        self.inits.append(self.numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name

    def conv(self, x, cin, cout, k, stride=1, group=1, act="relu6"):
        self.count += 1
        i, fan_in = self.count, cin // group * k * k
        w = self.const(f"w{i}", self.rng.normal(size=(cout, cin // group, k, k)) * (2.0 / fan_in) ** 0.5)
        b = self.const(f"b{i}", self.rng.normal(size=(cout,)) * 0.1)
        self.nodes.append(
            self.helper.make_node(
                "Conv", [x, w, b], [f"c{i}"], pads=[k // 2] * 4, strides=[stride] * 2, group=group
            )
        )
        if act == "relu6":
            self.nodes.append(self.helper.make_node("Clip", [f"c{i}", "zero", "six"], [f"r{i}"]))
        elif act == "relu":
            self.nodes.append(self.helper.make_node("Relu", [f"c{i}"], [f"r{i}"]))
        return f"r{i}" if act else f"c{i}"

    def add(self, a, b, relu=False):
        out = f"{b}_add"
        self.nodes.append(self.helper.make_node("Add", [a, b], [out]))
        if relu:
            self.nodes.append(self.helper.make_node("Relu", [out], [out + "_relu"]))
            return out + "_relu"
        return out

    def model(self, onnx, tp, name, x, channels):
        fc = self.const("fc", self.rng.normal(size=(10, channels)) / channels**0.5)
        h = self.helper
        self.nodes += [
            h.make_node("GlobalAveragePool", [x], ["g"]),
            h.make_node("Flatten", ["g"], ["f"]),
            h.make_node("Gemm", ["f", fc, self.const("fcb", np.zeros(10))], ["y"], transB=1),
        ]
        graph = h.make_graph(
            self.nodes,
            name,
            [h.make_tensor_value_info("x", tp.FLOAT, SHAPE)],
            [h.make_tensor_value_info("y", tp.FLOAT, [1, 10])],
            self.inits,
        )
        model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
        onnx.checker.check_model(model)
        return model


def _mobilenet_v2(net):
    x, c = net.conv("x", 3, 16, 3, 2), 16
    for expand, out, stride in ((1, 16, 1), (4, 24, 2), (4, 24, 1)):
        y = net.conv(x, c, c * expand, 1) if expand > 1 else x
        y = net.conv(y, c * expand, c * expand, 3, stride, group=c * expand)
        y = net.conv(y, c * expand, out, 1, act=None)
        x, c = (net.add(x, y) if stride == 1 and c == out else y), out
    return net.conv(x, c, 48, 1), 48


def _resnet(net):
    x, c = net.conv("x", 3, 16, 3, act="relu"), 16
    for out, stride in ((16, 1), (32, 2)):
        y = net.conv(net.conv(x, c, out, 3, stride, act="relu"), out, out, 3, act=None)
        shortcut = x if stride == 1 and c == out else net.conv(x, c, out, 1, stride, act=None)
        x, c = net.add(shortcut, y, relu=True), out
    return x, c


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Each net quantized by onnxruntime.quantization: QDQ, int8 activations, int8 per-channel weights,
    calibrated on 8 uniform [-1, 1] inputs."""
    onnx = require("onnx")
    require("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            rng = np.random.default_rng(1)
            self.data = iter([{"x": rng.uniform(-1, 1, SHAPE).astype(np.float32)} for _ in range(8)])

        def get_next(self):
            return next(self.data, None)

    folder = tmp_path_factory.mktemp("s8s8")
    paths = {}
    for name, build in (("mobilenet_v2", _mobilenet_v2), ("resnet", _resnet)):
        net = _Net(helper, numpy_helper)
        src = folder / f"{name}_f32.onnx"
        onnx.save(net.model(onnx, TensorProto, name, *build(net)), str(src))
        paths[name] = folder / f"{name}-qdq-s8s8.onnx"
        quantize_static(
            str(src),
            str(paths[name]),
            Reader(),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
        )
    return paths


def _real_data(path):
    """Samples unlike the calibration set (wider, Gaussian: some saturate the input quantizer), as a .npy
    of shape (samples, 1, 3, 24, 24)."""
    x = np.random.default_rng(7).normal(0, 0.8, (SAMPLES, *SHAPE)).astype(np.float32)
    np.save(path, x)
    return x


@pytest.mark.parametrize("name", ["mobilenet_v2", "resnet"])
def test_s8s8_qdq_model_is_bit_exact_on_every_sample(models, name, tmp_path):
    """Every tensor hwsim computes equals ONNX Runtime's (this host's CPU) on every sample, chained and
    isolated; the isolated column feeds each op ONNX Runtime's own tensors converted to hwsim's codes."""
    x = _real_data(tmp_path / "x.npy")
    (report,) = verify(models[name], against="onnxruntime", inputs=x).reports
    assert report.samples == SAMPLES
    assert report.outputs_exact, report.table()
    assert {r.kind for r in report.ops} >= {"conv2d_f32", "quantize"}, report.table()  # float groups
    for row in report.ops:
        assert row.observable and row.exact == row.elements, report.table()
        assert row.isolated_exact in (None, row.elements), report.table()


def test_verify_cli_on_user_samples(models, tmp_path):
    """`hwsim verify --input samples.npy` runs on the user's samples and says how many it compared."""
    _real_data(tmp_path / "x.npy")
    cli = [
        sys.executable,
        "-m",
        "hwsim",
        "verify",
        str(models["resnet"]),
        "--against",
        "onnxruntime",
        "--input",
    ]
    run = subprocess.run([*cli, str(tmp_path / "x.npy")], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"({SAMPLES} samples): BIT-EXACT" in run.stdout
    np.save(tmp_path / "f64.npy", np.zeros((2, *SHAPE)))
    run = subprocess.run([*cli, str(tmp_path / "f64.npy")], capture_output=True, text=True)
    assert run.returncode == 2 and "expected dtype float32 (got float64)" in run.stderr, run.stderr


@pytest.mark.parametrize("name", ["mobilenet_v2", "resnet"])
def test_avx2_outputs_under_an_emulated_avx2_cpu(models, name, avx2_onnxruntime, tmp_path):
    """ONNX Runtime under qemu's AVX2-only EPYC-v1 CPU gives the outputs of hwsim's onnxruntime-avx2
    semantics, whatever CPU runs the test (the VNNI arithmetic is checked by the test above on such CPUs)."""
    x = _real_data(tmp_path / "x.npy")[:4]
    model = models[name].read_bytes()
    want = np.stack([avx2_onnxruntime.run(model, {"x": v}, ["default"])[0] for v in x])
    graph = load_model(models[name])
    ours = np.stack([run_graph(graph, [v], "onnxruntime-avx2")["y"] for v in x])
    assert np.array_equal(ours, want)
