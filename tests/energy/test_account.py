"""Accounting: every shipped device prices every scheduler key on tiny.yaml, with provenance, power and
area."""

from __future__ import annotations

from functools import lru_cache

import pytest

from hwsim.devices.model import device_files, load_device
from hwsim.energy.account import account
from hwsim.energy.area import device_area
from hwsim.energy.model import DevicePricer, EnergyModel
from hwsim.energy.table import MissingCostError
from hwsim.errors import ConfigError
from hwsim.paths import data_dir
from hwsim.schedule.simulate import simulate

TINY = data_dir("workloads") / "tiny.yaml"


@lru_cache(maxsize=None)
def _run(name: str):
    result = simulate(TINY, name)
    return result, account(result, EnergyModel.for_device(result.device))


@pytest.mark.parametrize("name", [p.stem for p in device_files()])
def test_device_prices_every_key(name):
    """Every key the scheduler emits on tiny.yaml resolves to a cost with a source, and the energy is
    positive."""
    result, breakdown = _run(name)
    priced = {(r.component, r.action, r.bits) for r in breakdown.rows if r.category != "leakage"}
    assert priced == set(result.totals.keys())
    assert all(r.source.strip() for r in breakdown.rows)
    assert breakdown.total_pj > 0 and breakdown.leakage_pj > 0


@pytest.mark.parametrize("name", [p.stem for p in device_files()])
def test_peak_power_at_least_average(name):
    """The busiest-window power is never below the average power (the window wraps around the run)."""
    _, breakdown = _run(name)
    assert breakdown.power.peak_mw >= breakdown.power.average_mw > 0
    assert breakdown.power.average_mw == pytest.approx(breakdown.average_power_mw)


def test_views_sum_to_the_total():
    """By layer, by component, by category and by action all add up to the same energy per inference."""
    _, b = _run("hexagon_like")
    total = b.total_pj
    for view in (b.by_layer(), b.by_component(), b.by_category()):
        assert sum(view.values()) == pytest.approx(total)
    assert sum(e for _, e in b.by_action().values()) == pytest.approx(total)
    assert b.tops_per_w == pytest.approx(2 * b.macs / (total * 1e-12) / 1e12)
    assert b.edp_pj_s == pytest.approx(total * b.time_s)


def test_mac_runs_on_the_covering_datapath():
    """A 4x8 MAC costs an 8x8 multiply on an 8x8-only array and less on an array with a native 4x8 path."""
    edge = load_device("edge_tpu_like")
    pe = DevicePricer(EnergyModel.for_device(edge), edge)
    assert (
        pe.price("mac_array", "mac", "4x8")[0].energy_pj == pe.price("mac_array", "mac", "8x8")[0].energy_pj
    )
    assert "runs on the 8x8 datapath" in pe.price("mac_array", "mac", "4x8")[0].source
    hexagon = load_device("hexagon_like")
    ph = DevicePricer(EnergyModel.for_device(hexagon), hexagon)
    assert ph.price("hmx", "mac", "4x8")[0].energy_pj < ph.price("hmx", "mac", "8x8")[0].energy_pj


def test_idle_is_flagged_as_assumption():
    """An idle MAC slot is priced as the table's fraction of a MAC and its source says it is an assumption."""
    edge = load_device("edge_tpu_like")
    p = DevicePricer(EnergyModel.for_device(edge), edge)
    (idle,) = p.price("mac_array", "idle", "8x8")
    assert idle.energy_pj == pytest.approx(0.1 * sum(c.energy_pj for c in p.price("mac_array", "mac", "8x8")))
    assert "assumption" in idle.source


def test_missing_cost_names_component_action_bits():
    """An action the table cannot price raises MissingCostError naming the component, action and bits."""
    edge = load_device("edge_tpu_like")
    p = DevicePricer(EnergyModel.for_device(edge), edge)
    with pytest.raises(MissingCostError, match=r"component 'sram' \(sram, 8 MiB\), action 'op', bits 8"):
        p.price("sram", "op", 8)
    with pytest.raises(
        MissingCostError,
        match=r"component 'mac_array' \(MAC array\), action 'mac', bits "
        r"'16x16'.*"
        r"no operand pair covers",
    ):
        p.price("mac_array", "mac", "16x16")
    with pytest.raises(MissingCostError, match="component 'npu' .*not a component of the device"):
        p.price("npu", "read", 8)


def _device_variant(tmp_path, old, new):
    text = (data_dir("accelerators") / "edge_tpu_like.yaml").read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "dev.yaml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    return load_device(path)


def test_unknown_offchip_technology_without_fallback_is_an_error(tmp_path):
    """An off-chip level whose technology the table lacks is an error naming it, unless a fallback is
    declared."""
    dev = _device_variant(tmp_path, "technology: usb3_host", "technology: pcie_gen3")
    p = DevicePricer(EnergyModel.for_device(dev), dev)
    with pytest.raises(
        MissingCostError,
        match=r"component 'host' \(off_chip, technology pcie_gen3\), action "
        r"'read', "
        r"bits 8.*no off_chip entry 'pcie_gen3'",
    ):
        p.price("host", "read", 8)


def test_declared_fallback_is_recorded(tmp_path):
    """A fallback declared in the table prices the level and the row's source says it was a fallback."""
    dev = _device_variant(tmp_path, "technology: usb3_host", "technology: pcie_gen3")
    table = (data_dir("energy_models") / "horowitz_45nm.yaml").read_text(encoding="utf-8")
    table += (
        "off_chip_fallback: {technology: usb3_host, source: assumption, "
        'note: "price unknown links as USB 3.0"}\n'
    )
    (tmp_path / "t.yaml").write_text(table, encoding="utf-8")
    p = DevicePricer(EnergyModel.for_device(dev, tmp_path / "t.yaml"), dev)
    (cost,) = p.price("host", "read", 8)
    assert cost.category == "link" and "fallback declared by the table" in cost.source


