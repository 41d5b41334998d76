"""Train the built-in float workloads on scikit-learn's digits and export them to ONNX (seeded, CPU, offline).

    python workloads/train_digits.py            # all three
    python workloads/train_digits.py dsconv     # one of: cnn_bn, dsconv, mlp

Writes ``workloads/digits_<name>.onnx`` (float32, opset 13, BatchNormalization kept as its own node so
that hwsim's batch-norm folding has something to fold) and ``workloads/digits_<name>.json`` (split, seed,
epochs, float test accuracy). The split is ``hwsim.accuracy.datasets.digits_split``: 1,257 train, 540
test. Training is deterministic on one thread (torch.use_deterministic_algorithms); rerunning gives the
same weights on the same torch build.

The depthwise-separable net follows MobileNetV1's training practice of no weight decay on depthwise
filters ("very little or no weight decay on the depthwise filters since there are so few parameters in
them", Howard et al. 2017, section 4); like MobileNets, its folded depthwise filters end up with per-channel
ranges far apart, which is what breaks per-tensor quantization (Nagel et al., ICCV 2019, figure 2).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from hwsim.accuracy.datasets import digits_split  # noqa: E402

SEED = 0
EPOCHS = 60
BATCH = 32


def conv_bn(cin: int, cout: int, stride: int = 1, groups: int = 1, kernel: int = 3) -> list[nn.Module]:
    return [
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(),
    ]


def build(name: str) -> nn.Module:
    """The architecture called ``name``."""
    if name == "cnn_bn":
        return nn.Sequential(
            *conv_bn(1, 16),
            *conv_bn(16, 32, 2),
            *conv_bn(32, 32),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(32, 10),
        )
    if name == "dsconv":
        layers = conv_bn(1, 16)
        for cin, cout, stride in ((16, 32, 1), (32, 64, 2), (64, 64, 1)):
            layers += conv_bn(cin, cin, stride, groups=cin) + conv_bn(cin, cout, kernel=1)
        return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))
    if name == "mlp":
        return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))
    raise SystemExit(f"unknown model {name!r}; expected cnn_bn, dsconv or mlp")


def train(name: str) -> dict:
    """Train ``name``, export it, and return its record."""
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    layout = "flat" if name == "mlp" else "image"
    tr, te = digits_split("train", layout), digits_split("test", layout)
    model = build(name)
    depthwise = [
        p for m in model.modules() if isinstance(m, nn.Conv2d) and m.groups > 1 for p in m.parameters()
    ]
    dw_ids = {id(p) for p in depthwise}
    others = [p for p in model.parameters() if id(p) not in dw_ids]
    opt = torch.optim.AdamW(
        [{"params": others, "weight_decay": 1e-4}, {"params": depthwise, "weight_decay": 0.0}], lr=3e-3
    )
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
        acc = float((model(torch.from_numpy(te.x)).argmax(1).numpy() == te.y).mean())
    path = HERE / f"digits_{name}.onnx"
    torch.onnx.export(
        model,
        torch.from_numpy(te.x[:1]),
        str(path),
        input_names=["x"],
        output_names=["logits"],
        dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}},
        opset_version=13,
        training=torch.onnx.TrainingMode.PRESERVE,
        do_constant_folding=True,
        dynamo=False,
    )
    record = {
        "model": path.name,
        "data": "workloads/digits.npz (scikit-learn's load_digits), pixels / 16",
        "split": "hwsim.accuracy.datasets.digits_split: permutation from default_rng(0); "
        "1257 train, 540 test; calibration = first 256 train samples",
        "input_layout": layout,
        "seed": SEED,
        "epochs": EPOCHS,
        "batch": BATCH,
        "optimizer": "AdamW lr 3e-3, cosine, weight decay 1e-4 (0 on depthwise filters)",
        "torch": torch.__version__,
        "float_test_accuracy": round(acc, 6),
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    (HERE / f"digits_{name}.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


if __name__ == "__main__":
    for model_name in sys.argv[1:] or ["cnn_bn", "dsconv", "mlp"]:
        rec = train(model_name)
        print(
            f"{rec['model']}: float test accuracy {rec['float_test_accuracy']:.4f}, {rec['parameters']} "
            "params"
        )
