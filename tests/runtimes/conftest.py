"""Helpers for tests against live reference runtimes.

A missing runtime skips its tests on a developer machine, but fails them under CI (CI=true), where the
bit-exactness tests must really run.
"""

import importlib
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import pytest


#: the .tflite models the tests read, made once by TFLite's converter (``benchmarks/build_test_models.py``)
STORED_TFLITE = Path(__file__).parents[1] / "data" / "tflite"


def stored_tflite(family: str, names) -> dict[str, Path]:
    """``name -> tests/data/tflite/<family>/<name>.tflite`` for each of ``names``; fails naming the command
    that writes the ones missing (a new or renamed model)."""
    paths = {name: STORED_TFLITE / family / f"{name}.tflite" for name in names}
    missing = sorted(name for name, path in paths.items() if not path.exists())
    if missing:
        pytest.fail(
            f"tests/data/tflite/{family} lacks {missing}: run python benchmarks/build_test_models.py {family}"
        )
    return paths


def require(module: str):
    """Import ``module`` or skip (locally) / fail (in CI) with the reason."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        if os.environ.get("CI"):
            pytest.fail(f"reference runtime {module!r} is not installed in CI: {exc}")
        pytest.skip(f"reference runtime {module!r} is not installed: {exc}")


def convert_full_integer(tf, model, calib: list, sixteen: bool = False) -> bytes:
    """``model`` (Keras) through TFLite's converter, full-integer, calibrated on the arrays ``calib``: int8
    (``TFLITE_BUILTINS_INT8``, int8 input and output), or with ``sixteen`` 16x8 (int16 activations and
    input and output, int8 weights). The build script's families of whole models are made this way."""
    ops, io_type = (
        (tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8, tf.int16)
        if sixteen
        else (tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.int8)
    )
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([c] for c in calib)
    converter.target_spec.supported_ops = [ops]
    converter.inference_input_type = converter.inference_output_type = io_type
    return converter.convert()


#: the TFLite interpreters hwsim verifies against (``--against`` target -> the module that provides it)
TFLITE_INTERPRETERS = {"tflite": "tensorflow", "litert": "ai_edge_litert"}


@pytest.fixture(params=list(TFLITE_INTERPRETERS))
def tflite_interpreter(request) -> str:
    """``tflite`` (TensorFlow's interpreter) and ``litert`` (LiteRT's), each where installed (both in CI):
    whole-model tests run against both, each under its own semantics (``TARGETS[tflite_interpreter]``)."""
    require(TFLITE_INTERPRETERS[request.param])
    return request.param


class EmulatedAvx2OnnxRuntime:
    """ONNX Runtime running under qemu's AVX2-only EPYC-v1 CPU (AMD Zen1's features, no VNNI): its u8 x s8
    kernels pair-saturate as on a real AVX2 machine, whatever CPU runs the tests (``ort_worker.py``)."""

    def __init__(self, qemu: str, log: Path) -> None:
        self.log = log
        worker = Path(__file__).with_name("ort_worker.py")
        self.process = subprocess.Popen(
            [qemu, "-cpu", "EPYC-v1", sys.executable, str(worker)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log.open("wb"),
        )

    def run(self, model: bytes, feeds: dict, levels=("default", "disable_all")) -> list[np.ndarray]:
        """The first output of ``model`` (serialized) on ``feeds`` under each graph optimization level."""
        try:
            pickle.dump((model, feeds, list(levels)), self.process.stdin)
            self.process.stdin.flush()
            status, value = pickle.load(self.process.stdout)
        except (OSError, EOFError) as exc:
            pytest.fail(f"the emulated ONNX Runtime worker died ({exc}): {self.log.read_text()[-2000:]}")
        assert status == "ok", value
        return value

    def close(self) -> None:
        pickle.dump(None, self.process.stdin)
        self.process.stdin.close()
        self.process.wait(timeout=60)


@pytest.fixture(scope="session")
def avx2_onnxruntime(tmp_path_factory):
    """One emulated AVX2 ONNX Runtime worker for the session, or a skip (locally) / failure (CI) without
    qemu-user (``apt-get install qemu-user``; ``.ci/run`` installs it)."""
    require("onnxruntime")
    qemu = shutil.which("qemu-x86_64")
    if qemu is None:
        if os.environ.get("CI"):
            pytest.fail("qemu-user is not installed in CI")
        pytest.skip("qemu-user is not installed (apt-get install qemu-user)")
    worker = EmulatedAvx2OnnxRuntime(qemu, tmp_path_factory.mktemp("qemu") / "stderr.log")
    yield worker
    worker.close()


#: ONNX Runtime's quantization forms the ONNX tests cover: QOperator/QDQ x uint8/int8 activations
ONNX_FORMS = [f"{f}-{a}" for f in ("QOperator", "QDQ") for a in ("QUInt8", "QInt8")]


def quantize_onnx_four_ways(
    src: Path, stem: str, sample: Callable[[np.random.Generator], np.ndarray]
) -> dict:
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
        quantize_static(
            str(src),
            str(paths[f"{stem}-{form}"]),
            Reader(),
            quant_format=QuantFormat[fmt],
            activation_type=QuantType[act],
            weight_type=QuantType.QInt8,
            per_channel=True,
        )
    return paths
