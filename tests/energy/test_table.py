"""Energy tables: the literature's headline ratios, the bit-width laws, SRAM fit, scaling and table
validation."""

from __future__ import annotations


import pytest

from hwsim.energy import laws
from hwsim.energy.model import EnergyModel
from hwsim.energy.table import load_energy_table, load_scaling
from hwsim.errors import ConfigError
from hwsim.paths import data_dir


@pytest.fixture(scope="module")
def base():
    """The Horowitz table at its own node and voltage (every scaling factor is exactly 1)."""
    return EnergyModel.load("horowitz_45nm", node_nm=45, voltage_v=0.9)


def e(model, op, width):
    return model.op_energy_pj(op, width)[0]


def a(model, op, width):
    return model.op_area_um2(op, width)[0]


def test_headline_energy_ratios(base):
    """An 8-bit add costs 30x less energy than an FP32 add and an 8-bit multiply 18.5x less than an FP32
    multiply."""
    assert e(base, "fp_add", 32) / e(base, "int_add", 8) == pytest.approx(30.0, rel=1e-12)
    assert e(base, "fp_mult", 32) / e(base, "int_mult", 8) == pytest.approx(18.5, rel=1e-12)


def test_headline_area_ratios(base):
    """Adder area is about 116x and multiplier area about 27x smaller at 8-bit integer than at FP32."""
    assert round(a(base, "fp_add", 32) / a(base, "int_add", 8)) == 116
    assert round(a(base, "fp_mult", 32) / a(base, "int_mult", 8)) == 27


