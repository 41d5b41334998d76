"""The Edge TPU compiler model: one Edge TPU segment, feature maps before cached parameters, USB,
overheads."""

from __future__ import annotations

import pytest

from hwsim.devices.model import load_device
from hwsim.errors import ConfigError
from hwsim.importers.yaml_layers import load_layers_yaml
from hwsim.schedule.edgetpu_compiler import (
    activation_reserve_bytes,
    cache_parameters,
    edgetpu_segment,
    edgetpu_segment_end,
    plan_edgetpu,
)
from hwsim.schedule.simulate import simulate

DEVICE = """\
schema_version: 1
name: etpu
clock_mhz: 100
performance_model: edgetpu_compiler
mac_array:
  rows: 2
  columns: 2
  dataflow: output_stationary
  accumulator_bits: 32
  precisions: [{weights_bits: 8, activations_bits: 8}]
  ops: [conv2d, fully_connected]
vector_units:
  - {name: vpu, vector_bits: 32, ops: [add]}
  - {name: cpu, vector_bits: 16, ops: ["*"], on_host: true}
dma: {engines: 1}
memories:
  - {name: host, kind: off_chip, read_bandwidth_bytes_per_cycle: 4, write_bandwidth_bytes_per_cycle: 4,
     read_latency_cycles: 10, write_latency_cycles: 10, holds: [weights, inputs, outputs],
     homes: [weights, activations]}
  - {name: sram, kind: sram, size_bytes: 1024, persistent_weights_bytes: 512, homes: [weights, activations],
     read_bandwidth_bytes_per_cycle: 8, write_bandwidth_bytes_per_cycle: 8, holds: [weights, inputs, outputs]}
"""
# c1: 16 B of weights + 16 B of bias, 64 B in and out; c2: 288 + 32 B, 64 B in, 128 B out. The arg max is the
# first op the Edge TPU does not run, so it and the add after it (which the Edge TPU supports) run on the
# host.
GRAPH = """\
schema_version: 1
name: g
input: {shape: [1, 4, 4, 4], dtype: int8}
layers:
  - {name: c1, op: conv2d, out_channels: 4, kernel: 1}
  - {name: c2, op: conv2d, out_channels: 8, kernel: 3, padding: same}
  - {name: am, op: arg_max}
  - {name: s, op: add, inputs: [c2, c2]}
"""


@pytest.fixture
def device(tmp_path):
    """The two-level Edge TPU-like test device (1 KiB SRAM, at most 512 B of cached parameters)."""
    path = tmp_path / "etpu.yaml"
    path.write_text(DEVICE)
    return load_device(path)


@pytest.fixture
def graph(tmp_path):
    """Two convolutions, then an arg max and an add (see GRAPH)."""
    path = tmp_path / "g.yaml"
    path.write_text(GRAPH)
    return load_layers_yaml(path)


def _device(tmp_path, old: str, new: str):
    path = tmp_path / "variant.yaml"
    assert old in DEVICE
    path.write_text(DEVICE.replace(old, new))
    return load_device(path)


def test_first_unsupported_op_ends_the_edgetpu_segment(device, graph):
    """The arg max and every later op (even the supported add) run on the host unit, the rest on the
    device."""
    assert edgetpu_segment_end(graph, device) == 2
    assert [p.unit for p in plan_edgetpu(graph, device)] == ["mac_array", "mac_array", "cpu", "cpu"]


def test_feature_maps_are_reserved_before_parameters(device, graph):
    """The reserve is the segment's largest working set that fits the SRAM; parameters then cache in order."""
    tpu = edgetpu_segment(graph, device)
    assert [op.name for op in tpu.ops] == ["c1", "c2"] and tpu.outputs == ["c2"]
    assert activation_reserve_bytes(tpu, 1024) == 64 + 128  # c2 reads 64 B and writes 128 B
    assert activation_reserve_bytes(tpu, 150) == 64 + 64  # c1; c2's working set would not fit anyway
    assert cache_parameters(tpu, device).levels[1].persistent_weights_bytes == 32 + 320


