"""The scheduler end to end on a tiny device: exact traces, determinism, conservation and reports."""

from __future__ import annotations

import json

import pytest

from hwsim.devices.model import load_device
from hwsim.importers.scalesim_csv import load_scalesim_topology
from hwsim.paths import data_dir
from hwsim.schedule.simulate import simulate
from hwsim.schedule.systolic import DATAFLOWS, dataflow_of
from hwsim.schedule.mapper import gemm_of
from tests.devices.test_schema import GOOD

TINY = data_dir("workloads") / "tiny.yaml"
ONE_LAYER = (
    "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
    "c1,4,4,3,3,2,3,1,\n"
)


@pytest.fixture
def device(tmp_path):
    """The 2x2 output-stationary test device (4 B/cycle DRAM with 10-cycle latency, 4 KiB SRAM, one DMA)."""
    path = tmp_path / "dev.yaml"
    path.write_text(GOOD)
    return load_device(path)


@pytest.fixture
def one_layer(tmp_path):
    """A 4x4x2 input, 3x3 filters, 3 filters: P=4, W=18, K=3 (216 MACs)."""
    path = tmp_path / "one.csv"
    path.write_text(ONE_LAYER)
    return load_scalesim_topology(path)


def test_exact_trace_one_layer(device, one_layer):
    """Two P tiles, double-buffered: the second tile's inputs load while the first computes."""
    result = simulate(one_layer, device)
    got = [(e.resource, e.action, e.t_start, e.t_end, e.nbytes) for e in result.trace]
    # weights 54 B: 10 + ceil(54/4) = 24 cycles; each half of the inputs 16 B: 10 + 4 = 14; a tile is one
    # P fold x two K folds of 18 + 2 + 2 - 2 = 20 cycles = 40; each half of the outputs 6 B: 10 + 2 = 12.
    assert got == [
        ("dma0", "load", 0, 24, 54),
        ("dma0", "load", 24, 38, 16),
        ("dma0", "load", 38, 52, 16),
        ("mac_array", "compute", 38, 78, 0),
        ("dma0", "store", 78, 90, 6),
        ("mac_array", "compute", 78, 118, 0),
        ("dma0", "store", 118, 130, 6),
    ]
    layer = result.layers[0]
    assert (layer.cycles, layer.compute_cycles, layer.stall_cycles) == (130, 80, 50)


def test_deterministic(device):
    """Two simulations of the same model on the same device give identical traces."""
    a = simulate(TINY, device)
    b = simulate(TINY, device)
    assert a.trace.events == b.trace.events and a.cycles == b.cycles


def test_compute_cycles_equal_closed_form(tmp_path):
    """On every dataflow, the simulated busy cycles of each layer equal the closed-form layer cycles."""
    graph = load_scalesim_topology(data_dir("workloads") / "scalesim_resnet18.csv")
    for name in ("output_stationary", "weight_stationary", "input_stationary"):
        path = tmp_path / f"{name}.yaml"
        path.write_text(
            GOOD.replace("output_stationary", name).replace("size_bytes: 4096", "size_bytes: 65536")
        )
        dev = load_device(path)
        result = simulate(graph, dev, record_trace=False)
        for op, layer in zip(graph.ops, result.layers, strict=True):
            expected = DATAFLOWS.get(name).layer_cycles(gemm_of(graph, op, dataflow_of(dev)), 2, 2)
            assert layer.compute_cycles == expected


def test_layer_cycles_add_up(device):
    """Each layer's cycles are its compute plus its stall, and layers follow each other without gaps."""
    result = simulate(TINY, device)
    t = 0
    for layer in result.layers:
        assert layer.cycles == layer.compute_cycles + layer.stall_cycles
        assert layer.start_cycle == t
        t += layer.cycles
    assert result.cycles == t


