"""The whole-model golden tests again with the SIMD kernels off (HWSIM_SIMD=off).

On x86 every int8 GEMM of the main run goes through hwsim's SIMD kernel (VNNI bytes or AVX2 int16 pairs);
the float32 BLAS engine, which other CPUs (and numba's portable targets) use instead, must match the
runtimes just as exactly. Where the SIMD kernel cannot run the main run already exercises that engine, so
this test skips.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hwsim.numerics import simd

HERE = Path(__file__).resolve().parent


# the int8 models under TensorFlow's three resolvers and the signed QDQ ONNX ones: every kernel
# family the float engine serves (its 16x8 chunks are checked at their extremes in test_mac.py, and LiteRT
# runs the same kernels as TensorFlow)
CASES = (
    "bit_exact_under_every_resolver and tflite- and not 16x8 or bit_exact_against_onnxruntime and QDQ-QInt8"
)


@pytest.mark.skipif(
    not simd.available(), reason="no SIMD kernel here: the main run already uses float32 BLAS"
)
def test_model_goldens_pass_on_the_float_engine():
    """The int8 TFLite and ONNX whole-model tests pass with every GEMM on float32 BLAS tiles."""
    env = dict(os.environ, HWSIM_SIMD="off")
    tests = [str(HERE / "test_tflite_models.py"), str(HERE / "test_onnx_models.py")]
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider", "-k", CASES, *tests],
        cwd=HERE.parents[1],
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "9 passed" in run.stdout and " failed" not in run.stdout
