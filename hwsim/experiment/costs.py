"""Energy, power and area of one simulated point: the single place the experiment runner gets them from.

:func:`energy_power_area` prices a :class:`~hwsim.schedule.simulate.SimResult` with :mod:`hwsim.energy`:
an :class:`~hwsim.energy.model.EnergyModel` from the point's energy table at the device's technology (node and
voltage overridable per point, e.g. by an ``energy.node_nm`` axis), :func:`~hwsim.energy.account.account`
for the per-action energy, leakage and peak power, :func:`~hwsim.energy.area.device_area` for the area.
"""

from __future__ import annotations

import json

from hwsim.experiment.result_row import EnergyCosts
from hwsim.experiment.spec import EnergySpec


def energy_power_area(sim, energy: EnergySpec) -> EnergyCosts:
    """Energy (pJ and uJ), average and peak power (mW), area (mm^2) and energy per category of ``sim``.

    Parameters
    ----------
    sim : SimResult
        The simulated point (its device, action counts and trace).
    energy : EnergySpec
        The point's energy table, node and voltage (None keeps the table's default / the device's
        technology).

    Returns
    -------
    EnergyCosts
        ``energy_pj``, ``energy_uj``, ``power_mw``, ``peak_power_mw``, ``leakage_pj``, ``tops_per_w``,
        ``area_mm2``, ``energy_source`` (table and technology) and ``energy_by_component_pj`` (JSON
        category -> pJ to 3 decimals: multiplier, accumulator, idle, vector, register_file, sram, dram, link,
        leakage).
    """
    from hwsim.energy.account import account
    from hwsim.energy.area import device_area
    from hwsim.energy.model import DEFAULT_ENERGY_MODEL, DevicePricer, EnergyModel

    model = EnergyModel.for_device(
        sim.device, energy.table or DEFAULT_ENERGY_MODEL, node_nm=energy.node_nm, voltage_v=energy.voltage_v
    )
    breakdown = account(sim, model)
    area = device_area(DevicePricer(model, sim.device))
    total = breakdown.total_pj
    by_component = {k: round(v, 3) for k, v in sorted(breakdown.by_category().items())}
    return EnergyCosts(
        energy_pj=total,
        energy_uj=total / 1e6,
        power_mw=breakdown.average_power_mw,
        peak_power_mw=breakdown.power.peak_mw if breakdown.power else float("nan"),
        leakage_pj=breakdown.leakage_pj,
        tops_per_w=breakdown.tops_per_w,
        area_mm2=area.total_mm2,
        energy_source=model.describe(),
        energy_by_component_pj=json.dumps(by_component),
    )
