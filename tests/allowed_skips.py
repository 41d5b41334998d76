"""The skips a CI run may have: each names the CPU feature or runtime that runs the test.

Under ``CI=true`` a skipped test is a check nobody ran, so ``tests/conftest.py`` fails the run on any skip
not matched here (by node id pattern, fnmatch, and by words of its skip reason) and prints it. A missing
Python package never belongs here: ``pip install ".[all]"`` installs every one the suite needs.
"""

from fnmatch import fnmatchcase

#: (node id pattern, words of the skip reason, what runs the test)
ALLOWED = [
    (
        "tests/numerics/test_fused.py::test_simd_kernel_*vnni*",
        "no AVX-512 VNNI here",
        "a CPU with AVX-512 VNNI: hwsim's own vpdpbusd byte kernel (an AVX2-only CPU never calls it)",
    ),
    (
        "tests/numerics/test_fused.py::*",
        "no AVX2 here (or no JIT)",
        "any x86 CPU with the JIT on: the AVX2 SIMD kernels are LLVM intrinsics, which the JIT-free pass of "
        "tests/numerics/test_without_jit.py cannot run (the main run tests them)",
    ),
    (
        "tests/runtimes/test_torch_golden.py::test_linear_saturating_pairs_exact_on_vnni*",
        "lacks VNNI/AMX",
        "a CPU with VNNI or AMX: fbgemm's exact u8 x s8 (qemu cannot emulate those instructions)",
    ),
    (
        "tests/runtimes/test_torch_float_bias.py::*-x86]",
        "runs symmetric weights on oneDNN",
        "an AVX2-only CPU: there torch's x86 engine is fbgemm; on VNNI CPUs it hands symmetric weights to "
        "oneDNN, whose float bias hwsim does not model (the fbgemm cases run on every CPU)",
    ),
    (
        "tests/runtimes/test_onnxruntime_avx2_emulated.py::*",
        "an AVX2-only host",
        "a CPU with VNNI or AMX: on an AVX2-only CPU test_onnxruntime_golden.py runs the same cases natively",
    ),
    (
        "tests/experiment/test_report.py::test_report_html_in_headless_chromium",
        "no headless Chromium",
        "Debian's chromium-headless-shell (.ci/run installs it where apt-get works)",
    ),
    (
        "tests/experiment/test_report.py::test_report_html_script_parses",
        "node is not installed",
        "Node.js (node --check on the report's inline script)",
    ),
]


def allowed(nodeid: str, reason: str) -> bool:
    """True when a skip of ``nodeid`` with ``reason`` is one of ALLOWED."""
    return any(fnmatchcase(nodeid, pattern) and words in reason for pattern, words, _ in ALLOWED)
