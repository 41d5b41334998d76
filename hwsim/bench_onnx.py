"""The int8 ONNX MobileNetV2 of ``hwsim bench infer``, made as an ONNX Runtime user makes one.

No TF-to-ONNX converter is installed, so the TFLite model cannot be carried over; the same architecture
(keras' MobileNetV2, alpha 1.0: a 32-channel stride-2 stem, 17 inverted-residual blocks, a 1280-channel
last conv, global average pool, a 1000-class classifier and softmax) is written here in torch, exported by
``torch.onnx.export`` and quantized by ``onnxruntime.quantization.quantize_static``. Weights are random
(seeded; timing does not depend on them), He-initialised over each layer's fan-in, so that activations keep
their scale through the 17 blocks and the softmax output is not all zero (torchvision's fan-out
initialisation shrinks a depthwise conv's output by its channel count: the features fell to 1e-9 and the
quantized output to its zero point, and a bit-exact check of such an output would check nothing).
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import warnings

import numpy as np
import torch
from torch import nn

#: (expansion, output channels, repeats, first stride) of the inverted-residual stages, as in keras.
STAGES = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def _conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, relu6: bool = True):
    layers = [
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    return nn.Sequential(*layers, nn.ReLU6()) if relu6 else nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """Expand (1x1, skipped at expansion 1), depthwise 3x3, linear projection; a residual add where the
    block keeps its shape."""

    def __init__(self, cin: int, cout: int, stride: int, expansion: int):
        super().__init__()
        hidden = cin * expansion
        expand = [_conv_bn(cin, hidden, 1)] if expansion > 1 else []
        self.body = nn.Sequential(
            *expand, _conv_bn(hidden, hidden, 3, stride, hidden), _conv_bn(hidden, cout, 1, relu6=False)
        )
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.body(x)
        return x + y if self.residual else y


class MobileNetV2(nn.Module):
    """MobileNetV2 at width 1.0 with a softmax classifier (keras' ``classifier_activation``)."""

    def __init__(self, classes: int = 1000):
        super().__init__()
        layers, channels = [_conv_bn(3, 32, 3, 2)], 32
        for expansion, cout, repeats, stride in STAGES:
            for i in range(repeats):
                layers.append(InvertedResidual(channels, cout, stride if i == 0 else 1, expansion))
                channels = cout
        self.features = nn.Sequential(*layers, _conv_bn(channels, 1280, 1))
        self.classifier = nn.Linear(1280, classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)
        nn.init.zeros_(self.classifier.bias)

    def forward(self, x):
        pooled = nn.functional.adaptive_avg_pool2d(self.features(x), 1)
        return torch.softmax(self.classifier(torch.flatten(pooled, 1)), 1)


def build_mobilenet_v2_onnx(path, size: int = 224, calibration: int = 4) -> None:
    """Write a QDQ int8 MobileNetV2 (``size`` x ``size``, NCHW float32 input, a dynamic batch axis) to
    ``path``: int8 activations and per-channel int8 weights, calibrated by min-max on ``calibration`` seeded
    uniform [-1, 1] images, ``quantize_static``'s defaults otherwise.

    The float model goes through ONNX Runtime's recommended pre-processing (``quant_pre_process``: shape
    inference, constant folding) first. It is exported by torch's TorchScript exporter (``dynamo=False``):
    the default dynamo exporter writes the global average pool as a ReduceMean over axes [2, 3], which
    hwsim's ONNX importer does not take, while this one writes GlobalAveragePool + Flatten, the graph of
    torchvision's and the ONNX model zoo's MobileNetV2. Both exporters fold the batch norms into the convs.
    """
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Images(CalibrationDataReader):
        def __init__(self):
            rng = np.random.default_rng(0)
            shape = (1, 3, size, size)
            self.images = iter(
                [{"input": rng.uniform(-1, 1, shape).astype(np.float32)} for _ in range(calibration)]
            )

        def get_next(self):
            return next(self.images, None)

    torch.manual_seed(0)
    model = MobileNetV2().eval()
    with (
        tempfile.TemporaryDirectory() as tmp,
        warnings.catch_warnings(),
        contextlib.redirect_stdout(io.StringIO()),
    ):
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        exported, prepared = os.path.join(tmp, "float.onnx"), os.path.join(tmp, "prepared.onnx")
        torch.onnx.export(
            model,
            (torch.zeros(1, 3, size, size),),
            exported,
            input_names=["input"],
            output_names=["output"],
            dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
        quant_pre_process(exported, prepared)
        quantize_static(
            prepared,
            str(path),
            Images(),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
        )
