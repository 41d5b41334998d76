"""Build the ONNX/TFLite model pairs of ``tests/data/ethos_u/onnx`` and pin Vela 5.2.0's estimates for them.

Each network is written twice with the same float weights: in torch, exported to ONNX and quantized by
``onnxruntime.quantization.quantize_static`` (QDQ, int8 activations, per-channel int8 weights), and in
Keras (the same layers in NHWC, a Permute where torch flattens NCHW), converted by TensorFlow Lite's
converter to full int8 (float input and output, as the QDQ model has). hwsim's timing of the ONNX file on
an Ethos-U device (through :mod:`hwsim.workload.as_tflite`) is then compared with its timing of the
TFLite file and with what Vela itself says of the TFLite file (``--vela``: stored per target in
``vela_5.2.0.json``, layers by TFLite operator index).

Usage (torch, onnxruntime and tensorflow installed; Vela in its own venv)::

    python benchmarks/build_onnx_pairs.py [--vela /work/peers/vela-venv/bin/vela]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "ethos_u" / "onnx"
TARGETS = [
    ("ethos-u55-128", "Ethos_U55_High_End_Embedded", "Shared_Sram"),
    ("ethos-u65-256", "Ethos_U65_Client_Server", "Dedicated_Sram_384KB"),
]


def residual_cnn():
    """Conv, max pool, depthwise, pointwise, a residual Add (which ONNX Runtime leaves in float), global
    average pool, Flatten, Gemm, Softmax."""
    import tensorflow as tf
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.pool = nn.Conv2d(3, 16, 3, padding=1), nn.MaxPool2d(2)
            self.dw, self.pw = nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.Conv2d(16, 32, 1)
            self.c3, self.fc = nn.Conv2d(32, 32, 3, padding=1), nn.Linear(32, 10)

        def forward(self, x):
            x = self.pool(torch.relu(self.c1(x)))
            y = torch.relu(self.pw(torch.relu(self.dw(x))))
            z = torch.relu(self.c3(y) + y)
            return torch.softmax(self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(z, 1), 1)), -1)

    torch.manual_seed(0)
    net = Net().eval()
    k = tf.keras.layers
    inp = tf.keras.Input((32, 32, 3), batch_size=1)
    c1, dw = (
        k.Conv2D(16, 3, padding="same", activation="relu"),
        k.DepthwiseConv2D(3, padding="same", activation="relu"),
    )
    pw, c3, fc = k.Conv2D(32, 1, activation="relu"), k.Conv2D(32, 3, padding="same"), k.Dense(10)
    y = pw(dw(k.MaxPool2D(2)(c1(inp))))
    z = k.ReLU()(k.Add()([c3(y), y]))
    model = tf.keras.Model(inp, k.Softmax()(fc(k.GlobalAveragePooling2D()(z))))
    _copy(net, {c1: net.c1, dw: net.dw, pw: net.pw, c3: net.c3, fc: net.fc})
    return net, model


def strided_flatten():
    """A stride-2 convolution whose ONNX pads are not TFLite's SAME (Keras: ZeroPadding2D, a PAD Vela folds
    into the convolution), a Softmax over the channels of a feature map, and a Flatten of a 16x16x16 map
    in NCHW order (Keras: Permute, then Flatten: a TRANSPOSE and a RESHAPE) into a Gemm."""
    import tensorflow as tf
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.dw = (
                nn.Conv2d(3, 8, 3, stride=2, padding=1),
                nn.Conv2d(8, 8, 3, padding=1, groups=8),
            )
            self.pw, self.fc = nn.Conv2d(8, 16, 1), nn.Linear(16 * 16 * 16, 10)

        def forward(self, x):
            x = torch.softmax(self.pw(torch.relu(self.dw(torch.relu(self.c1(x))))), 1)
            return self.fc(torch.flatten(x, 1))

    torch.manual_seed(1)
    net = Net().eval()
    k = tf.keras.layers
    inp = tf.keras.Input((32, 32, 3), batch_size=1)
    c1, dw = (
        k.Conv2D(8, 3, strides=2, activation="relu"),
        k.DepthwiseConv2D(3, padding="same", activation="relu"),
    )
    pw, fc = k.Conv2D(16, 1), k.Dense(10)
    x = k.Softmax(-1)(pw(dw(c1(k.ZeroPadding2D(1)(inp)))))
    model = tf.keras.Model(inp, fc(k.Flatten()(k.Permute((3, 1, 2))(x))))
    _copy(net, {c1: net.c1, dw: net.dw, pw: net.pw, fc: net.fc})
    return net, model


NETWORKS = {"residual_cnn": residual_cnn, "strided_flatten": strided_flatten}


def _copy(net, layers: dict) -> None:
    """Torch parameters into the Keras twin layers (OIHW -> HWIO, depthwise -> HW C 1, Linear transposed)."""
    for keras_layer, m in layers.items():
        w, b = m.weight.detach().numpy(), m.bias.detach().numpy()
        if w.ndim == 2:
            w = w.T
        elif m.groups > 1:
            w = w.transpose(2, 3, 0, 1)
        else:
            w = w.transpose(2, 3, 1, 0)
        keras_layer.set_weights([w, b])


def build(name: str) -> tuple[Path, Path]:
    """Write ``OUT/<name>.onnx`` (QDQ) and ``OUT/<name>.tflite`` (full int8); check the twins agree in
    float."""
    import tensorflow as tf
    import torch
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    net, model = NETWORKS[name]()
    calib = np.random.default_rng(0).standard_normal((16, 3, 32, 32)).astype(np.float32)
    gap = np.abs(
        net(torch.from_numpy(calib[:2])).detach().numpy() - model(calib[:2].transpose(0, 2, 3, 1)).numpy()
    )
    assert gap.max() < 1e-4, f"{name}: the torch and Keras twins differ by {gap.max()}"
    onnx_path, tflite_path = OUT / f"{name}.onnx", OUT / f"{name}.tflite"
    with tempfile.TemporaryDirectory() as tmp:
        f32 = Path(tmp) / "f32.onnx"
        torch.onnx.export(
            net,
            torch.from_numpy(calib[:1]),
            str(f32),
            input_names=["x"],
            output_names=["y"],
            opset_version=17,
            dynamo=False,
        )

        class Reader(CalibrationDataReader):
            def __init__(self):
                self.data = iter([{"x": calib[i : i + 1]} for i in range(len(calib))])

            def get_next(self):
                return next(self.data, None)

        quantize_static(
            str(f32),
            str(onnx_path),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
        )
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: (
        [calib[i : i + 1].transpose(0, 2, 3, 1)] for i in range(len(calib))
    )
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    tflite_path.write_bytes(conv.convert())
    return onnx_path, tflite_path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vela", help="pin Vela's estimates of the TFLite files (the vela executable)")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    pinned: dict = {}
    for name in NETWORKS:
        _, tflite_path = build(name)
        print(f"wrote {name}.onnx and {name}.tflite")
        if not args.vela:
            continue
        from benchmarks.bench_ethos_u import run_vela, vela_results

        with tempfile.TemporaryDirectory() as tmp:
            for target in TARGETS:
                ms, layers, cpu, npu = vela_results(
                    run_vela(args.vela, tflite_path, target, Path(tmp) / ".".join(target))
                )
                pinned.setdefault(name, {})[".".join(target)] = {
                    "inference_ms": ms,
                    "cycles": sum(layers.values()),
                    "cpu_ops": cpu,
                    "npu_ops": npu,
                    "layers": {str(k): v for k, v in sorted(layers.items())},
                }
    if pinned:
        (OUT / "vela_5.2.0.json").write_text(json.dumps(pinned, indent=1, sort_keys=True) + "\n")
        print(f"wrote {OUT / 'vela_5.2.0.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
