"""The time budget of the issue: calibration and evaluation of the default workload under 2 s.

Marked ``benchmark`` (excluded by default): run ``python -m pytest -m benchmark tests/accuracy -s``.
"""

import time

import pytest

from hwsim.accuracy.datasets import digits_split
from hwsim.accuracy.evaluate import evaluate
from hwsim.paths import data_dir
from hwsim.quant.convert import quantize_model
from hwsim.quant.recipe import PRESETS


@pytest.mark.benchmark
def test_default_workload_calibrates_and_evaluates_in_2s():
    """cnn_bn with int8_w_per_channel: calibration (256 samples) + float, fake-quant and integer runs of the
    540 test samples with per-layer statistics, best of 3 after one warm-up (JIT caches loaded)."""
    cal, test = digits_split("calibration").x, digits_split("test")
    path = data_dir("workloads") / "digits_cnn_bn.onnx"
    times = []
    for _ in range(4):
        t = time.perf_counter()
        qm = quantize_model(path, PRESETS["int8_w_per_channel"], cal)
        evaluate(qm, test.x, test.y)
        times.append(time.perf_counter() - t)
    print(f"\ncalibrate + evaluate: {min(times[1:]):.3f} s best, first (cold) {times[0]:.3f} s")
    assert min(times[1:]) < 2.0