def test_action_counts(device, one_layer):
    """MACs, SRAM reads (SCALE-Sim's counting), register accesses and DRAM traffic are counted by key."""
    result = simulate(one_layer, device)
    c = result.totals
    assert c[("mac_array", "mac", "8x8")] == 216
    assert c[("mac_array", "idle", "8x8")] == 2 * 2 * 80 - 216
    # the array reads inputs once per K fold and weights once per P fold; the DMA reads the 12 outputs
    assert c[("sram", "read", 8)] == 4 * 18 * 2 + 18 * 3 * 2 + 12
    assert c[("dram", "read", 8)] == 54 + 32 and c[("dram", "write", 8)] == 12
    assert result.totals.bytes_moved()[("dram", "read")] == 86


def test_chrome_trace(device, tmp_path):
    """The Chrome trace has one named thread per resource and complete events in microseconds."""
    result = simulate(TINY, device)
    path = result.trace.write_chrome(tmp_path / "t.json")
    data = json.loads(path.read_text())
    events = [e for e in data["traceEvents"] if e["ph"] == "X"]
    assert len(events) == len(result.trace)
    assert {e["args"]["name"] for e in data["traceEvents"] if e["ph"] == "M" and e.get("tid")} == {
        e.resource for e in result.trace
    }
    assert events[0]["ts"] == result.trace.events[0].t_start / 100


def test_double_buffering_overlaps_loads(tmp_path):
    """With room for two tiles, the next tile's load overlaps the current tile's compute."""
    graph = load_scalesim_topology(data_dir("workloads") / "scalesim_resnet18.csv")
    path = tmp_path / "d.yaml"
    path.write_text(GOOD.replace("size_bytes: 4096", "size_bytes: 65536").replace("engines: 1", "engines: 2"))
    result = simulate(graph, load_device(path))
    layer = result.layers[1]
    assert layer.mapping.buffers == 2 and layer.mapping.n_tiles > 1
    ev = [e for e in result.trace if e.op == layer.op]
    computes = [e for e in ev if e.action == "compute"]
    loads = [e for e in ev if e.action == "load"]
    assert any(computes[0].t_start <= e.t_start < computes[0].t_end for e in loads[2:])


def test_working_set_fits(tmp_path):
    """Every mapping that claims to fit keeps its working set within each level's capacity."""
    result = simulate(
        data_dir("workloads") / "mobilenet_v2_224.yaml", "ethos_u55_128_like", record_trace=False
    )
    for layer in result.layers:
        m = layer.mapping
        if m.fits:
            assert all(m.working_set_bytes[k] <= m.capacity_bytes[k] for k in m.working_set_bytes)


def test_table_lists_every_layer(device):
    """The printed table has a row per layer and a total line."""
    result = simulate(TINY, device)
    text = result.table(mappings=True)
    assert all(layer.op in text for layer in result.layers) and "latency" in text and "mapping:" in text


def test_streams_overlap_compute(device):
    """A tile's streams run beside its compute on their level's port: the step lasts the slowest of them."""
    from hwsim.schedule.mapper import LayerPlan, Mapping, Tile, Transfer
    from hwsim.schedule.counts import ActionCounts
    from hwsim.schedule.sim import Simulator

    # DRAM (level 0) reads 4 B/cycle: 100 B stream 25 cycles, 20 B stream 5 cycles, one port, so 30 in a row.
    slow = Tile(10, 0, streams=(Transfer("inputs", 0, 0, 100, 8), Transfer("outputs", 0, 0, 20, 8)))
    fast = Tile(40, 0, streams=(Transfer("inputs", 0, 0, 8, 8),))
    plans = [
        LayerPlan(
            f"l{i}", "conv2d", "mac_array", 0, "8x8", t.cycles, [t], Mapping("mac_array"), ActionCounts()
        )
        for i, t in enumerate((slow, fast))
    ]
    sim = Simulator(device, plans)
    assert sim.run() == [(0, 30, 10), (30, 70, 40)]
    got = [(e.resource, e.action, e.t_start, e.t_end) for e in sim.trace()]
    assert got == [
        ("dram port", "stream", 0, 25),
        ("mac_array", "compute", 0, 10),
        ("dram port", "stream", 25, 30),
        ("dram port", "stream", 30, 32),
        ("mac_array", "compute", 30, 70),
    ]