def test_layer_too_large_for_what_is_left_streams_whole(tmp_path, graph):
    """With 300 B of cache, c1 (32 B) is cached and c2 (320 B) streams from the host every inference."""
    small = _device(tmp_path, "persistent_weights_bytes: 512", "persistent_weights_bytes: 300")
    assert cache_parameters(edgetpu_segment(graph, small), small).levels[1].persistent_weights_bytes == 32
    c2 = simulate(graph, small).layers[1]
    # its parameters from the host and its output to it (c1's is on chip)
    assert c2.offchip_bytes == 320 + 128
    assert c2.mapping.homes == {"inputs": "sram", "outputs": "host", "weights": "host"}


def test_sram_smaller_than_the_reserve_leaves_no_cache(tmp_path, graph):
    """When feature maps take the SRAM, no parameter is cached: the budget is the size less the reserve (8
    B)."""
    tight = _device(tmp_path, "size_bytes: 1024, persistent_weights_bytes: 512",
                    "size_bytes: 200, persistent_weights_bytes: 150")
    tpu = edgetpu_segment(graph, tight)
    assert activation_reserve_bytes(tpu, 200) == 192
    assert cache_parameters(tpu, tight).levels[1].persistent_weights_bytes == 0


def test_what_the_host_reads_crosses_usb_and_host_ops_cost_no_device_energy(device, graph):
    """c2's output is stored to the host level; host ops take elements / lanes cycles and have no counts."""
    result = simulate(graph, device)
    stores = [e for e in result.trace if e.op == "c2" and e.action == "store"]
    assert {e.detail for e in stores} == {"outputs sram->host"} and sum(e.nbytes for e in stores) == 128
    am, s = result.layers[2], result.layers[3]
    # 2 int8 lanes: the arg max reads 128 elements (16 outputs x 8 channels), the add 2 x 128
    assert (am.unit, am.compute_cycles, am.cycles) == ("cpu", 64, 64)
    assert (s.unit, s.compute_cycles, s.cycles) == ("cpu", 128, 128)
    assert am.counts.keys() == [] and s.counts.keys() == []


def test_overheads_per_inference_and_per_edgetpu_layer(tmp_path, graph):
    """The inference overhead is a first step on the MAC array; each Edge TPU layer starts with its
    overhead."""
    dev = _device(tmp_path, "dma: {engines: 1}", "dma: {engines: 1}\nlayer_overhead_cycles: 5\n"
                                                  "inference_overhead_cycles: 7")
    plans = plan_edgetpu(graph, dev)
    assert [(p.op, p.tiles[0].cycles) for p in plans[:2]] == [("(inference overhead)", 7), ("c1", 5)]
    assert plans[-1].tiles[0].cycles == 128  # host ops pay no Edge TPU layer overhead
    result = simulate(graph, dev)
    first = [e for e in result.trace if e.op == "(inference overhead)"]
    assert [(e.resource, e.t_start, e.t_end) for e in first] == [("mac_array", 0, 7)]


def test_needs_one_host_unit(tmp_path, graph):
    """The model names the missing piece when no vector unit is on_host."""
    dev = _device(tmp_path, ', on_host: true', '')
    with pytest.raises(ConfigError, match="needs exactly one vector unit with on_host: true"):
        plan_edgetpu(graph, dev)


def test_needs_a_parameter_cache(tmp_path, graph):
    """The model names the missing piece when no level has persistent_weights_bytes."""
    dev = _device(tmp_path, "persistent_weights_bytes: 512, ", "")
    with pytest.raises(ConfigError, match="needs one on-chip level with persistent_weights_bytes"):
        plan_edgetpu(graph, dev)


def test_hwsim_mapper_refuses_host_units(tmp_path, graph):
    """hwsim's own mapper places nothing on the host, so it refuses a device with an on_host unit."""
    dev = _device(tmp_path, "performance_model: edgetpu_compiler\n", "")
    with pytest.raises(ConfigError, match="vector unit 'cpu' is on_host, and hwsim's own mapper places no "
                                          "work "
                                          "on the host"):
        simulate(graph, dev)
