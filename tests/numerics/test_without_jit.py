"""The numerics tests again with NUMBA_DISABLE_JIT=1: the kernels' Python bodies must agree too.

numba silently widens integer scalars, and numpy scalars wrap instead; both modes passing shows that no
kernel leaves a register's width to a dtype (STYLE section 4).
"""

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


#: not run again: they read the kernels' source (rules), test numba's compiled-code cache or its warm-up
#: (which runs its one JIT-free check itself), not arithmetic
JIT_INDEPENDENT = {Path(__file__).name, "test_kernel_rules.py", "test_jit_cache.py", "test_warmup.py"}


def test_numerics_suite_passes_with_jit_disabled():
    """Every other numerics test that runs kernels passes with the JIT turned off."""
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    tests = sorted(str(p) for p in HERE.glob("test_*.py") if p.name not in JIT_INDEPENDENT)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider", *tests],
        cwd=HERE.parents[1],
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
