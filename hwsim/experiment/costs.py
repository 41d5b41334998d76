"""Energy, power and area of one simulated point: the single place the experiment runner gets them from.

:func:`energy_power_area` prices a :class:`~hwsim.schedule.simulate.SimResult`'s action counts. Until the
energy package (:mod:`hwsim.energy`) provides an accounting function, it uses the interim estimate below
and says so in the ``energy_source`` column; swapping in the real model changes only this module.

Interim estimate (``interim-horowitz45``), M. Horowitz, "Computing's energy problem", ISSCC 2014, 45 nm,
0.9 V: 8-bit multiply 0.2 pJ (scaled by the product of operand widths over 64), 32-bit add 0.1 pJ per
accumulation; SRAM 10 pJ per 64-bit read of an 8 KiB array, growing with the square root of its size
(100 pJ at 1 MiB in the paper, 113 pJ here); off-chip DRAM 20 pJ/bit (1.3-2.6 nJ per 64 bits in the
paper, the low end); register files 0.01 pJ/bit; a vector lane op 0.03 pJ per 8 bits. Area: 420 um^2 per
8x8 MAC (282 multiply + 137 add), scaled like its energy, and 0.5 um^2 per SRAM bit (6T cell plus
periphery). Other nodes: energy scales linearly with node, area with its square. No leakage.
"""

from __future__ import annotations

import math

REFERENCE_NODE_NM = 45.0
MUL8_PJ = 0.2
ACC_ADD_PJ = 0.1
SRAM_8KIB_PJ_PER_BIT = 10.0 / 64
DRAM_PJ_PER_BIT = 20.0
RF_PJ_PER_BIT = 0.01
VECTOR_PJ_PER_8BIT = 0.03
MAC8_AREA_UM2 = 420.0
SRAM_AREA_UM2_PER_BIT = 0.5


def _bits_pair(bits) -> tuple[int, int]:
    text = str(bits)
    if "x" in text:
        a, b = text.split("x")
        return int(a), int(b)
    return int(text), int(text)


def energy_power_area(sim, energy: dict) -> dict:
    """Energy (pJ and uJ), average power (mW), area (mm^2) and the per-component energy of ``sim``.

    Parameters
    ----------
    sim : SimResult
        The simulated point (its device and action counts).
    energy : dict
        The point's :class:`~hwsim.experiment.spec.EnergySpec` as a dict (``node_nm``, ``voltage_v``).

    Returns
    -------
    dict
        ``energy_pj``, ``energy_uj``, ``power_mw``, ``area_mm2``, ``energy_source`` and
        ``energy_by_component_pj`` (mac_array, vector, off_chip, sram, register_file -> pJ).
    """
    return _interim(sim, energy)


def _interim(sim, energy: dict) -> dict:
    spec = sim.device.spec
    node = float(energy.get("node_nm") or REFERENCE_NODE_NM)
    e_scale = node / REFERENCE_NODE_NM
    volt = energy.get("voltage_v")
    if volt:
        e_scale *= (float(volt) / 0.9) ** 2
    a_scale = (node / REFERENCE_NODE_NM) ** 2
    kinds = {m.name: m for m in spec.memories}
    vectors = {v.name for v in spec.vector_units}
    by_component: dict[str, float] = {}
    for (component, action, bits), count in sim.totals:
        category = component
        if component == spec.mac_array.name:
            category = "mac_array"
            if action != "mac":
                continue
            w, a = _bits_pair(bits)
            pj = count * (MUL8_PJ * w * a / 64 + ACC_ADD_PJ)
        elif component in vectors:
            category = "vector"
            pj = count * VECTOR_PJ_PER_8BIT * max(_bits_pair(bits)[0], 8) / 8
        elif component in kinds:
            m = kinds[component]
            category = m.kind
            b = _bits_pair(bits)[0]
            if m.kind == "off_chip":
                per_bit = DRAM_PJ_PER_BIT
            elif m.kind == "register_file":
                per_bit = RF_PJ_PER_BIT
            else:
                per_bit = SRAM_8KIB_PJ_PER_BIT * math.sqrt(max(m.size_bytes or 8192, 8192) / 8192)
            pj = count * b * per_bit
        else:
            continue
        by_component[category] = by_component.get(category, 0.0) + pj * e_scale
    total_pj = sum(by_component.values())
    arr = spec.mac_array
    pes = arr.rows * arr.columns * arr.spatial_lanes
    widest = max(p.weights_bits * p.activations_bits for p in arr.precisions)
    mac_area = pes * MAC8_AREA_UM2 * max(widest, 64) / 64
    sram_area = sum((m.size_bytes or 0) * 8 * SRAM_AREA_UM2_PER_BIT for m in spec.memories if m.kind == "sram")
    area_mm2 = (mac_area + sram_area) * a_scale / 1e6
    seconds = sim.time_ms / 1000
    return {"energy_pj": total_pj, "energy_uj": total_pj / 1e6,
            "power_mw": (total_pj * 1e-12 / seconds) * 1e3 if seconds else float("nan"),
            "area_mm2": area_mm2, "energy_source": "interim-horowitz45",
            "energy_by_component_pj": {k: by_component[k] for k in sorted(by_component)}}
