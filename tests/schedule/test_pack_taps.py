"""``mac_array.pack_taps``: a dot-product array reduces a shallow convolution's whole window in row-deep
chunks instead of padding each tap's channels to its rows."""

from __future__ import annotations

import pytest

from hwsim.devices.model import load_device
from hwsim.errors import ConfigError
from hwsim.importers.yaml_layers import load_layers_yaml
from hwsim.schedule.simulate import simulate

DP_DEVICE = """\
schema_version: 1
name: dp
clock_mhz: 100
mac_array:
  rows: 8
  columns: 8
  spatial_lanes: 2
  dataflow: {dataflow}
  pack_taps: {flag}
  accumulator_bits: 32
  precisions: [{{weights_bits: 8, activations_bits: 8}}]
dma: {{engines: 1}}
memories:
  - {{name: dram, kind: off_chip, read_bandwidth_bytes_per_cycle: 64, write_bandwidth_bytes_per_cycle: 64,
     holds: [weights, inputs, outputs], homes: [weights, activations]}}
  - {{name: sram, kind: sram, size_bytes: 1048576, read_bandwidth_bytes_per_cycle: 64,
     write_bandwidth_bytes_per_cycle: 64, holds: [weights, inputs, outputs], homes: [weights, activations]}}
"""
CONVS = """\
schema_version: 1
name: c
input: {shape: [1, 10, 10, 3], dtype: int8}
layers:
  - {name: shallow, op: conv2d, out_channels: 16, kernel: 3}
  - {name: deep, op: conv2d, out_channels: 7, kernel: 1}
"""


@pytest.mark.parametrize(
    "flag, shallow",
    # P = 64 pixels in 32 groups of 2 lanes, 16 filters in 2 column folds. Padded: 1 depth chunk x 9 taps;
    # packed: the 27-deep window in ceil(27 / 8) = 4 chunks of one tap.
    [("false", 2 * 1 * 9 * 32), ("true", 2 * 4 * 1 * 32)],
)
def test_shallow_conv_packs_its_window(tmp_path, flag, shallow):
    """Only the 3-channel conv changes; the 16-channel one (2 depth chunks, 1 tap) and the MACs do not."""
    (tmp_path / "dp.yaml").write_text(DP_DEVICE.format(dataflow="dot_product", flag=flag))
    (tmp_path / "c.yaml").write_text(CONVS)
    layers = simulate(load_layers_yaml(tmp_path / "c.yaml"), load_device(tmp_path / "dp.yaml")).layers
    assert [layer.compute_cycles for layer in layers] == [shallow, 2 * 1 * 1 * 32]
    assert [layer.macs for layer in layers] == [64 * 16 * 27, 64 * 7 * 16]


def test_pack_taps_needs_dot_product(tmp_path):
    """A systolic array already reduces the flattened window; the error names the file, line and field."""
    text = DP_DEVICE.format(dataflow="output_stationary", flag="true").replace("  spatial_lanes: 2\n", "")
    (tmp_path / "dp.yaml").write_text(text)
    with pytest.raises(ConfigError, match=r"dp\.yaml:8: mac_array\.pack_taps: only a dot_product array"):
        load_device(tmp_path / "dp.yaml")
