"""Closed-form layer times (:mod:`hwsim.schedule.direct`) equal the event simulation's, exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.devices.model import load_device, override
from hwsim.importers import load_model
from hwsim.schedule.counts import ActionCounts
from hwsim.schedule.direct import layer_times, moves_no_data
from hwsim.schedule.mapper import LayerPlan, Mapping, Tile, Transfer
from hwsim.schedule.models import plan
from hwsim.schedule.sim import Simulator
from hwsim.schedule.simulate import simulate
from tests.devices.test_schema import GOOD

DATA = Path(__file__).parents[1] / "data" / "ethos_u"


@pytest.mark.parametrize(
    "model,device,mode",
    [
        ("kws_ds_cnn", "ethos_u55_128_like", None),
        ("ic_resnet8", "ethos_u65_256_like", None),
        ("transformer_block", "ethos_u85_256_like", None),
        ("cascade_net", "ethos_u55_64_like", "Sram_Only"),
    ],
)
def test_vela_plans_time_as_simulated(model, device, mode):
    """Every layer's (start, end, busy) of an Ethos-U network is the simulator's, to the cycle."""
    dev = load_device(device)
    if mode:
        dev = override(dev, {"ethos_u.memory_mode": mode})
    plans = plan(load_model(DATA / f"{model}.tflite"), dev)
    assert moves_no_data(plans)
    assert layer_times(dev, plans) == Simulator(dev, plans, record_trace=False).run()


def test_simulate_takes_either_path_alike():
    """``simulate`` gives the same layers with the trace (simulator) and without it (closed form)."""
    with_trace = simulate(DATA / "kws_ds_cnn.tflite", "ethos_u55_128_like")
    without = simulate(DATA / "kws_ds_cnn.tflite", "ethos_u55_128_like", record_trace=False)
    assert len(with_trace.trace) > 0 and len(without.trace) == 0
    assert [(r.start_cycle, r.cycles, r.compute_cycles) for r in with_trace.layers] == [
        (r.start_cycle, r.cycles, r.compute_cycles) for r in without.layers
    ]


def test_loads_need_the_simulator(tmp_path):
    """A plan whose tiles load by DMA is left to the event simulation."""
    tile = Tile(5, 0, loads=(Transfer("inputs", 0, 1, 16, 8),))
    assert not moves_no_data(
        [LayerPlan("l", "conv2d", "mac_array", 0, "8x8", 5, [tile], Mapping("mac_array"), ActionCounts())]
    )


_stream = st.builds(
    lambda level, nbytes, cycles: Transfer("inputs", level, level, nbytes, 8, cycles),
    st.integers(0, 1),
    st.integers(0, 300),
    st.one_of(st.none(), st.integers(0, 60)),
)
_tile = st.builds(
    lambda c, w, s: Tile(c, 0, streams=tuple(s), wait_cycles=w),
    st.integers(0, 50),
    st.sampled_from([0, 0, 7]),
    st.lists(_stream, max_size=5),
)


@pytest.fixture(scope="module")
def devices(tmp_path_factory):
    """The 2-level test device (DRAM 4 B/cycle, SRAM 8 B/cycle) with one and with two read ports per level."""
    path = tmp_path_factory.mktemp("dev") / "dev.yaml"
    path.write_text(GOOD)
    dev = load_device(path)
    return {n: override(dev, {f"memories.{m.name}.read_ports": n for m in dev.levels}) for n in (1, 2)}


@settings(max_examples=60, deadline=None)
@given(layers=st.lists(st.lists(_tile, max_size=4), min_size=1, max_size=4), ports=st.integers(1, 2))
def test_random_stream_plans_time_as_simulated(devices, layers, ports):
    """Streams queueing for one or two read ports per level, waits and empty layers: same times as SimPy."""
    dev = devices[ports]
    plans = [
        LayerPlan(f"l{i}", "conv2d", "mac_array", 0, "8x8", 0, tiles, Mapping("mac_array"), ActionCounts())
        for i, tiles in enumerate(layers)
    ]
    assert layer_times(dev, plans) == Simulator(dev, plans, record_trace=False).run()
