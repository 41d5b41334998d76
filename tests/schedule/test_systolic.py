"""Closed-form fold cycles against hand-computed values and against numbers SCALE-Sim 3.0.0 reported."""

from __future__ import annotations

import pytest

from hwsim.devices.model import load_device
from hwsim.errors import ConfigError
from hwsim.importers.yaml_layers import load_layers_yaml
from hwsim.schedule.simulate import simulate
from hwsim.schedule.systolic import DATAFLOWS, Gemm, pipelined_ws_cycles, scalesim_reported_cycles

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
    assert (
        DATAFLOWS.get("dot_product").layer_cycles(Gemm(64, 16, 9, 12), 8, 8, spatial_lanes=2)
        == 2 * 2 * 9 * 32
    )


def test_pipelined_weight_stationary_by_hand():
    """Double-buffered weights: 7 * 2 folds every max(P, R) = 64 cycles, plus 2R + C - 2 = 11 once."""
    g = Gemm(64, 7, 9, 3)
    per_fold, once = pipelined_ws_cycles(g, 4, 5)
    assert (per_fold, once) == (64, 11)
    short = Gemm(3, 7, 9, 3)  # P < R: the next fold's 4 weight rows take longer than 3 pixels stream
    assert pipelined_ws_cycles(short, 4, 5) == (4, 11)
    # one fold with P >= R costs what SCALE-Sim's fold costs
    one = Gemm(64, 5, 1, 4)
    assert sum(pipelined_ws_cycles(one, 4, 5)) == DATAFLOWS.get("weight_stationary").layer_cycles(one, 4, 5)


WS_DEVICE = """\
schema_version: 1
name: ws
clock_mhz: 100
mac_array:
  rows: 4
  columns: 5
  dataflow: weight_stationary
  weight_double_buffering: {flag}
  accumulator_bits: 32
  precisions: [{{weights_bits: 8, activations_bits: 8}}]
dma: {{engines: 1}}
memories:
  - {{name: dram, kind: off_chip, read_bandwidth_bytes_per_cycle: 64, write_bandwidth_bytes_per_cycle: 64,
     holds: [weights, inputs, outputs], homes: [weights, activations]}}
  - {{name: sram, kind: sram, size_bytes: 1048576, read_bandwidth_bytes_per_cycle: 64,
     write_bandwidth_bytes_per_cycle: 64, holds: [weights, inputs, outputs], homes: [weights, activations]}}
"""
CONV = """\
schema_version: 1
name: c
input: {shape: [1, 10, 10, 3], dtype: int8}
layers:
  - {name: c1, op: conv2d, out_channels: 7, kernel: 3}
"""


@pytest.mark.parametrize("flag, cycles", [("false", 7 * 2 * 75), ("true", 7 * 2 * 64 + 11)])
def test_mapper_times_double_buffered_folds(tmp_path, flag, cycles):
    """The mapper's compute cycles of c1 (P=64, W=27, K=7 on a 4x5 array) follow the array's fold model."""
    (tmp_path / "ws.yaml").write_text(WS_DEVICE.format(flag=flag))
    (tmp_path / "c.yaml").write_text(CONV)
    layer = simulate(load_layers_yaml(tmp_path / "c.yaml"), load_device(tmp_path / "ws.yaml")).layers[0]
    assert layer.compute_cycles == cycles


def test_double_buffering_needs_weight_stationary(tmp_path):
    """Only a weight-stationary array can take the flag; the error names the file, line and field."""
    text = WS_DEVICE.format(flag="true").replace("dataflow: weight_stationary", "dataflow: output_stationary")
    (tmp_path / "ws.yaml").write_text(text)
    with pytest.raises(
        ConfigError,
        match=r"ws\.yaml:8: mac_array\.weight_double_buffering: only a "
        r"weight_stationary array",
    ):
        load_device(tmp_path / "ws.yaml")
