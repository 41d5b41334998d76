"""Float ONNX models as torch.onnx.export writes them (both exporters, a dynamic batch axis): ops common in
real exports import, run like ONNX Runtime, quantize, and `hwsim energy` reads the file."""

from pathlib import Path

import numpy as np
import pytest

from tests.runtimes.conftest import require


def _net():
    """A small net with the ops torch exports bring: Resize, Pad, Concat, Split, ReduceMean (squeeze-excite
    and the head), HardSwish, HardSigmoid, Sigmoid, Mul, Sub, Transpose and a batch-preserving Reshape."""
    torch = require("torch")
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.Hardswish())
            self.branch = nn.Conv2d(4, 4, 3, padding=1, groups=4)
            self.se = nn.Conv2d(8, 8, 1)
            self.fc = nn.Linear(8 * 8 * 8, 10)

        def forward(self, x):
            x = nn.functional.interpolate(x, scale_factor=2, mode="nearest")
            x = self.stem(nn.functional.pad(x, (1, 1, 1, 1)))[:, :, 1:-1, 1:-1]
            a, b = torch.split(x, 4, dim=1)
            x = torch.cat([torch.sigmoid(self.branch(a)), b - 0.5], dim=1)
            x = nn.functional.max_pool2d(x, 2)
            x = x * nn.functional.hardsigmoid(self.se(x.mean((2, 3), keepdim=True)))
            y = x.permute(0, 2, 3, 1)
            return self.fc(y.reshape(y.shape[0], -1)) + x.mean((2, 3)).sum(1, keepdim=True)

    torch.manual_seed(0)
    net = Net().eval()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
    return torch, net


ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> dict:
    """The net exported with a dynamic batch by the TorchScript exporter (Shape/Gather/Concat shape arithmetic
    before the Reshape), and the shipped MobileNetV3-style model that torch.export's exporter wrote (exporting
    live with it takes 10-20 s)."""
    torch, net = _net()
    path = tmp_path_factory.mktemp("exports") / "ts.onnx"
    torch.onnx.export(
        net,
        (torch.zeros(1, 1, 8, 8),),
        str(path),
        input_names=["x"],
        output_names=["y"],
        dynamo=False,
        dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}},
        opset_version=17,
    )
    return {"torchscript": path, "dynamo": ROOT / "workloads" / "digits_mobilenet.onnx"}


@pytest.mark.parametrize(
    "exporter, kinds",
    [
        (
            "torchscript",
            {
                "resize",
                "pad",
                "concat",
                "slice",
                "mean",
                "sum",
                "hard_swish",
                "hard_sigmoid",
                "logistic",
                "mul",
                "sub",
                "transpose",
                "max_pool2d",
            },
        ),
        (
            "dynamo",
            {"resize", "mean", "hard_swish", "hard_sigmoid", "relu6", "mul", "add", "depthwise_conv2d"},
        ),
    ],
)
def test_export_runs_like_onnxruntime_and_quantizes(exports, exporter, kinds):
    """hwsim's float run equals ONNX Runtime's on a batch of 5 (the file was probed at batch 2 and 3), and
    the int8 integer graph follows the float model (output SQNR above 25 dB)."""
    ort = require("onnxruntime")
    from hwsim.importers import load_model
    from hwsim.quant.convert import quantize_model
    from hwsim.quant.recipe import PRESETS
    from hwsim.runtime.float_exec import run_float

    path = exports[exporter]
    x = np.random.default_rng(1).uniform(0, 1, (5, 1, 8, 8)).astype(np.float32)
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    graph = load_model(path)
    assert kinds <= {op.kind for op in graph.ops}
    got = run_float(graph, [x])[graph.outputs[0]]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    calib = np.random.default_rng(2).uniform(0, 1, (32, 1, 8, 8)).astype(np.float32)
    qm = quantize_model(path, PRESETS["int8_w_per_channel"], calib)
    integer = qm.run_integer(x)[qm.graph.outputs[0]]
    noise = float(((integer - want) ** 2).sum())
    assert 10 * np.log10(float((want**2).sum()) / noise) > 25


def _hwsim(capsys, *args) -> tuple[int, str, str]:
    """``hwsim ARGS`` in this process: (exit code, stdout, stderr)."""
    from hwsim.cli import main

    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_energy_reads_a_dynamic_batch_file_and_points_float_models_to_quantize(exports, tmp_path, capsys):
    """`hwsim energy` on the dynamic-batch export prices one inference; on a device without float MACs a float
    model is a one-line error that says to quantize it first, and the quantized file is priced."""
    path = exports["torchscript"]
    code, out, _ = _hwsim(capsys, "energy", path, "--device", "ethos_u55_128_like")
    assert code == 0 and "energy/inference" in out
    code, _, err = _hwsim(capsys, "energy", path, "--device", "hexagon_like")
    assert code == 2 and err.startswith("hwsim: error: ") and err.count("\n") == 1
    assert "quantize it first" in err
    np.save(tmp_path / "calib.npy", np.random.default_rng(2).uniform(0, 1, (16, 1, 8, 8)).astype(np.float32))
    code, _, err = _hwsim(
        capsys, "quantize", path, "--calib", tmp_path / "calib.npy", "--output", tmp_path / "int.json"
    )
    assert code == 0, err
    code, out, _ = _hwsim(capsys, "energy", tmp_path / "int.json", "--device", "edge_tpu_like")
    assert code == 0 and "energy/inference" in out


def test_a_batch_the_file_fixes_is_a_one_line_error(tmp_path):
    """torch.export specializes an example batch of 1 into Reshape targets: feeding 3 samples names the op,
    the fixed batch and the way out, where ONNX Runtime refuses the input."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from hwsim.errors import ConfigError
    from hwsim.importers import load_model
    from hwsim.runtime.float_exec import run_float

    shape = numpy_helper.from_array(np.array([1, 2, 2], np.int64), "shape")
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["x", "shape"], ["y"])],
        "fixed",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 2])],
        [shape],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "fixed.onnx")
    with pytest.raises(ConfigError, match=r"batch of 3 .*fixes input .x. to a batch of 1; export"):
        run_float(load_model(tmp_path / "fixed.onnx"), [np.zeros((3, 4), np.float32)])
