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
    AFTER_UNMAPPED,
    IMPRECISE_RESIZE,
    edgetpu_segment,
    host_ops,
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
  - {name: vpu, vector_bits: 32, ops: [add, resize_bilinear]}
  - {name: cpu, vector_bits: 16, ops: ["*"], on_host: true, macs_per_lane_per_cycle: 4}
dma: {engines: 1}
memories:
  - {name: host, kind: off_chip, read_bandwidth_bytes_per_cycle: 4, write_bandwidth_bytes_per_cycle: 4,
     read_latency_cycles: 10, write_latency_cycles: 10, holds: [weights, inputs, outputs],
     homes: [weights, activations]}
  - {name: sram, kind: sram, size_bytes: 1024, persistent_weights_bytes: 512, homes: [weights, activations],
     read_bandwidth_bytes_per_cycle: 8, write_bandwidth_bytes_per_cycle: 8, holds: [weights, inputs, outputs]}
"""
# c1: 16 B of weights + 16 B of bias, 64 B in and out; c2: 288 + 32 B, 64 B in, 128 B out. The Edge TPU does
# not run the arg max, so it and the add that reads it (an op the Edge TPU supports) run on the host; the add
# u comes later in the file but does not read the arg max, so it stays on the Edge TPU.
GRAPH = """\
schema_version: 1
name: g
input: {shape: [1, 4, 4, 4], dtype: int8}
layers:
  - {name: c1, op: conv2d, out_channels: 4, kernel: 1}
  - {name: c2, op: conv2d, out_channels: 8, kernel: 3, padding: same}
  - {name: am, op: arg_max}
  - {name: s, op: add, inputs: [am, am]}
  - {name: u, op: add, inputs: [c1, c1]}
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


def test_unsupported_op_and_what_reads_it_run_on_the_host(device, graph):
    """The arg max and the supported add that reads it run on the host; the add after them in the file that
    does not read the arg max stays in the Edge TPU segment (as in Coral's compiled DeepLab v3)."""
    assert host_ops(graph, device) == {
        "am": "not among the Edge TPU's supported operations",
        "s": AFTER_UNMAPPED,
    }
    plans = plan_edgetpu(graph, device)
    assert [(p.op, p.unit) for p in plans] == [
        ("c1", "mac_array"),
        ("c2", "mac_array"),
        ("u", "vpu"),
        ("am", "cpu"),
        ("s", "cpu"),
    ]
    assert plans[4].mapping.reason == AFTER_UNMAPPED


def test_feature_maps_are_reserved_before_parameters(device, graph):
    """The reserve is the segment's largest working set that fits the SRAM; parameters then cache in order."""
    tpu = edgetpu_segment(graph, device)
    assert [op.name for op in tpu.ops] == ["c1", "c2", "u"] and tpu.outputs == ["c2", "u"]
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
    tight = _device(
        tmp_path,
        "size_bytes: 1024, persistent_weights_bytes: 512",
        "size_bytes: 200, persistent_weights_bytes: 150",
    )
    tpu = edgetpu_segment(graph, tight)
    assert activation_reserve_bytes(tpu, 200) == 192
    assert cache_parameters(tpu, tight).levels[1].persistent_weights_bytes == 0


def test_what_the_host_reads_crosses_usb_and_host_ops_cost_no_device_energy(device, graph):
    """c2's output is stored to the host level; host ops take elements / lanes cycles and have no counts."""
    result = simulate(graph, device)
    stores = [e for e in result.trace if e.op == "c2" and e.action == "store"]
    assert {e.detail for e in stores} == {"outputs sram->host"} and sum(e.nbytes for e in stores) == 128
    am, s = result.layers[3], result.layers[4]
    # 2 int8 lanes: the arg max reads 128 elements (16 outputs x 8 channels), the add 2 x 16
    assert (am.unit, am.compute_cycles, am.cycles) == ("cpu", 64, 64)
    assert (s.unit, s.compute_cycles, s.cycles) == ("cpu", 16, 16)
    assert am.counts.keys() == [] and s.counts.keys() == []


def test_overheads_per_inference_and_per_edgetpu_layer(tmp_path, graph):
    """The inference overhead is a first step on the MAC array; each Edge TPU layer starts with its
    overhead."""
    dev = _device(
        tmp_path,
        "dma: {engines: 1}",
        "dma: {engines: 1}\nlayer_overhead_cycles: 5\ninference_overhead_cycles: 7",
    )
    plans = plan_edgetpu(graph, dev)
    assert [(p.op, p.tiles[0].cycles) for p in plans[:2]] == [("(inference overhead)", 7), ("c1", 5)]
    assert plans[-1].tiles[0].cycles == 16  # host ops pay no Edge TPU layer overhead
    result = simulate(graph, dev)
    first = [e for e in result.trace if e.op == "(inference overhead)"]
    assert [(e.resource, e.t_start, e.t_end) for e in first] == [("mac_array", 0, 7)]


RESIZES = """\
schema_version: 1
name: r
input: {shape: [1, 4, 4, 4], dtype: int8}
layers:
  - {name: up, op: resize_bilinear, size: [8, 8]}
  - {name: up_ac, op: resize_bilinear, size: [8, 8], align_corners: true}
  - {name: c, op: conv2d, out_channels: 8, kernel: 3, padding: same}
"""


def test_align_corners_resize_and_the_conv_after_it_run_on_the_host(tmp_path, device):
    """A bilinear resize with align_corners is left to the host with the compiler's message, one without it
    stays on the Edge TPU; the convolution that reads it runs on the host at lanes x macs_per_lane MACs per
    cycle (2 x 4: 8x8 outputs x 8 channels x 36 = 18,432 MACs in 2,304 cycles)."""
    path = tmp_path / "r.yaml"
    path.write_text(RESIZES)
    graph = load_layers_yaml(path)
    assert host_ops(graph, device) == {"up_ac": IMPRECISE_RESIZE, "c": AFTER_UNMAPPED}
    plans = {p.op: p for p in plan_edgetpu(graph, device)}
    assert plans["up"].unit == "vpu" and plans["up_ac"].mapping.reason == IMPRECISE_RESIZE
    assert (plans["c"].unit, plans["c"].macs, plans["c"].compute_cycles) == ("cpu", 18432, 2304)


def test_needs_one_host_unit(tmp_path, graph):
    """The model names the missing piece when no vector unit is on_host."""
    dev = _device(tmp_path, ", on_host: true", "")
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
    with pytest.raises(
        ConfigError, match="vector unit 'cpu' is on_host, and hwsim's own mapper places no work on the host"
    ):
        simulate(graph, dev)
