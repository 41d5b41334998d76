"""Train a MobileNetV3-style net on the digits, export it as a user would (seeded, CPU, offline).

    python workloads/train_digits_mobilenet.py

Writes ``workloads/digits_mobilenet.onnx`` (float32, one file with its weights, a dynamic batch axis,
exported by ``torch.onnx.export`` with its default exporter, which needs the ``onnxscript`` package),
``workloads/digits_mobilenet.json`` (architecture, split, seed, epochs, float test accuracy) and the data
an experiment reads as a user's would be: ``workloads/digits_calibration.npz`` (array ``x``: the first 256
training samples) and ``workloads/digits_test.npz`` (``x`` and ``y``: the 540 test samples), split by
``hwsim.accuracy.datasets.digits_split`` (inputs NCHW [N, 1, 8, 8], pixels / 16).

The net is larger than the built-in digits nets and uses what MobileNetV3 exports bring: a nearest
``Resize`` (8x8 -> 16x16, in the model), hard-swish, inverted residual blocks with depthwise convolutions,
ReLU6 (``Clip``), squeeze-and-excite (``ReduceMean`` over H and W, hard-sigmoid, ``Mul``), residual
``Add`` and a ``ReduceMean`` head (torch's ``x.mean((2, 3))``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from hwsim.accuracy.datasets import digits_split  # noqa: E402

SEED = 0
EPOCHS = 40
BATCH = 32


class SqueezeExcite(nn.Module):
    """MobileNetV3's channel attention: mean over H, W -> 1x1 conv, ReLU -> 1x1 conv, hard-sigmoid, scale."""

    def __init__(self, channels: int):
        super().__init__()
        self.reduce = nn.Conv2d(channels, channels // 4, 1)
        self.expand = nn.Conv2d(channels // 4, channels, 1)

    def forward(self, x):
        s = x.mean((2, 3), keepdim=True)
        return x * nn.functional.hardsigmoid(self.expand(torch.relu(self.reduce(s))))


class InvertedResidual(nn.Module):
    """Expand 1x1, depthwise 3x3, optional squeeze-excite, project 1x1; residual when shapes allow."""

    def __init__(self, cin: int, hidden: int, cout: int, stride: int, se: bool, act: type[nn.Module]):
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(cin, hidden, 1, bias=False),
            nn.BatchNorm2d(hidden),
            act(),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            act(),
            SqueezeExcite(hidden) if se else nn.Identity(),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        )
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.block(x)
        return x + y if self.residual else y


class DigitsMobileNet(nn.Module):
    """16x16 (upsampled in the model) -> stem -> four inverted residual blocks -> 1x1 head -> classifier."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.Hardswish())
        self.blocks = nn.Sequential(
            InvertedResidual(16, 32, 24, 2, True, nn.ReLU6),
            InvertedResidual(24, 64, 24, 1, True, nn.Hardswish),
            InvertedResidual(24, 72, 40, 2, False, nn.Hardswish),
            InvertedResidual(40, 120, 40, 1, True, nn.Hardswish),
        )
        self.head = nn.Sequential(nn.Conv2d(40, 96, 1, bias=False), nn.BatchNorm2d(96), nn.Hardswish())
        self.classifier = nn.Linear(96, 10)

    def forward(self, x):
        x = nn.functional.interpolate(x, scale_factor=2, mode="nearest")
        x = self.head(self.blocks(self.stem(x)))
        return self.classifier(x.mean((2, 3)))


def main() -> dict:
    """Train, export the model and the data, and return the record."""
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    tr, te, cal = digits_split("train"), digits_split("test"), digits_split("calibration")
    model = DigitsMobileNet()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, EPOCHS)
    x, y = torch.from_numpy(tr.x), torch.from_numpy(tr.y)
    gen = torch.Generator().manual_seed(SEED)
    for _ in range(EPOCHS):
        model.train()
        for idx in torch.randperm(len(x), generator=gen).split(BATCH):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
        sched.step()
    model.eval()
    with torch.no_grad():
        accuracy = float((model(torch.from_numpy(te.x)).argmax(1).numpy() == te.y).mean())
    path = HERE / "digits_mobilenet.onnx"
    torch.onnx.export(
        model,
        (torch.from_numpy(te.x[:1]),),
        str(path),
        input_names=["x"],
        output_names=["logits"],
        dynamic_shapes=({0: torch.export.Dim("batch")},),
        external_data=False,
    )  # one file, weights included
    np.savez_compressed(HERE / "digits_calibration.npz", x=cal.x)
    np.savez_compressed(HERE / "digits_test.npz", x=te.x, y=te.y)
    params = sum(p.numel() for p in model.parameters())
    record = {
        "model": path.name,
        "architecture": "MobileNetV3-style (see train_digits_mobilenet.py)",
        "parameters": params,
        "data": "UCI digits as scikit-learn bundles them (workloads/digits.npz), pixels / 16",
        "split": "hwsim.accuracy.datasets.digits_split: 1257 train, 540 test; calibration = first 256 train",
        "seed": SEED,
        "epochs": EPOCHS,
        "batch": BATCH,
        "optimizer": "Adam lr 3e-3, wd 1e-4, cosine",
        "torch": torch.__version__,
        "exporter": "torch.onnx.export (default, torch.export-based)",
        "float_test_top1": accuracy,
    }
    (HERE / "digits_mobilenet.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