def test_device_without_technology_needs_node_and_voltage(tmp_path):
    """A device with no technology block is refused unless node and voltage are given explicitly."""
    text = (data_dir("accelerators") / "edge_tpu_like.yaml").read_text(encoding="utf-8")
    start = text.index("\ntechnology:")
    end = text.index("\nmac_array:")
    path = tmp_path / "dev.yaml"
    path.write_text(text[:start] + text[end:], encoding="utf-8")
    dev = load_device(path)
    with pytest.raises(ConfigError, match="declares no technology"):
        EnergyModel.for_device(dev)
    assert EnergyModel.for_device(dev, node_nm=16, voltage_v=0.8).technology.node_nm == 16


def test_area_by_component():
    """Area has MAC multipliers, adders, registers, each SRAM and the overhead; it shrinks at a smaller
    node."""
    dev = load_device("edge_tpu_like")
    at28 = device_area(DevicePricer(EnergyModel.for_device(dev), dev))
    at7 = device_area(DevicePricer(EnergyModel.for_device(dev, node_nm=7, voltage_v=0.75), dev))
    parts = {(r.component, r.part.split()[0]) for r in at28.rows}
    assert {
        ("mac_array", "multipliers"),
        ("mac_array", "accumulator"),
        ("mac_array", "registers"),
        ("sram", "sram"),
        ("overhead", "30%"),
    } <= parts
    assert not any(r.component == "host_cpu" for r in at28.rows)  # the host's CPU is not the device's area
    assert at7.total_mm2 < at28.total_mm2
    assert sum(at28.by_component_mm2().values()) == pytest.approx(at28.total_mm2)


def test_lower_node_lowers_energy():
    """The same run priced at 7 nm costs less on-chip energy than at the device's 28 nm."""
    result, b28 = _run("edge_tpu_like")
    b7 = account(result, EnergyModel.for_device(result.device, node_nm=7, voltage_v=0.75))
    on_chip = lambda b: sum(e for c, e in b.by_category().items() if c not in ("link", "dram", "flash"))  # noqa: E731
    assert on_chip(b7) < on_chip(b28)
    assert b7.by_category()["link"] == pytest.approx(b28.by_category()["link"])


HAND_CFG = """\
[architecture_presets]
ArrayHeight: 4
ArrayWidth: 4
IfmapSramSzkB: 8
FilterSramSzkB: 8
OfmapSramSzkB: 8
Dataflow: os
"""


def test_account_by_hand(tmp_path):
    """One layer priced at the table's own 45 nm / 0.9 V (no scaling), 1,000 cycles at 1 GHz (1 us).

    Counts: 1,000 int8 MACs, 500 8-bit reads of an 8 KiB SRAM, 100 8-bit DRAM (DDR3) reads.

    - MAC: 8x8 multiply 0.2 pJ + 32-bit accumulate 0.1 pJ (Horowitz table points): 1,000 x 0.3 = 300 pJ
    - SRAM: 64-bit read of an 8 KiB bank 10 pJ (table point), energy proportional to width: 8/64 x 10 =
      1.25 pJ per read: 500 x 1.25 = 625 pJ
    - DRAM: DDR3 30.5 pJ/bit x 8 bits = 244 pJ per read: 100 x 244 = 24,400 pJ
    - dynamic: 300 + 625 + 24,400 = 25,325 pJ
    - leakage: each SRAM 0.1 mW/Mbit x 8 KiB (0.0625 Mbit) = 0.00625 mW, three of them 0.01875 mW; the MAC
      array's and vector unit's logic leakage comes from their areas (12.4 mW/mm^2); every component leaks
      for 1 us: mW x 1e-6 s = mW x 1,000 pJ.
    """
    from hwsim.schedule.counts import ActionCounts
    from hwsim.schedule.mapper import Mapping
    from hwsim.schedule.simulate import LayerResult, SimResult
    from hwsim.schedule.trace import Trace

    path = tmp_path / "hand.cfg"
    path.write_text(HAND_CFG, encoding="utf-8")
    device = load_device(path)
    model = EnergyModel.for_device(device, node_nm=45, voltage_v=0.9)
    counts = ActionCounts()
    counts.add("mac_array", "mac", "8x8", 1000)
    counts.add("ifmap_sram", "read", 8, 500)
    counts.add("dram", "read", 8, 100)
    layer = LayerResult(
        "fc",
        "fully_connected",
        "mac_array",
        "8x8",
        1000,
        0,
        1000,
        1000,
        0,
        0.25,
        800,
        counts,
        Mapping(unit="mac_array"),
    )
    breakdown = account(SimResult(device, "hand", [layer], Trace([], device.clock_mhz), counts), model)
    dynamic = sum(r.energy_pj for r in breakdown.rows if r.category != "leakage")
    assert dynamic == 300 + 625 + 24_400
    leak = {c: mw for c, _, mw, _ in DevicePricer(model, device).leakage_mw()}
    assert leak["ifmap_sram"] == leak["filter_sram"] == leak["ofmap_sram"] == pytest.approx(0.1 * 0.0625)
    assert breakdown.leakage_pj == pytest.approx(sum(leak.values()) * 1_000)
    assert breakdown.total_pj == pytest.approx(25_325 + sum(leak.values()) * 1_000)


def test_peak_power_of_a_long_run_is_a_python_float():
    """A run longer than the peak window gives Python floats, which results tables write as plain numbers."""
    result, breakdown = _run("edge_tpu_like")
    assert result.time_ms * 1000 > breakdown.power.window_us
    assert type(breakdown.power.peak_mw) is float and type(breakdown.power.window_start_us) is float
