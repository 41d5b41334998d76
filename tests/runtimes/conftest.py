"""Helpers for tests against live reference runtimes.

A missing runtime skips its tests on a developer machine, but fails them under CI (CI=true), where the
bit-exactness tests must really run.
"""

import importlib
import os
from pathlib import Path
from typing import Callable

import numpy as np
import pytest


def require(module: str):
    """Import ``module`` or skip (locally) / fail (in CI) with the reason."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        if os.environ.get("CI"):
            pytest.fail(f"reference runtime {module!r} is not installed in CI: {exc}")
        pytest.skip(f"reference runtime {module!r} is not installed: {exc}")


#: ONNX Runtime's quantization forms the ONNX tests cover: QOperator/QDQ x uint8/int8 activations
ONNX_FORMS = [f"{f}-{a}" for f in ("QOperator", "QDQ") for a in ("QUInt8", "QInt8")]


def quantize_onnx_four_ways(src: Path, stem: str, sample: Callable[[np.random.Generator], np.ndarray]) -> dict:
    """``src`` (a float ONNX model with input "x") quantized by onnxruntime.quantization in every form of
    ONNX_FORMS, int8 per-channel weights, calibrated on 8 inputs drawn by ``sample`` (seeded): key
    "{stem}-{form}" -> the path written beside ``src``."""
    require("onnxruntime")
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            rng = np.random.default_rng(1)
            self.data = iter([{"x": sample(rng)} for _ in range(8)])

        def get_next(self):
            return next(self.data, None)

    paths = {}
    for form in ONNX_FORMS:
        fmt, act = form.split("-")
        paths[f"{stem}-{form}"] = src.parent / f"{stem}-{form}.onnx"
        quantize_static(str(src), str(paths[f"{stem}-{form}"]), Reader(), quant_format=QuantFormat[fmt],
                        activation_type=QuantType[act], weight_type=QuantType.QInt8, per_channel=True)
    return paths
