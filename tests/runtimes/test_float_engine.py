"""The whole-model golden tests again with the VNNI byte kernel off (HWSIM_VNNI=0).

On a CPU with AVX-512 VNNI every int8 GEMM of the main run goes through hwsim's byte kernel; the float32
BLAS engine, which CPUs without VNNI (AMD Zen1, say) use instead, must match the runtimes just as exactly.
Where this CPU has no VNNI the main run already exercises that engine, so this test skips.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hwsim.numerics import vnni

HERE = Path(__file__).resolve().parent


@pytest.mark.skipif(
    not vnni.available(), reason="no VNNI byte kernel here: the main run already uses float32 BLAS"
)
def test_model_goldens_pass_on_the_float_engine():
    """The TFLite and ONNX whole-model tests pass with every GEMM on float32 BLAS tiles."""
    env = dict(os.environ, HWSIM_VNNI="0")
    tests = [str(HERE / "test_tflite_models.py"), str(HERE / "test_onnx_models.py")]
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider", *tests],
        cwd=HERE.parents[1],
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and " failed" not in run.stdout
