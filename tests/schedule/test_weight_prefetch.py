"""Cross-layer weight prefetch (``dma.prefetch_next_weights``): exact traces on hand-built plans, the room
it may use, and on a real network the same bytes moved, only earlier."""

from __future__ import annotations

import dataclasses

import pytest

from hwsim.devices.model import Device, load_device
from hwsim.importers.yaml_layers import load_layers_yaml
from hwsim.paths import data_dir
from hwsim.schedule.counts import ActionCounts
from hwsim.schedule.mapper import overhead_plan
from hwsim.schedule.models import plan
from hwsim.schedule.plans import LayerPlan, Mapping, Tile, Transfer
from hwsim.schedule.sim import Simulator
from hwsim.schedule.simulate import simulate
from tests.devices.test_schema import GOOD


def _device(tmp_path, prefetch: bool, overhead: int = 0) -> Device:
    """The 2x2 test device (DRAM 4 B/cycle, 10-cycle latency, one DMA engine), prefetching or not."""
    text = GOOD.replace(
        "dma: {engines: 1}", f"dma: {{engines: 1, prefetch_next_weights: {str(prefetch).lower()}}}"
    )
    if overhead:
        text += f"inference_overhead_cycles: {overhead}\n"
    path = tmp_path / "dev.yaml"
    path.write_text(text)
    return load_device(path)


def _plan(name: str, cycles: int, weight_bytes: int, free: int) -> LayerPlan:
    """One layer of one tile: load ``weight_bytes`` from DRAM to SRAM, compute ``cycles``; ``free`` bytes of
    SRAM left unused while it runs."""
    tile = Tile(cycles, 0, loads=(Transfer("weights", 0, 1, weight_bytes, 8),))
    return LayerPlan(
        name, "conv2d", "mac_array", 0, "8x8", cycles, [tile], Mapping("mac_array"), ActionCounts(),
        free_bytes={1: free},
    )  # fmt: skip


def _events(sim: Simulator) -> list[tuple]:
    return [(e.resource, e.action, e.op, e.t_start, e.t_end, e.nbytes) for e in sim.trace()]


def test_next_layer_weights_load_under_the_current_compute(tmp_path):
    """Layer a's 40 B load (10 + 10 cycles), then 60 of layer b's 80 B (a leaves 60 B free: 10 + 15 cycles)
    under a's 100-cycle compute; b loads the other 20 B (10 + 5) and computes at 135, not 150."""
    plans = [_plan("a", 100, 40, 60), _plan("b", 20, 80, 0)]
    sim = Simulator(_device(tmp_path, True), plans)
    assert sim.run() == [(0, 120, 100), (120, 155, 20)]
    assert _events(sim) == [
        ("dma0", "load", "a", 0, 20, 40),
        ("dma0", "prefetch", "b", 20, 45, 60),
        ("mac_array", "compute", "a", 20, 120, 0),
        ("dma0", "load", "b", 120, 135, 20),
        ("mac_array", "compute", "b", 135, 155, 0),
    ]


def test_off_by_default_and_bounded_by_free_bytes(tmp_path):
    """Without the option b loads its 80 B itself (10 + 20 cycles); with it but no free room, the same;
    with room for all of it, b's first tile waits for nothing."""
    off = Simulator(_device(tmp_path, False), [_plan("a", 100, 40, 60), _plan("b", 20, 80, 0)])
    assert off.run() == [(0, 120, 100), (120, 170, 20)]
    assert "prefetch" not in {e.action for e in off.trace()}
    full = Simulator(_device(tmp_path, True), [_plan("a", 100, 40, 0), _plan("b", 20, 80, 0)])
    assert full.run() == [(0, 120, 100), (120, 170, 20)]
    room = Simulator(_device(tmp_path, True), [_plan("a", 100, 40, 1000), _plan("b", 20, 80, 0)])
    assert room.run() == [(0, 120, 100), (120, 140, 20)]


def test_a_late_prefetch_is_waited_for(tmp_path):
    """When a's compute (10 cycles) ends before the prefetch (20 to 45), b starts its compute only after it
    and after its own remaining load, which queues behind the prefetch on the single engine."""
    sim = Simulator(_device(tmp_path, True), [_plan("a", 10, 40, 60), _plan("b", 20, 80, 0)])
    assert sim.run() == [(0, 30, 10), (30, 80, 20)]
    assert [e for e in _events(sim) if e[2] == "b"] == [
        ("dma0", "prefetch", "b", 20, 45, 60),
        ("dma0", "load", "b", 45, 60, 20),
        ("mac_array", "compute", "b", 60, 80, 0),
    ]


def test_nothing_is_prefetched_under_the_inference_overhead(tmp_path):
    """The runtime's per-inference overhead is not a layer: the first layer loads its own weights after it."""
    device = _device(tmp_path, True, overhead=50)
    head = dataclasses.replace(overhead_plan(device), free_bytes={1: 4096})
    sim = Simulator(device, [head, _plan("a", 100, 40, 60)])
    assert sim.run() == [(0, 50, 50), (50, 170, 100)]
    assert "prefetch" not in {e.action for e in sim.trace()}


@pytest.fixture(scope="module")
def squeezenet():
    return load_layers_yaml(data_dir("workloads") / "published" / "squeezenet_1_1.yaml")


def test_same_bytes_earlier_on_hexagon(squeezenet):
    """On the Hexagon-like device, SqueezeNet-1.1 with prefetch moves the same bytes per layer (counts and
    traffic unchanged), some of them as prefetches within the room each layer leaves, and is faster."""
    base = load_device("hexagon_like")
    on = Device(
        dataclasses.replace(base.spec, dma=dataclasses.replace(base.spec.dma, prefetch_next_weights=True)),
        base.path,
    )
    a, b = simulate(squeezenet, base), simulate(squeezenet, on)
    assert [x.counts for x in a.layers] == [x.counts for x in b.layers]
    assert a.traffic() == b.traffic()

    def moved(result):
        out: dict[str, int] = {}
        for e in result.trace:
            if e.action in ("load", "prefetch"):
                out[e.op] = out.get(e.op, 0) + e.nbytes
        return out

    assert moved(a) == moved(b)
    prefetches = [e for e in b.trace if e.action == "prefetch"]
    assert len(prefetches) > 10 and "prefetch" not in {e.action for e in a.trace}
    assert b.cycles < a.cycles
    room = {p.op: p.free_bytes.get(1, 0) for p in plan(squeezenet, on)}  # level 1: VTCM
    for e in prefetches:  # each runs under the layer before the one it is for, within that layer's room
        under = max((x for x in b.layers if x.start_cycle <= e.t_start), key=lambda x: x.start_cycle)
        assert under.op != e.op and e.t_start < under.start_cycle + under.cycles
        assert e.nbytes <= room[under.op]
