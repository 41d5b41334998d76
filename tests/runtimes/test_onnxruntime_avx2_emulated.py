"""ONNX Runtime's AVX2 (no VNNI) u8 x s8 arithmetic checked on a VNNI/AMX host, under emulation.

``test_onnxruntime_golden.py`` checks ONNX Runtime against hwsim's semantics for the host's CPU, so a VNNI
machine alone would never check the AVX2 kernels (pairs of products saturated to int16). Here a few of its
cases, chosen to cover every kernel whose AVX2 arithmetic differs (MatMulInteger, QLinearMatMul, QLinearConv
plain, grouped and with a depth multiplier, ConvInteger and the depthwise kernel that stay exact) run with
ONNX Runtime under ``qemu-x86_64 -cpu EPYC-v1`` (AMD Zen1's features) against hwsim as it is on an AVX2
host. On an AVX2-only host the golden module already runs all of them natively, so this module skips there
unless ``HWSIM_TEST_EMULATED_AVX2=1`` (to check the emulation itself against the native run).
"""

import inspect
import os

import pytest

import hwsim.numerics.semantics
from hwsim.numerics.cpu import has_int8_dot_product
from tests.runtimes import test_onnxruntime_golden as golden


class EmulatedRuntimes(golden.Runtimes):
    """The golden module's runtimes with ONNX Runtime's sessions run by the emulated AVX2 worker."""

    def __init__(self, worker) -> None:
        super().__init__()
        self.worker = worker

    def run_ort(self, model, feeds: dict) -> list:
        return self.worker.run(model.SerializeToString(), feeds)


@pytest.fixture
def avx2_host(avx2_onnxruntime, monkeypatch) -> EmulatedRuntimes:
    """Runtimes whose ONNX Runtime is the emulated AVX2 one, with hwsim's host semantics set to AVX2."""
    monkeypatch.setattr(hwsim.numerics.semantics, "has_int8_dot_product", lambda: False)
    monkeypatch.setattr(golden, "has_int8_dot_product", lambda: False)
    return EmulatedRuntimes(avx2_onnxruntime)


def _case(test, **params):
    name = test.__name__.removeprefix("test_")
    return pytest.param(test, params, id="-".join([name, *map(str, params.values())]))


CASES = [
    *[
        _case(golden.test_saturating_pairs_follow_the_host, op=op)
        for op in ("MatMulInteger", "ConvInteger", "QLinearMatMul", "QLinearConv")
    ],
    _case(golden.test_matmul_integer, combo="u8s8", depth=7, zp_case="extreme"),
    _case(golden.test_matmul_integer, combo="u8s8", depth=4096, zp_case="per_column"),
    _case(golden.test_qlinear_matmul, combo="u8s8", per_channel=True, depth=255),
    _case(golden.test_conv_integer, combo="u8s8", geometry="5x3_asym"),
    *[
        _case(golden.test_qlinear_conv, combo="u8s8", geometry=g, per_channel=True)
        for g in ("3x3_same", "5x3_asym", "group4", "depthwise", "depthwise_x2")
    ],
    _case(golden.test_qlinear_conv_depthwise_stays_exact_under_avx2_semantics),
    _case(golden.test_qlinear_conv_depthwise_multiplier_2_is_a_grouped_gemm),
]


@pytest.mark.skipif(
    not has_int8_dot_product() and os.environ.get("HWSIM_TEST_EMULATED_AVX2") != "1",
    reason="an AVX2-only host: test_onnxruntime_golden.py runs these cases natively",
)
@pytest.mark.parametrize(("test", "params"), CASES)
def test_golden_case_under_emulated_avx2(test, params, avx2_host, rng):
    """The golden case passes with ONNX Runtime on an emulated AVX2 CPU and hwsim's AVX2 semantics."""
    if "rng" in inspect.signature(test).parameters:
        params = {**params, "rng": rng}
    test(avx2_host, **params)
