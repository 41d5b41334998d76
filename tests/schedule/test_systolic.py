"""Closed-form fold cycles against hand-computed values and against numbers SCALE-Sim 3.0.0 reported."""

from __future__ import annotations

import pytest

from hwsim.schedule.systolic import DATAFLOWS, Gemm, scalesim_reported_cycles

# Three layers run through SCALE-Sim 3.0.0 (CALC bandwidth mode) on a 4x5 array, "Total Cycles" of
# COMPUTE_REPORT.csv: c1 = 10x10 IFMAP, 3x3x3 filters, 7 filters, stride 1 (P=64, W=27, K=7);
# c2 = 9x9, 3x3x2, 3 filters, stride 2 (P=16, W=18, K=3); dw_DP = 10x10, 3x3, 4 channels, depthwise (SCALE-Sim
# runs 4 one-channel layers of P=64, W=9, K=1, each reported as one layer).
SCALESIM_4x5 = {
    "output_stationary": (1087, 99, 255),
    "weight_stationary": (1049, 134, 224),
    "input_stationary": (1637, 279, 467),
}
LAYERS = (Gemm(64, 7, 9, 3), Gemm(16, 3, 9, 2), Gemm(64, 1, 9, 1))


@pytest.mark.parametrize("name", sorted(SCALESIM_4x5))
def test_matches_scalesim_reported_cycles(name):
    """Each layer's cycles, less one, equal SCALE-Sim's reported Total Cycles on a 4x5 array."""
    df = DATAFLOWS.get(name)
    got = tuple(scalesim_reported_cycles(df.layer_cycles(g, 4, 5)) for g in LAYERS)
    assert got == SCALESIM_4x5[name]


def test_output_stationary_by_hand():
    """OS: ceil(P/R) * ceil(K/C) folds of W + R + C - 2 cycles: 16 * 2 * (27 + 4 + 5 - 2) = 1088."""
    assert DATAFLOWS.get("output_stationary").layer_cycles(Gemm(64, 7, 9, 3), 4, 5) == 16 * 2 * 34


def test_weight_stationary_by_hand():
    """WS: ceil(W/R) * ceil(K/C) folds of 2R + C + P - 2 cycles: 7 * 2 * (8 + 5 + 64 - 2) = 1050."""
    assert DATAFLOWS.get("weight_stationary").layer_cycles(Gemm(64, 7, 9, 3), 4, 5) == 7 * 2 * 75


def test_input_stationary_by_hand():
    """IS: ceil(W/R) * ceil(P/C) folds of 2R + C + K - 2 cycles: 7 * 13 * (8 + 5 + 7 - 2) = 1638."""
    assert DATAFLOWS.get("input_stationary").layer_cycles(Gemm(64, 7, 9, 3), 4, 5) == 7 * 13 * 18


def test_groups_multiply_cycles():
    """A depthwise layer run SCALE-Sim's way costs one single-channel layer per channel."""
    df = DATAFLOWS.get("output_stationary")
    assert df.layer_cycles(Gemm(64, 1, 9, 1, groups=4), 4, 5) == 4 * df.layer_cycles(Gemm(64, 1, 9, 1), 4, 5)


def test_dot_product_by_hand():
    """Dot product: ceil(depth/R) * ceil(K/C) * taps * ceil(P/lanes), no fill or drain: 2 * 2 * 9 * 32."""
    assert DATAFLOWS.get("dot_product").layer_cycles(Gemm(64, 16, 9, 12), 8, 8, spatial_lanes=2) == 2 * 2 * 9 * 32