def test_weight_storage_ratios(base):
    """INT8 weights take 4x less SRAM area and read energy than FP32, INT4 8x less."""
    n = 1 << 20
    fp32, i8, i4 = (base.sram_area_um2(n * b // 8)[0] for b in (32, 8, 4))
    assert fp32 / i8 == pytest.approx(4.0) and fp32 / i4 == pytest.approx(8.0)
    r32, r8, r4 = (base.sram_energy_pj(32768, 1, "read", b)[0] for b in (32, 8, 4))
    assert r32 / r8 == pytest.approx(4.0) and r32 / r4 == pytest.approx(8.0)


@pytest.mark.parametrize(
    "op,points",
    [
        ("int_add", {8: (0.03, 36), 16: (0.05, 67), 32: (0.1, 137)}),
        ("int_mult", {8: (0.2, 282), 32: (3.1, 3495)}),
    ],
)
def test_laws_reproduce_table_points(base, op, points):
    """The bit-width laws pass exactly through every Horowitz point, for energy and area."""
    for bits, (pj, um2) in points.items():
        width = (bits, bits) if op == "int_mult" else bits
        assert e(base, op, width) == pj and a(base, op, width) == um2


def test_law_exponents_are_stated_fit():
    """The fitted exponents are the ones the table notes state: adders ~linear, multipliers ~quadratic."""
    assert laws.power_law_fit([8, 16, 32], [0.03, 0.05, 0.1]) == pytest.approx(0.868, abs=1e-3)
    assert laws.power_law_fit([8, 32], [0.2, 3.1]) == pytest.approx(1.977, abs=1e-3)
    assert laws.power_law_fit([8, 16, 32], [36, 67, 137]) == pytest.approx(0.964, abs=1e-3)
    assert laws.power_law_fit([8, 32], [282, 3495]) == pytest.approx(1.816, abs=1e-3)


def test_narrow_and_mixed_multipliers(base):
    """INT2 < INT4 < int8 x int4 < INT8 multiplies, W x A is symmetric, and narrower accumulators cost
    less."""
    costs = [e(base, "int_mult", w) for w in ((2, 2), (4, 4), (4, 8), (8, 8))]
    assert costs == sorted(costs) and len(set(costs)) == 4
    assert e(base, "int_mult", (4, 8)) == e(base, "int_mult", (8, 4))
    assert e(base, "int_mult", (4, 8)) == pytest.approx(0.2 * 0.5 ** (1.977 / 2), rel=1e-3)
    assert e(base, "int_add", 16) < e(base, "int_add", 24) < e(base, "int_add", 32)


def test_outside_law_range_is_refused(base):
    """A width outside a law's declared range is refused with the reason, never clamped."""
    with pytest.raises(KeyError, match="outside its law's range"):
        base.op_energy_pj("int_mult", (64, 8))
    with pytest.raises(KeyError, match="no bit-width law"):
        base.op_energy_pj("fp_add", 8)


def test_sram_fit_passes_through_points(base):
    """The SRAM energy law reproduces Horowitz's 8 kB / 32 kB / 1 MB 64-bit reads and prices one bank of a
    banked SRAM."""
    for cap, pj in ((8192, 10), (32768, 20), (1 << 20, 100)):
        assert base.sram_energy_pj(cap, 1, "read", 64)[0] == pytest.approx(pj)
    assert base.sram_energy_pj(4 << 20, 4, "read", 64)[0] == pytest.approx(100)
    assert 20 < base.sram_energy_pj(256 << 10, 1, "read", 64)[0] < 100


def test_scaling_matches_published_coefficients():
    """At published nodes the energy factor is the ratio of Stillmaker & Baas polynomials and the area
    factor their table entry."""
    m = EnergyModel.load("horowitz_45nm", node_nm=16, voltage_v=0.8)
    lp16 = 0.2139 * 0.8**2 - 0.1187 * 0.8 + 0.05639
    lp45 = 1.103 * 0.9**2 - 0.362 * 0.9 + 0.2767
    assert m.energy_factor(45, 0.9)[0] == pytest.approx(lp16 / lp45, rel=1e-12)
    assert m.area_factor(45)[0] == 0.19
    assert EnergyModel.load("horowitz_45nm", node_nm=7, voltage_v=0.7).area_factor(45)[0] == 0.059


@pytest.mark.parametrize("flavor", ["lp", "hp"])
def test_scaling_monotonic_in_node_and_voltage(flavor):
    """Energy falls at every smaller published node (fixed 0.8 V), and rises with the supply at a fixed
    node."""
    factors = [
        EnergyModel.load("horowitz_45nm", node_nm=n, voltage_v=0.8, flavor=flavor).energy_factor(45, 0.9)[0]
        for n in (45, 32, 28, 20, 16, 14, 10, 7)
    ]
    assert factors == sorted(factors, reverse=True)
    by_v = [
        EnergyModel.load("horowitz_45nm", node_nm=16, voltage_v=v, flavor=flavor).energy_factor(45, 0.9)[0]
        for v in (0.6, 0.7, 0.8, 0.9)
    ]
    assert by_v == sorted(by_v)


def test_interpolated_node_is_recorded():
    """A node between published ones (28 nm) is interpolated log-log and the provenance says so."""
    m = EnergyModel.load("horowitz_45nm", node_nm=28, voltage_v=0.9)
    f, rule = m.energy_factor(45, 0.9)
    lo = EnergyModel.load("horowitz_45nm", node_nm=32, voltage_v=0.9).energy_factor(45, 0.9)[0]
    hi = EnergyModel.load("horowitz_45nm", node_nm=20, voltage_v=0.9).energy_factor(45, 0.9)[0]
    assert hi < f < lo and "interpolated between 32 and 20 nm" in rule


def test_node_outside_range_is_an_error():
    """A node outside 7-180 nm is a ConfigError naming the range, not a silent clamp."""
    with pytest.raises(ConfigError, match="outside the published range 7-180 nm"):
        EnergyModel.load("horowitz_45nm", node_nm=5, voltage_v=0.7)


def test_every_shipped_table_loads_with_its_scaling():
    """Every energy table in energy_models/ validates and names a scaling table that loads."""
    from hwsim.energy.table import energy_model_names

    for name in energy_model_names():
        assert load_scaling(load_energy_table(name).scaling).nodes_nm


def _edit_table(tmp_path, old, new):
    src = data_dir("energy_models") / "horowitz_45nm.yaml"
    text = src.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "t.yaml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def test_unknown_source_key_is_located(tmp_path):
    """A source that is neither a key of sources nor 'assumption' fails with file:line and a near match."""
    path = _edit_table(
        tmp_path,
        "energy_pj: 0.03, area_um2: 36, source: horowitz14",
        "energy_pj: 0.03, area_um2: 36, source: horowitz15",
    )
    with pytest.raises(
        ConfigError,
        match=r"t\.yaml:\d+: arithmetic\[0\]\.source: unknown source; did you "
        r"mean "
        r"'horowitz14'\?",
    ):
        load_energy_table(path)


def test_assumption_needs_a_note(tmp_path):
    """An entry marked as an assumption must say why."""
    path = _edit_table(
        tmp_path,
        'array_efficiency: {value: 0.7, source: assumption, note: "cells are ~70% '
        "of a "
        "macro's area (decoders, sense amplifiers, I/O the rest)\"}",
        "array_efficiency: {value: 0.7, source: assumption}",
    )
    with pytest.raises(ConfigError, match=r"sram\.array_efficiency\.note: an assumption needs a note"):
        load_energy_table(path)
