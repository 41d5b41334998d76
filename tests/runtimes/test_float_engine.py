"""The float32 BLAS engine against the SIMD kernels, on whole models: every tensor equal.

On x86 every int8 GEMM of the main run goes through hwsim's SIMD kernel (VNNI bytes or AVX2 int16 pairs),
which the whole-model tests hold to the real interpreters; the float32 BLAS engine, which other CPUs (and
numba's portable targets, or ``HWSIM_SIMD=off``) use instead, must give the same codes. Equal to the SIMD
run, tensor for tensor, it is as exact as that run is against TFLite's interpreters. Where no SIMD kernel
runs the main run already exercises the BLAS engine, so this test skips.
"""

import numpy as np
import pytest

from hwsim.importers import load_model
from hwsim.numerics import simd
from hwsim.runtime.execute import run_graph
from hwsim.verify.compare import TARGETS, random_inputs
from tests.runtimes.conftest import stored_tflite
from tests.runtimes.test_tflite_models import KEYS


def _tensors(path, semantics: str, engine: str, monkeypatch) -> list[dict[str, np.ndarray]]:
    """Every tensor of the model at ``path`` on two random samples, its layers prepared under ``engine``."""
    if engine:
        monkeypatch.setenv("HWSIM_SIMD", engine)
    else:
        monkeypatch.delenv("HWSIM_SIMD", raising=False)
    graph = load_model(path)  # a fresh graph: its layers are prepared for the engine set now
    samples = random_inputs(graph, 2, seed=3)
    return [run_graph(graph, [x[s] for x in samples], semantics) for s in range(2)]


@pytest.mark.skipif(
    not simd.available(), reason="no SIMD kernel here: the main run already uses float32 BLAS"
)
@pytest.mark.parametrize("name", KEYS)
def test_float_engine_equals_the_simd_kernels(name, monkeypatch):
    """The int8 and 16x8 TFLite models give the same tensors with every GEMM on float32 BLAS tiles as on the
    SIMD kernel, under TensorFlow's three resolvers' arithmetic."""
    path = stored_tflite("models", [name])[name]
    for semantics in TARGETS["tflite"]:
        fast = _tensors(path, semantics, "", monkeypatch)
        blas = _tensors(path, semantics, "off", monkeypatch)
        for fast_run, blas_run in zip(fast, blas):
            assert fast_run.keys() == blas_run.keys()
            for tensor, value in fast_run.items():
                np.testing.assert_array_equal(
                    blas_run[tensor], value, err_msg=f"{name} {semantics}: {tensor}"
                )
